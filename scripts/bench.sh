#!/usr/bin/env bash
# bench.sh - the benchmark in one command: installs what it needs (scripts/deps.sh), builds a
# release tree in build/bench, runs bench/run.py and prints its table (README "Performance").
#
#   scripts/bench.sh [--runs N] [--quick] [--only throughput,sink,latency,memory,baseline,profile]
#                    [--backends lws,mosquitto,paho,node]
#
# Everything runs on loopback: a private mosquitto on a free port (persistence off), the
# simulator in blast mode, the bridge, and bench-sub counting what is delivered. Takes about
# 15 minutes with the default 5 runs per row (--quick: one short run of each, about 1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
# perf: the profile section, and the syscall count of every throughput row
t2m_install "${T2M_BUILD_PACKAGES[@]}" "${T2M_RUN_PACKAGES[@]}" python3 linux-perf
# the Node.js peer (bench/node-bridge) is installed with npm into the build tree
command -v npm >/dev/null || t2m_install nodejs npm

build_dir=${T2M_BUILD_DIR:-build/bench}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DT2M_WERROR=ON >/dev/null
cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
exec /usr/bin/python3 bench/run.py --build "$build_dir" "$@"
