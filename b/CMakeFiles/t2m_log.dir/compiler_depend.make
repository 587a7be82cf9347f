# Empty compiler generated dependencies file for t2m_log.
# This may be replaced when dependencies are built.
