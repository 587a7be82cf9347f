# Empty dependencies file for t2m_devices.
# This may be replaced when dependencies are built.
