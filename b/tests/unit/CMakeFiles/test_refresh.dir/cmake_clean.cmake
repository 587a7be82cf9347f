file(REMOVE_RECURSE
  "CMakeFiles/test_refresh.dir/test_refresh.c.o"
  "CMakeFiles/test_refresh.dir/test_refresh.c.o.d"
  "test_refresh"
  "test_refresh.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_refresh.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
