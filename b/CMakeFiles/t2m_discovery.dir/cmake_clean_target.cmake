file(REMOVE_RECURSE
  "libt2m_discovery.a"
)
