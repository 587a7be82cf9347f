#!/usr/bin/env bash
# valgrind.sh - runs integration tests with the daemon under valgrind memcheck (through the
# harness' T2M_WRAPPER) and fails unless every run of the daemon reports zero errors and zero
# definitely / indirectly lost bytes. One valgrind log per daemon process.
#   scripts/valgrind.sh [NAME...]    test names (core, resilience, ...) or test_*.py files;
#                                    default: every tests/integration/test_*.py
#   T2M_BUILD=build/release          the (non-sanitizer) build to test; configured and built here
#   T2M_VALGRIND_JOBS=2              test files run in parallel
#   T2M_TEST_SLOW=10                 deadline scale (memcheck runs the daemon 10-30x slower)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${T2M_BUILD:-build/release}
jobs=${T2M_VALGRIND_JOBS:-2}
python=/usr/bin/python3

command -v valgrind >/dev/null || {
    echo "valgrind.sh: valgrind not found (Debian package valgrind: scripts/deps.sh)" >&2
    exit 1
}
[ -x "$python" ] || { echo "valgrind.sh: $python not found (Debian package python3)" >&2; exit 1; }

cmake -S . -B "$build" -DT2M_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target telematics2mqtt telematics-sim \
    >/dev/null

names=()
if [ $# -gt 0 ]; then
    for a in "$@"; do
        a=${a##*/}
        a=${a#test_}
        names+=("${a%.py}")
    done
else
    for f in tests/integration/test_*.py; do
        f=${f##*/test_}
        names+=("${f%.py}")
    done
fi

out="$build/valgrind"
rm -rf "$out"
mkdir -p "$out"
vg="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect"
vg="$vg --errors-for-leak-kinds=definite,indirect --num-callers=30 --track-origins=no"
vg="$vg --suppressions=$root/tests/valgrind.supp"

# run_one NAME: one test file, its daemons' valgrind logs in $out/NAME/
run_one() {
    local name=$1 dir="$out/$1" start rc=0
    mkdir -p "$dir"
    start=$(date +%s)
    (cd tests/integration &&
        T2M_BIN="$root/$build/telematics2mqtt" T2M_SIM="$root/$build/tests/sim/telematics-sim" \
            T2M_WRAPPER="$vg --log-file=$root/$dir/vg-%p.log" T2M_TEST_SLOW=${T2M_TEST_SLOW:-10} \
            PYTHONDONTWRITEBYTECODE=1 "$python" -m unittest -v "test_$name") >"$dir/test.log" 2>&1 ||
        rc=$?
    echo "$rc $(($(date +%s) - start))" >"$dir/result"
}

total_start=$(date +%s)
running=0
for n in "${names[@]}"; do
    [ -f "tests/integration/test_$n.py" ] || { echo "valgrind.sh: no test_$n.py" >&2; exit 1; }
    run_one "$n" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

# A log passes with "ERROR SUMMARY: 0 errors" and nothing definitely or indirectly lost. A log
# without a summary is a daemon the test killed with SIGKILL on purpose: nothing to check.
status=0
for n in "${names[@]}"; do
    dir="$out/$n"
    read -r rc secs <"$dir/result"
    logs=0 bad=0 killed=0
    for l in "$dir"/vg-*.log; do
        [ -e "$l" ] || continue
        logs=$((logs + 1))
        if ! grep -q "ERROR SUMMARY:" "$l"; then
            killed=$((killed + 1))
            continue
        fi
        if ! grep -q "ERROR SUMMARY: 0 errors" "$l" ||
            grep -Eq "(definitely|indirectly) lost: [1-9]" "$l"; then
            bad=$((bad + 1))
            echo "---- $l ----" >&2
            grep -E "^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source|   (at|by) |[0-9,]+ bytes in|ERROR SUMMARY|    (definitely|indirectly) lost)" "$l" |
                head -80 >&2
        fi
    done
    verdict=ok
    if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ] || [ "$logs" -eq 0 ]; then
        verdict=FAILED
        status=1
        [ "$rc" -ne 0 ] && tail -40 "$dir/test.log" >&2
        [ "$logs" -eq 0 ] && echo "test_$n: no daemon ran under valgrind" >&2
    fi
    echo "test_$n: $verdict (unittest exit $rc, ${secs}s, $logs daemon runs, $bad with errors or leaks, $killed killed)"
done
echo "valgrind.sh: $(($(date +%s) - total_start))s in all, logs in $out"
exit $status
