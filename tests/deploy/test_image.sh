#!/usr/bin/env bash
# test_image.sh - builds the container image for real and runs it (issue 22).
#
#   tests/deploy/test_image.sh SOURCE_DIR WORK_DIR
#
# 1. A debian:12 base made by debootstrap from the machine's own apt mirror (no registry is
#    reachable), carrying the machine's apt sources so that RUN apt-get inside works; it is
#    imported once and kept (podman's store) for the next run.
# 2. `podman build --isolation chroot` of docker/Dockerfile, both targets (runtime and sim; they
#    share the build stage).
# 3. The images' filesystems (podman image mount: read-only) run under chroot as uid 10001 - a
#    tmpfs on /tmp is the only writable place besides the state volume - with T2M_* variables
#    only, against mosquitto on loopback and the image's own simulator: a position arrives,
#    --healthcheck answers 0, the status page and its Leaflet are served, and the image holds no
#    compiler and no secret.
# `podman run` cannot work here (the sandbox refuses the OCI runtime's setrlimit), hence chroot.
# Never skips: a missing tool or not being root fails, and says why.
set -euo pipefail

src=$(cd "${1:?usage: test_image.sh SOURCE_DIR WORK_DIR}" && pwd)
work=${2:?usage: test_image.sh SOURCE_DIR WORK_DIR}
fail() {
    echo "test_image: FAIL: $*" >&2
    exit 1
}
for tool in podman debootstrap mosquitto mosquitto_sub curl setpriv; do
    command -v "$tool" >/dev/null || fail "$tool not found (scripts/deps.sh installs it)"
done
[ "$(id -u)" -eq 0 ] || fail "podman build and chroot need root"
mkdir -p "$work"
work=$(cd "$work" && pwd)
t0=$(date +%s)
say() { echo "test_image: [$(($(date +%s) - t0)) s] $*"; }

# ---- 1. the base image --------------------------------------------------------------------
base=docker.io/library/debian:12
if ! podman image exists "$base" || ! podman image exists "$base-slim"; then
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    [ -n "$mirror" ] || fail "no Debian mirror in the machine's apt sources"
    rootfs="$work/rootfs"
    rm -rf "$rootfs"
    say "debootstrap bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    # The machine's apt sources and settings, so that apt-get in the build reaches its mirror.
    rm -f "$rootfs/etc/apt/sources.list"
    cp -a /etc/apt/sources.list.d/. "$rootfs/etc/apt/sources.list.d/"
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$rootfs/etc/apt/"
    cp -a /etc/apt/apt.conf.d/. "$rootfs/etc/apt/apt.conf.d/"
    tar -C "$rootfs" -c . | podman import - "$base" >/dev/null || fail "podman import"
    podman tag "$base" "$base-slim" || fail "podman tag"
    rm -rf "$rootfs"
    say "base image imported"
fi

# ---- 2. the build --------------------------------------------------------------------------
img=localhost/telematics2mqtt:test
simimg=localhost/telematics-sim:test
for target in runtime sim; do
    tag=$img
    [ "$target" = sim ] && tag=$simimg
    say "podman build --target $target"
    podman build --isolation chroot -f "$src/docker/Dockerfile" --target "$target" -t "$tag" \
        "$src" >"$work/build-$target.log" 2>&1 ||
        { tail -n 40 "$work/build-$target.log" >&2; fail "podman build --target $target"; }
done
say "images built: $(podman image inspect --format '{{.Size}}' "$img") bytes (runtime)"

