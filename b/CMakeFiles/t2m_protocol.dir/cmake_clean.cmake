file(REMOVE_RECURSE
  "CMakeFiles/t2m_protocol.dir/bridge/protocol.c.o"
  "CMakeFiles/t2m_protocol.dir/bridge/protocol.c.o.d"
  "libt2m_protocol.a"
  "libt2m_protocol.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_protocol.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
