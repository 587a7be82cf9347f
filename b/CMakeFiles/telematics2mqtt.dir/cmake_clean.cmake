file(REMOVE_RECURSE
  "CMakeFiles/telematics2mqtt.dir/bridge/bridge.c.o"
  "CMakeFiles/telematics2mqtt.dir/bridge/bridge.c.o.d"
  "CMakeFiles/telematics2mqtt.dir/bridge/main.c.o"
  "CMakeFiles/telematics2mqtt.dir/bridge/main.c.o.d"
  "CMakeFiles/telematics2mqtt.dir/bridge/upstream.c.o"
  "CMakeFiles/telematics2mqtt.dir/bridge/upstream.c.o.d"
  "telematics2mqtt"
  "telematics2mqtt.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/telematics2mqtt.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
