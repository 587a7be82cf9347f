file(REMOVE_RECURSE
  "libt2m_log.a"
)
