file(REMOVE_RECURSE
  "CMakeFiles/t2m_backoff.dir/bridge/backoff.c.o"
  "CMakeFiles/t2m_backoff.dir/bridge/backoff.c.o.d"
  "libt2m_backoff.a"
  "libt2m_backoff.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_backoff.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
