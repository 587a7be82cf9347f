file(REMOVE_RECURSE
  "CMakeFiles/t2m_config.dir/bridge/config.c.o"
  "CMakeFiles/t2m_config.dir/bridge/config.c.o.d"
  "libt2m_config.a"
  "libt2m_config.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_config.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
