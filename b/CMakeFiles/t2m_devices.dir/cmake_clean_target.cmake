file(REMOVE_RECURSE
  "libt2m_devices.a"
)
