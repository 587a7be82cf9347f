file(REMOVE_RECURSE
  "libt2m_refresh.a"
)
