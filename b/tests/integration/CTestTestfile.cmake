# CMake generated Testfile for 
# Source directory: /work/main/tests/integration
# Build directory: /work/main/b/tests/integration
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(integration_core "/usr/bin/python3" "-m" "unittest" "-v" "test_core")
set_tests_properties(integration_core PROPERTIES  ENVIRONMENT "T2M_BIN=/work/main/b/telematics2mqtt;T2M_SIM=/work/main/b/tests/sim/telematics-sim;PYTHONDONTWRITEBYTECODE=1" LABELS "integration" TIMEOUT "600" WORKING_DIRECTORY "/work/main/tests/integration" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;4;add_test;/work/main/tests/integration/CMakeLists.txt;11;t2m_py_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_resilience "/usr/bin/python3" "-m" "unittest" "-v" "test_resilience")
set_tests_properties(integration_resilience PROPERTIES  ENVIRONMENT "T2M_BIN=/work/main/b/telematics2mqtt;T2M_SIM=/work/main/b/tests/sim/telematics-sim;PYTHONDONTWRITEBYTECODE=1" LABELS "integration" TIMEOUT "600" WORKING_DIRECTORY "/work/main/tests/integration" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;4;add_test;/work/main/tests/integration/CMakeLists.txt;12;t2m_py_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_integrations "/usr/bin/python3" "-m" "unittest" "-v" "test_integrations")
set_tests_properties(integration_integrations PROPERTIES  ENVIRONMENT "T2M_BIN=/work/main/b/telematics2mqtt;T2M_SIM=/work/main/b/tests/sim/telematics-sim;PYTHONDONTWRITEBYTECODE=1" LABELS "integration" TIMEOUT "600" WORKING_DIRECTORY "/work/main/tests/integration" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;4;add_test;/work/main/tests/integration/CMakeLists.txt;13;t2m_py_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_nodered "/usr/bin/python3" "-m" "unittest" "-v" "test_nodered")
set_tests_properties(integration_nodered PROPERTIES  ENVIRONMENT "T2M_BIN=/work/main/b/telematics2mqtt;T2M_SIM=/work/main/b/tests/sim/telematics-sim;PYTHONDONTWRITEBYTECODE=1" LABELS "integration" TIMEOUT "600" WORKING_DIRECTORY "/work/main/tests/integration" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;4;add_test;/work/main/tests/integration/CMakeLists.txt;14;t2m_py_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_ops "/usr/bin/python3" "-m" "unittest" "-v" "test_ops")
set_tests_properties(integration_ops PROPERTIES  ENVIRONMENT "T2M_BIN=/work/main/b/telematics2mqtt;T2M_SIM=/work/main/b/tests/sim/telematics-sim;PYTHONDONTWRITEBYTECODE=1" LABELS "integration" RESOURCE_LOCK "dpkg" TIMEOUT "600" WORKING_DIRECTORY "/work/main/tests/integration" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;4;add_test;/work/main/tests/integration/CMakeLists.txt;15;t2m_py_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_rabbitmq "/usr/bin/python3" "-m" "unittest" "-v" "test_rabbitmq")
set_tests_properties(integration_rabbitmq PROPERTIES  ENVIRONMENT "T2M_BIN=/work/main/b/telematics2mqtt;T2M_SIM=/work/main/b/tests/sim/telematics-sim;PYTHONDONTWRITEBYTECODE=1" LABELS "integration" TIMEOUT "600" WORKING_DIRECTORY "/work/main/tests/integration" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;4;add_test;/work/main/tests/integration/CMakeLists.txt;17;t2m_py_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_http "/work/main/b/tests/integration/test_http")
set_tests_properties(integration_http PROPERTIES  LABELS "integration" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;29;add_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_mqtt_mosquitto "/work/main/b/tests/integration/test_mqtt_backend" "mosquitto")
set_tests_properties(integration_mqtt_mosquitto PROPERTIES  LABELS "integration" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;36;add_test;/work/main/tests/integration/CMakeLists.txt;0;")
add_test(integration_mqtt_paho "/work/main/b/tests/integration/test_mqtt_backend" "paho")
set_tests_properties(integration_mqtt_paho PROPERTIES  LABELS "integration" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/integration/CMakeLists.txt;36;add_test;/work/main/tests/integration/CMakeLists.txt;0;")
