# Empty dependencies file for t2m_discovery.
# This may be replaced when dependencies are built.
