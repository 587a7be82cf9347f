file(REMOVE_RECURSE
  "libt2m_owntracks.a"
)
