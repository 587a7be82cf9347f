#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages the build and the tests need, only when missing.
# Sourced or run by demo.sh, test.sh and .ci/run: the one list of packages.
set -euo pipefail

T2M_BUILD_PACKAGES=(cmake make gcc pkg-config libc6-dev libssl-dev libwebsockets-dev
    libpaho-mqtt-dev libjson-c-dev libconfig-dev libcunit1-dev libmosquitto-dev libsystemd-dev)
T2M_RUN_PACKAGES=(mosquitto mosquitto-clients tzdata ca-certificates libjs-leaflet)
T2M_TEST_PACKAGES=(python3 python3-paho-mqtt python3-websocket python3-yaml python3-jinja2 openssl
    clang libclang-rt-14-dev systemd dpkg-dev file prometheus rabbitmq-server
    cppcheck clang-tidy clang-format valgrind shellcheck pyflakes3 libfaketime
    podman buildah debootstrap curl chromium fonts-dejavu-core python3-websockets)

t2m_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    echo "${missing[@]:-}"
}

# t2m_install PKG... : apt-get install what is missing (as root, or through sudo).
t2m_install() {
    local missing
    missing=$(t2m_missing "$@")
    [ -z "$missing" ] && return 0
    echo "installing: $missing" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-all}" in
    build) t2m_install "${T2M_BUILD_PACKAGES[@]}" ;;
    run) t2m_install "${T2M_BUILD_PACKAGES[@]}" "${T2M_RUN_PACKAGES[@]}" ;;
    *)
        t2m_install "${T2M_BUILD_PACKAGES[@]}" "${T2M_RUN_PACKAGES[@]}" "${T2M_TEST_PACKAGES[@]}"
        # The Node-RED test needs node and npm; a machine that already has them (from anywhere)
        # keeps its own, a fresh Debian 12 gets Debian's.
        command -v npm >/dev/null || t2m_install nodejs npm
        ;;
    esac
fi
