file(REMOVE_RECURSE
  "CMakeFiles/telematics-sim.dir/sim.c.o"
  "CMakeFiles/telematics-sim.dir/sim.c.o.d"
  "CMakeFiles/telematics-sim.dir/sim_track.c.o"
  "CMakeFiles/telematics-sim.dir/sim_track.c.o.d"
  "telematics-sim"
  "telematics-sim.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/telematics-sim.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
