file(REMOVE_RECURSE
  "CMakeFiles/t2m_devices.dir/bridge/devices.c.o"
  "CMakeFiles/t2m_devices.dir/bridge/devices.c.o.d"
  "libt2m_devices.a"
  "libt2m_devices.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/t2m_devices.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
