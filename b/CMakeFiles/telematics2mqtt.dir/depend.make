# Empty dependencies file for telematics2mqtt.
# This may be replaced when dependencies are built.
