# Empty compiler generated dependencies file for t2m_backoff.
# This may be replaced when dependencies are built.
