file(REMOVE_RECURSE
  "CMakeFiles/bench-sub.dir/bench_sub.c.o"
  "CMakeFiles/bench-sub.dir/bench_sub.c.o.d"
  "bench-sub"
  "bench-sub.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/bench-sub.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
