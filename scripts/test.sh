#!/usr/bin/env bash
# test.sh - every test: installs what is missing, builds twice (release with -Werror, then
# ASan+UBSan) and runs the whole ctest suite in both. Exit status is the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh all

jobs=$(nproc 2>/dev/null || echo 2)
run_suite() { # NAME CMAKE-ARGS...
    local name=$1
    shift
    echo "==== $name build ===="
    cmake -S . -B "build/$name" -DT2M_WERROR=ON "$@" >/dev/null
    cmake --build "build/$name" -j"$jobs"
    echo "==== $name tests ===="
    (cd "build/$name" && ctest --output-on-failure -j"$jobs" --timeout 900)
}

run_suite release -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
T2M_TEST_SLOW=3 \
    run_suite asan -DCMAKE_BUILD_TYPE=Debug -DT2M_SANITIZE=ON
echo "all suites passed"
