file(REMOVE_RECURSE
  "libt2m_http.a"
)
