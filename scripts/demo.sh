#!/usr/bin/env bash
# demo.sh - the bridge end to end on this machine: a private mosquitto, the simulator streaming
# five vehicles (short trips with parked periods between them, some updates lacking fields), the
# bridge configured by environment alone, and the live state, trips and trip events printed; the
# status page (a live map of the five) at the URL it prints.
# Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc 2>/dev/null || echo 2)" --target telematics2mqtt telematics-sim

tmp=$(mktemp -d)
pids=()
cleanup() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
    echo "demo stopped"
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
mqtt_port=18830
while ! port_free "$mqtt_port"; do mqtt_port=$((mqtt_port + 1)); done
user=$(id -un)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\npersistence false\n' \
    "$mqtt_port" "$user" >"$tmp/mosquitto.conf"
/usr/sbin/mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
pids+=($!)

mkfifo "$tmp/sim.out"
build/release/tests/sim/telematics-sim --port 0 --instance demo --token demo-token \
    --devices 5 --rate 5 --trip-seconds 45 --park-seconds 15 --partial-every 7 \
    >"$tmp/sim.out" 2>"$tmp/sim.log" &
pids+=($!)
read -r line <"$tmp/sim.out"
sim_port=${line##*:}
echo "simulator: ws://127.0.0.1:$sim_port   broker: tcp://127.0.0.1:$mqtt_port"

for _ in $(seq 100); do port_free "$mqtt_port" || break; sleep 0.1; done
http_port=9780
while ! port_free "$http_port"; do http_port=$((http_port + 1)); done

T2M_UPSTREAM_URL="ws://127.0.0.1:$sim_port/realtime/api/v1/ws/realtime" \
T2M_INSTANCE_ID=demo T2M_ACCESS_TOKEN=demo-token \
T2M_MQTT_URL="tcp://127.0.0.1:$mqtt_port" T2M_HTTP_LISTEN="127.0.0.1:$http_port" \
    build/release/telematics2mqtt 2>"$tmp/bridge.log" &
pids+=($!)
echo "status page: http://127.0.0.1:$http_port/   (a live map of the fleet; /metrics, /healthz)"
echo "bridge log: $tmp/bridge.log — live messages below (Ctrl-C to stop)"
mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -v -t 'telematics/#' -t 'homeassistant/device_tracker/#'
