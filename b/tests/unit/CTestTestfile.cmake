# CMake generated Testfile for 
# Source directory: /work/main/tests/unit
# Build directory: /work/main/b/tests/unit
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(unit_config "/work/main/b/tests/unit/test_config")
set_tests_properties(unit_config PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;10;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_publisher "/work/main/b/tests/unit/test_publisher")
set_tests_properties(unit_publisher PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;13;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_devices "/work/main/b/tests/unit/test_devices")
set_tests_properties(unit_devices PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;14;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_units "/work/main/b/tests/unit/test_units")
set_tests_properties(unit_units PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;15;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_topics "/work/main/b/tests/unit/test_topics")
set_tests_properties(unit_topics PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;16;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_backoff "/work/main/b/tests/unit/test_backoff")
set_tests_properties(unit_backoff PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;17;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_protocol "/work/main/b/tests/unit/test_protocol")
set_tests_properties(unit_protocol PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;18;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_payload "/work/main/b/tests/unit/test_payload")
set_tests_properties(unit_payload PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;19;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_metrics "/work/main/b/tests/unit/test_metrics")
set_tests_properties(unit_metrics PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;20;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_discovery "/work/main/b/tests/unit/test_discovery")
set_tests_properties(unit_discovery PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;21;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_owntracks "/work/main/b/tests/unit/test_owntracks")
set_tests_properties(unit_owntracks PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;22;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(unit_refresh "/work/main/b/tests/unit/test_refresh")
set_tests_properties(unit_refresh PROPERTIES  LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;5;add_test;/work/main/tests/unit/CMakeLists.txt;23;t2m_unit_test;/work/main/tests/unit/CMakeLists.txt;0;")
