file(REMOVE_RECURSE
  "libt2m_config.a"
)
