# Empty compiler generated dependencies file for test_topics.
# This may be replaced when dependencies are built.
