file(REMOVE_RECURSE
  "CMakeFiles/t2m_mqtt.dir/bridge/mqtt.c.o"
  "CMakeFiles/t2m_mqtt.dir/bridge/mqtt.c.o.d"
  "CMakeFiles/t2m_mqtt.dir/bridge/mqtt_mosquitto.c.o"
  "CMakeFiles/t2m_mqtt.dir/bridge/mqtt_mosquitto.c.o.d"
  "CMakeFiles/t2m_mqtt.dir/bridge/mqtt_paho.c.o"
  "CMakeFiles/t2m_mqtt.dir/bridge/mqtt_paho.c.o.d"
  "libt2m_mqtt.a"
  "libt2m_mqtt.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_mqtt.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
