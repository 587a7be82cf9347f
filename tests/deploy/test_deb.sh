#!/usr/bin/env bash
# test_deb.sh - builds the .deb the way a release does (scripts/build.sh with the /usr prefix,
# then cpack -G DEB), checks its contents and control data, installs it with dpkg, runs the
# installed binary and verifies the installed unit, then purges the package again.
# Never skips: without dpkg, or not as root, it fails and says why.
#
#   tests/deploy/test_deb.sh SOURCE_DIR WORK_DIR
set -euo pipefail

src=$(cd "${1:?usage: test_deb.sh SOURCE_DIR WORK_DIR}" && pwd)
work=${2:?usage: test_deb.sh SOURCE_DIR WORK_DIR}
fail() {
    echo "test_deb: FAIL: $*" >&2
    exit 1
}
for tool in dpkg dpkg-deb cpack; do
    command -v "$tool" >/dev/null || fail "$tool not found (Debian: dpkg, dpkg-dev, cmake)"
done
[ "$(id -u)" -eq 0 ] || fail "dpkg -i needs root"
if dpkg-query -W -f='${Status}' telematics2mqtt 2>/dev/null | grep -q "install ok installed"; then
    fail "telematics2mqtt is already installed here; this test installs and purges its own"
fi

mkdir -p "$work"
work=$(cd "$work" && pwd)
build="$work/build"
T2M_BUILD_DIR="$build" DESTDIR="$work/stage" "$src/scripts/build.sh" /usr >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "scripts/build.sh"; }
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB) >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log" >&2; fail "cpack"; }
debs=("$build"/telematics2mqtt_*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
    fail "expected one .deb in $build, got: ${debs[*]}"
fi
deb=${debs[0]}
echo "test_deb: built $deb"

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/telematics2mqtt ./etc/telematics2mqtt/telematics2mqtt.conf \
    ./lib/systemd/system/telematics2mqtt.service ./usr/share/man/man1/telematics2mqtt.1.gz \
    ./usr/libexec/telematics2mqtt/t2m-seed-refresh-token; do
    grep -q " $f\$" <<<"$contents" || fail "$f not in the package"
done
grep -q ' \./usr/local' <<<"$contents" && fail "package has files under /usr/local"
conffiles=$(dpkg-deb -I "$deb" conffiles) || fail "no conffiles"
[ "$conffiles" = "/etc/telematics2mqtt/telematics2mqtt.conf" ] || fail "conffiles: $conffiles"
depends=$(dpkg-deb -f "$deb" Depends)
echo "test_deb: Depends: $depends"
for lib in libwebsockets17 libpaho-mqtt1.3 libjson-c5 libconfig9 libmosquitto1 libc6 libjs-leaflet; do
    grep -q "\b$lib\b" <<<"$depends" || fail "Depends lacks $lib"
done
[ "$(dpkg-deb -f "$deb" Package)" = telematics2mqtt ] || fail "Package name"

cleanup() { dpkg -P telematics2mqtt >/dev/null 2>&1 || true; }
trap cleanup EXIT
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }

version=$(/usr/bin/telematics2mqtt --version) || fail "installed telematics2mqtt --version failed"
expected=$(dpkg-deb -f "$deb" Version)
expected=${expected%-*}
grep -q -- "$expected" <<<"$version" || fail "--version said '$version', package is $expected"
echo "test_deb: installed binary: $version"
/usr/bin/telematics2mqtt --help >/dev/null || fail "installed telematics2mqtt --help failed"
man -l /usr/share/man/man1/telematics2mqtt.1.gz >/dev/null 2>&1 ||
    zcat /usr/share/man/man1/telematics2mqtt.1.gz | grep -q '^\.TH TELEMATICS2MQTT 1' ||
    fail "man page unreadable"
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify --man=no /lib/systemd/system/telematics2mqtt.service 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
else
    echo "test_deb: systemd-analyze not found: installed unit not verified"
fi

dpkg -P telematics2mqtt >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -P"; }
trap - EXIT
[ ! -e /usr/bin/telematics2mqtt ] || fail "binary left after purge"
[ ! -e /etc/telematics2mqtt/telematics2mqtt.conf ] || fail "conffile left after purge"
echo "test_deb: 1 passed, 0 failed"
