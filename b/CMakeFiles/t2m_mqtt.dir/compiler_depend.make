# Empty compiler generated dependencies file for t2m_mqtt.
# This may be replaced when dependencies are built.
