# Empty dependencies file for test_refresh.
# This may be replaced when dependencies are built.
