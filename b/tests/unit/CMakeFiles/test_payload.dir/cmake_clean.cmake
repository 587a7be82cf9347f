file(REMOVE_RECURSE
  "CMakeFiles/test_payload.dir/test_payload.c.o"
  "CMakeFiles/test_payload.dir/test_payload.c.o.d"
  "test_payload"
  "test_payload.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_payload.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
