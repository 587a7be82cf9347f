file(REMOVE_RECURSE
  "CMakeFiles/t2m_http.dir/bridge/http.c.o"
  "CMakeFiles/t2m_http.dir/bridge/http.c.o.d"
  "libt2m_http.a"
  "libt2m_http.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_http.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
