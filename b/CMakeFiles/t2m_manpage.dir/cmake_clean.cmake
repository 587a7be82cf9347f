file(REMOVE_RECURSE
  "CMakeFiles/t2m_manpage"
  "telematics2mqtt.1.gz"
)

# Per-language clean rules from dependency scanning.
foreach(lang )
  include(CMakeFiles/t2m_manpage.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
