file(REMOVE_RECURSE
  "libt2m_mqtt.a"
)
