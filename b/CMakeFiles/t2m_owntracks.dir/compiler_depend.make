# Empty compiler generated dependencies file for t2m_owntracks.
# This may be replaced when dependencies are built.
