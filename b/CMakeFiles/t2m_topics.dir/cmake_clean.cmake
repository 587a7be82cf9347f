file(REMOVE_RECURSE
  "CMakeFiles/t2m_topics.dir/bridge/topics.c.o"
  "CMakeFiles/t2m_topics.dir/bridge/topics.c.o.d"
  "libt2m_topics.a"
  "libt2m_topics.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_topics.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
