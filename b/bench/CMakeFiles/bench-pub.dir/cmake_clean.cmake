file(REMOVE_RECURSE
  "CMakeFiles/bench-pub.dir/bench_pub.c.o"
  "CMakeFiles/bench-pub.dir/bench_pub.c.o.d"
  "bench-pub"
  "bench-pub.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/bench-pub.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
