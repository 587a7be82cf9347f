file(REMOVE_RECURSE
  "libt2m_backoff.a"
)
