# Empty dependencies file for t2m_units.
# This may be replaced when dependencies are built.
