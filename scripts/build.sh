#!/usr/bin/env bash
# build.sh - the one release build: configure (Release, -Werror), build, install into a prefix.
# CI (.ci/run), docker/Dockerfile and the .deb all build through this script, so what ships is
# what was tested.
#
#   scripts/build.sh [PREFIX]        PREFIX defaults to /usr/local
#
# Environment: T2M_BUILD_DIR (default build/dist), DESTDIR (staging root for the install, e.g.
# the Docker image's), T2M_JOBS (default: the number of CPUs), T2M_CMAKE_ARGS (extra arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${1:-/usr/local}
build_dir=${T2M_BUILD_DIR:-build/dist}
jobs=${T2M_JOBS:-$(nproc 2>/dev/null || echo 2)}

# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DT2M_WERROR=ON \
    -DCMAKE_INSTALL_PREFIX="$prefix" ${T2M_CMAKE_ARGS:-}
cmake --build "$build_dir" -j"$jobs"
cmake --install "$build_dir"
echo "build.sh: installed into ${DESTDIR:-}$prefix (build tree $build_dir)"
