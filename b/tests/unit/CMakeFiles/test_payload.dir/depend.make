# Empty dependencies file for test_payload.
# This may be replaced when dependencies are built.