# ---- 3. run the image's filesystems ----------------------------------------------------------
pids=()
mounts=()
cleanup() {
    local p i
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
    podman image unmount "$img" "$simimg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

root=$(podman image mount "$img") || fail "podman image mount $img"
simroot=$(podman image mount "$simimg") || fail "podman image mount $simimg"
[ -x "$root/usr/bin/telematics2mqtt" ] || fail "no /usr/bin/telematics2mqtt in the image"

# What the image must not hold: a compiler, build tools, a private key, our tokens.
for f in usr/bin/gcc usr/bin/cc usr/bin/cmake usr/bin/make usr/include/libwebsockets.h; do
    [ ! -e "$root/$f" ] || fail "the runtime image holds /$f"
done
if grep -rIl --exclude-dir=proc -e 'PRIVATE KEY' "$root/etc" "$root/usr" "$root/var" 2>/dev/null |
    grep -q .; then
    fail "the runtime image holds a private key"
fi
for f in docker/demo-token docker/demo-refresh-token; do
    [ -z "$(find "$root" -xdev -name "$(basename "$f")" -print -quit)" ] || fail "the image holds $f"
done
[ "$(stat -c %u "$root/var/lib/telematics2mqtt")" = 10001 ] ||
    fail "/var/lib/telematics2mqtt is not the image user's"
[ -x "$root/usr/libexec/telematics2mqtt/t2m-seed-refresh-token" ] || fail "no seed script"
[ -f "$root/usr/share/javascript/leaflet/leaflet.js" ] || fail "no Leaflet (libjs-leaflet) in the image"

# A private /tmp (tmpfs) and the state volume: the only writable places; /dev for /dev/null.
run_dir="$work/run"
rm -rf "$run_dir"
mkdir -p "$run_dir/state"
chown 10001:10001 "$run_dir/state"
chmod 0700 "$run_dir/state"
for r in "$root" "$simroot"; do
    mount -t tmpfs -o size=16m,mode=1777 tmpfs "$r/tmp" || fail "tmpfs on $r/tmp"
    mounts+=("$r/tmp")
    mount --bind /dev "$r/dev" || fail "bind /dev"
    mounts+=("$r/dev")
done
mount --bind "$run_dir/state" "$root/var/lib/telematics2mqtt" || fail "bind the state volume"
mounts+=("$root/var/lib/telematics2mqtt")
# Secrets as a runtime mounts them: in a directory only the user can read.
install -d -o 10001 -g 10001 -m 0500 "$root/tmp/secrets"
printf 'image-token\n' >"$root/tmp/secrets/t2m_token"
printf 'image-refresh\n' >"$root/tmp/secrets/t2m_refresh_token"
chown 10001:10001 "$root/tmp/secrets/t2m_token" "$root/tmp/secrets/t2m_refresh_token"
chmod 0400 "$root/tmp/secrets/t2m_token" "$root/tmp/secrets/t2m_refresh_token"

# ROOT CMD... : the image's program, as uid 10001. It replaces the calling shell (exec), so that
# `as_user ... &` gives the program's own pid: call it in a subshell or in the background.
as_user() {
    local r=$1
    shift
    exec chroot "$r" setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all "$@"
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mport=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mport" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
sport=$(free_port)
as_user "$simroot" env -i telematics-sim --host 127.0.0.1 --port "$sport" --instance img \
    --token image-token --devices 2 --rate 5 >"$work/sim.log" 2>&1 &
pids+=($!)
hport=$(free_port)

# The seed step of compose and Kubernetes, from the image itself.
(as_user "$root" env -i /usr/libexec/telematics2mqtt/t2m-seed-refresh-token \
    /tmp/secrets/t2m_refresh_token /var/lib/telematics2mqtt/refresh_token) >"$work/seed.log" 2>&1 ||
    { cat "$work/seed.log" >&2; fail "the seed step"; }
[ "$(cat "$run_dir/state/refresh_token")" = image-refresh ] || fail "the refresh token was not seeded"

env_vars=(T2M_UPSTREAM_URL="ws://127.0.0.1:$sport/realtime/api/v1/ws/realtime"
    T2M_INSTANCE_ID=img T2M_ACCESS_TOKEN_FILE=/tmp/secrets/t2m_token
    T2M_REFRESH_TOKEN_FILE=/var/lib/telematics2mqtt/refresh_token
    T2M_MQTT_URL="tcp://127.0.0.1:$mport" T2M_BASE_TOPIC=img T2M_HTTP_LISTEN="127.0.0.1:$hport")
check=$(as_user "$root" env -i "${env_vars[@]}" telematics2mqtt --check-config 2>&1) ||
    { echo "$check" >&2; fail "--check-config in the image"; }
grep -q 'environment only' <<<"$check" || fail "--check-config did not run on the environment alone"
grep -q -e image-token -e image-refresh <<<"$check" && fail "--check-config printed a secret"

as_user "$root" env -i "${env_vars[@]}" telematics2mqtt >"$work/bridge.log" 2>&1 &
bridge_pid=$!
pids+=("$bridge_pid")
say "bridge started from the image (uid 10001, read-only but /tmp and the state volume)"
msg=$(mosquitto_sub -p "$mport" -h 127.0.0.1 -t 'img/img/+/position' -C 1 -W 60 -v) ||
    { tail -n 30 "$work/bridge.log" >&2; fail "no position from the image's bridge within 60 s"; }
say "position: ${msg:0:120}"
grep -q '"latitude"' <<<"$msg" || fail "not a position: $msg"
ok=
for _ in $(seq 1 60); do
    if (as_user "$root" env -i "${env_vars[@]}" telematics2mqtt --healthcheck) >"$work/hc.log" 2>&1; then
        ok=1
        break
    fi
    sleep 0.5 # polling a condition (healthy), not a timing assumption
done
[ -n "$ok" ] || { cat "$work/hc.log" >&2; fail "--healthcheck did not answer 0"; }
say "--healthcheck: $(cat "$work/hc.log")"
if [ -n "${T2M_IMAGE_UI-1}" ]; then
    page=$(curl -fsS "http://127.0.0.1:$hport/") || fail "GET / from the image's bridge"
    grep -q 'leaflet' <<<"$page" || fail "the status page does not load Leaflet"
    curl -fsS -o /dev/null "http://127.0.0.1:$hport/leaflet/leaflet.js" ||
        fail "the image's bridge does not serve Leaflet"
    curl -fsS "http://127.0.0.1:$hport/api/state" | grep -q '"devices"' || fail "GET /api/state"
fi
grep -q -e image-token -e image-refresh "$work/bridge.log" && fail "a secret in the bridge's log"
kill -TERM "$bridge_pid"
wait "$bridge_pid" || fail "the image's bridge did not stop cleanly"
say "1 passed, 0 failed"
