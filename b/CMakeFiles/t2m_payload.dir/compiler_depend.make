# Empty compiler generated dependencies file for t2m_payload.
# This may be replaced when dependencies are built.
