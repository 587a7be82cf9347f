file(REMOVE_RECURSE
  "CMakeFiles/t2m_refresh.dir/bridge/refresh.c.o"
  "CMakeFiles/t2m_refresh.dir/bridge/refresh.c.o.d"
  "libt2m_refresh.a"
  "libt2m_refresh.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_refresh.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
