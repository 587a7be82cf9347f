# CMake generated Testfile for 
# Source directory: /work/main/tests/deploy
# Build directory: /work/main/b/tests/deploy
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(deploy_artifacts "/usr/bin/python3" "-m" "unittest" "-v" "test_artifacts")
set_tests_properties(deploy_artifacts PROPERTIES  ENVIRONMENT "T2M_SRC=/work/main;T2M_BIN=/work/main/b/telematics2mqtt;PYTHONDONTWRITEBYTECODE=1" LABELS "deploy" TIMEOUT "300" WORKING_DIRECTORY "/work/main/tests/deploy" _BACKTRACE_TRIPLES "/work/main/tests/deploy/CMakeLists.txt;7;add_test;/work/main/tests/deploy/CMakeLists.txt;0;")
add_test(deploy_deb "/work/main/tests/deploy/test_deb.sh" "/work/main" "/work/main/b/tests/deploy/deb")
set_tests_properties(deploy_deb PROPERTIES  LABELS "deploy" RESOURCE_LOCK "dpkg" TIMEOUT "1200" _BACKTRACE_TRIPLES "/work/main/tests/deploy/CMakeLists.txt;13;add_test;/work/main/tests/deploy/CMakeLists.txt;0;")
