file(REMOVE_RECURSE
  "libt2m_protocol.a"
)
