file(REMOVE_RECURSE
  "libt2m_stats.a"
)
