file(REMOVE_RECURSE
  "CMakeFiles/t2m_payload.dir/bridge/payload.c.o"
  "CMakeFiles/t2m_payload.dir/bridge/payload.c.o.d"
  "libt2m_payload.a"
  "libt2m_payload.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_payload.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
