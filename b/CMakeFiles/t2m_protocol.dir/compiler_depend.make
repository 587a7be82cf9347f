# Empty compiler generated dependencies file for t2m_protocol.
# This may be replaced when dependencies are built.
