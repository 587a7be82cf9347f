# Empty compiler generated dependencies file for t2m_topics.
# This may be replaced when dependencies are built.
