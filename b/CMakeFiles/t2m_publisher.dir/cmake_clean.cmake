file(REMOVE_RECURSE
  "CMakeFiles/t2m_publisher.dir/bridge/publisher.c.o"
  "CMakeFiles/t2m_publisher.dir/bridge/publisher.c.o.d"
  "libt2m_publisher.a"
  "libt2m_publisher.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_publisher.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
