#!/usr/bin/env bash
# test.sh - every test: installs what is missing, builds twice (release with -Werror, then
# ASan+UBSan) and runs the whole ctest suite in both, then lint, the fuzzers and valgrind.
# Exit status is non-zero when anything failed.
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
# Static analysis and formatting, the fuzzers (bounded), and the integration tests with the
# daemon under valgrind memcheck.
echo "==== lint ===="
T2M_BUILD=build/release scripts/lint.sh
echo "==== fuzz ===="
T2M_FUZZ_SECONDS=${T2M_FUZZ_SECONDS:-20} scripts/fuzz.sh
echo "==== valgrind ===="
# shellcheck disable=SC2086 # a list of suite names, split on purpose
T2M_BUILD=build/release scripts/valgrind.sh ${T2M_VALGRIND_TESTS:-core resilience hostile state ha limits scale security integrations}
echo "all suites passed"
