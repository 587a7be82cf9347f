file(REMOVE_RECURSE
  "CMakeFiles/t2m_owntracks.dir/bridge/owntracks.c.o"
  "CMakeFiles/t2m_owntracks.dir/bridge/owntracks.c.o.d"
  "libt2m_owntracks.a"
  "libt2m_owntracks.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_owntracks.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
