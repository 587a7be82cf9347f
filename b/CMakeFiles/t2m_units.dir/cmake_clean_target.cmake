file(REMOVE_RECURSE
  "libt2m_units.a"
)
