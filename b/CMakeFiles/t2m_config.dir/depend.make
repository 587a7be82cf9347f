# Empty dependencies file for t2m_config.
# This may be replaced when dependencies are built.
