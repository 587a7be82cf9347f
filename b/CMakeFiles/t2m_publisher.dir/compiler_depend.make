# Empty compiler generated dependencies file for t2m_publisher.
# This may be replaced when dependencies are built.
