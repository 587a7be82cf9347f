# Empty compiler generated dependencies file for test_publisher.
# This may be replaced when dependencies are built.
