
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/bridge/bridge.c" "CMakeFiles/telematics2mqtt.dir/bridge/bridge.c.o" "gcc" "CMakeFiles/telematics2mqtt.dir/bridge/bridge.c.o.d"
  "/work/main/bridge/main.c" "CMakeFiles/telematics2mqtt.dir/bridge/main.c.o" "gcc" "CMakeFiles/telematics2mqtt.dir/bridge/main.c.o.d"
  "/work/main/bridge/upstream.c" "CMakeFiles/telematics2mqtt.dir/bridge/upstream.c.o" "gcc" "CMakeFiles/telematics2mqtt.dir/bridge/upstream.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/b/CMakeFiles/t2m_refresh.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_http.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_stats.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_config.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_publisher.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_mqtt.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_devices.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_discovery.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_owntracks.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_payload.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_protocol.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_topics.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_backoff.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_units.dir/DependInfo.cmake"
  "/work/main/b/CMakeFiles/t2m_log.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
