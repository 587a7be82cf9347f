# Empty custom commands generated dependencies file for t2m_manpage.
# This may be replaced when dependencies are built.
