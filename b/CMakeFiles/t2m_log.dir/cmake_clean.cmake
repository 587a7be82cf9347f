file(REMOVE_RECURSE
  "CMakeFiles/t2m_log.dir/bridge/log.c.o"
  "CMakeFiles/t2m_log.dir/bridge/log.c.o.d"
  "libt2m_log.a"
  "libt2m_log.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_log.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
