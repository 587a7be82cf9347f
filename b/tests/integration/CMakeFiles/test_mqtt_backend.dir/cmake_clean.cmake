file(REMOVE_RECURSE
  "CMakeFiles/test_mqtt_backend.dir/test_mqtt_backend.c.o"
  "CMakeFiles/test_mqtt_backend.dir/test_mqtt_backend.c.o.d"
  "test_mqtt_backend"
  "test_mqtt_backend.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_mqtt_backend.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
