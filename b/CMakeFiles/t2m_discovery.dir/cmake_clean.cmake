file(REMOVE_RECURSE
  "CMakeFiles/t2m_discovery.dir/bridge/discovery.c.o"
  "CMakeFiles/t2m_discovery.dir/bridge/discovery.c.o.d"
  "libt2m_discovery.a"
  "libt2m_discovery.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_discovery.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
