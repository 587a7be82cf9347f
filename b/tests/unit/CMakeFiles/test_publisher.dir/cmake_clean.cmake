file(REMOVE_RECURSE
  "CMakeFiles/test_publisher.dir/test_publisher.c.o"
  "CMakeFiles/test_publisher.dir/test_publisher.c.o.d"
  "test_publisher"
  "test_publisher.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_publisher.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
