# Empty compiler generated dependencies file for test_mqtt_backend.
# This may be replaced when dependencies are built.
