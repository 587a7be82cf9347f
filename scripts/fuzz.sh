#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets of tests/fuzz/ (clang, ASan+UBSan, its own build dir)
# and runs each for a bounded time. Fails on any crash, leak, sanitizer report or timeout;
# prints executions and coverage (libFuzzer's cov: / ft:) per target.
#   scripts/fuzz.sh [TARGET...]      default: fuzz_protocol fuzz_config fuzz_topics fuzz_request fuzz_mqtt_codec fuzz_ui fuzz_session
#   T2M_FUZZ_SECONDS=60              time per target
#   T2M_FUZZ_BUILD=build/fuzz        build directory
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${T2M_FUZZ_SECONDS:-60}
build=${T2M_FUZZ_BUILD:-build/fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_protocol fuzz_config fuzz_topics fuzz_request fuzz_mqtt_codec fuzz_ui fuzz_session)

command -v clang >/dev/null || {
    echo "fuzz.sh: clang not found (Debian packages clang, libclang-rt-14-dev: scripts/deps.sh)" >&2
    exit 1
}
CC=clang cmake -S . -B "$build" -DT2M_FUZZ=ON -DT2M_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" >/dev/null

out="$build/fuzz-out"
rm -rf "$out"
mkdir -p "$out"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# libconfig 1.5 leaks 64 bytes on a syntax error inside a string (its scanner's string buffer);
# nothing else may leak.
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0

status=0
summary=()
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    seeds="$root/tests/fuzz/corpus/$name"
    [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 1; }
    dict=()
    [ -f "$root/tests/fuzz/$name.dict" ] && dict=(-dict="$root/tests/fuzz/$name.dict")
    # New inputs go to a scratch corpus; the seeds in the tree are only read.
    mkdir -p "$out/$name/corpus" "$out/$name/artifacts"
    log="$out/$name/fuzz.log"
    echo "==== $t: ${seconds}s ===="
    rc=0
    "$build/tests/fuzz/$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$out/$name/artifacts/" \
        "$out/$name/corpus" "$seeds" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' || true)
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' || true)
    corp=$(echo "$last" | grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' || true)
    line="$t: ${execs:-?} executions in ${seconds}s, ${cov:-cov: ?}, ${ft:-ft: ?}, ${corp:-corp: ?}"
    if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
        echo "FAILED (exit $rc): $line" >&2
        grep -E -A30 'ERROR:|runtime error:|check failed' "$log" | head -60 >&2 || true
        ls "$out/$name/artifacts" >&2 || true
        status=1
        line="FAILED $line"
    fi
    echo "$line"
    summary+=("$line")
done
echo "==== fuzz summary ===="
printf '%s\n' "${summary[@]}"
exit $status
