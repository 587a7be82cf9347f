# Empty compiler generated dependencies file for test_owntracks.
# This may be replaced when dependencies are built.
