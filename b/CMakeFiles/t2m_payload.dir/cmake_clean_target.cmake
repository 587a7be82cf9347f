file(REMOVE_RECURSE
  "libt2m_payload.a"
)
