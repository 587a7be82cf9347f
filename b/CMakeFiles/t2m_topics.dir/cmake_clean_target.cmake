file(REMOVE_RECURSE
  "libt2m_topics.a"
)
