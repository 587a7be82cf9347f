file(REMOVE_RECURSE
  "libt2m_publisher.a"
)
