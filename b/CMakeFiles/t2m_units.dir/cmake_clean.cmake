file(REMOVE_RECURSE
  "CMakeFiles/t2m_units.dir/bridge/units.c.o"
  "CMakeFiles/t2m_units.dir/bridge/units.c.o.d"
  "libt2m_units.a"
  "libt2m_units.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_units.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
