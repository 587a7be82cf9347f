file(REMOVE_RECURSE
  "CMakeFiles/t2m_stats.dir/bridge/metrics.c.o"
  "CMakeFiles/t2m_stats.dir/bridge/metrics.c.o.d"
  "CMakeFiles/t2m_stats.dir/bridge/stats.c.o"
  "CMakeFiles/t2m_stats.dir/bridge/stats.c.o.d"
  "libt2m_stats.a"
  "libt2m_stats.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_stats.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
