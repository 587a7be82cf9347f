file(REMOVE_RECURSE
  "CMakeFiles/test_topics.dir/test_topics.c.o"
  "CMakeFiles/test_topics.dir/test_topics.c.o.d"
  "test_topics"
  "test_topics.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_topics.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
