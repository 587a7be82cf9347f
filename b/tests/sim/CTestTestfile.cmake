# CMake generated Testfile for 
# Source directory: /work/main/tests/sim
# Build directory: /work/main/b/tests/sim
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(sim_protocol "/usr/bin/python3" "/work/main/tests/sim/test_sim_protocol.py" "/work/main/b/tests/sim/telematics-sim")
set_tests_properties(sim_protocol PROPERTIES  LABELS "integration" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/main/tests/sim/CMakeLists.txt;5;add_test;/work/main/tests/sim/CMakeLists.txt;0;")
