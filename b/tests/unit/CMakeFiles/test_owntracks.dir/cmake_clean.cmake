file(REMOVE_RECURSE
  "CMakeFiles/test_owntracks.dir/test_owntracks.c.o"
  "CMakeFiles/test_owntracks.dir/test_owntracks.c.o.d"
  "test_owntracks"
  "test_owntracks.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_owntracks.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
