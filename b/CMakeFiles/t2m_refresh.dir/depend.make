# Empty dependencies file for t2m_refresh.
# This may be replaced when dependencies are built.
