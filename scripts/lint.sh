#!/usr/bin/env bash
# lint.sh - static analysis: cppcheck and clang-tidy (the top-level .clang-tidy) on bridge/ and
# tests/sim/, using the compile_commands.json of a build, plus clang-format --dry-run -Werror on
# every C file of the tree. Exit status non-zero on any finding.
#   T2M_BUILD=build/release     the build whose compile_commands.json is used (configured here)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${T2M_BUILD:-build/release}
for tool in cppcheck clang-tidy-14 run-clang-tidy-14 clang-format; do
    command -v "$tool" >/dev/null || {
        echo "lint.sh: $tool not found (Debian packages cppcheck clang-tidy clang-format:" \
            "scripts/deps.sh)" >&2
        exit 1
    }
done

# configuring writes compile_commands.json; the one generated source (the status page's files as
# C arrays, included by core/ui.c) is made by building its library
cmake -S . -B "$build" -DT2M_WERROR=ON >/dev/null
cmake --build "$build" --target t2m_ui >/dev/null

# Only bridge/ and tests/sim/: the tests themselves are not held to these checks.
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
/usr/bin/python3 - "$build/compile_commands.json" "$db/compile_commands.json" <<'PY'
import json, sys
cc = json.load(open(sys.argv[1]))
keep = [e for e in cc if "/bridge/" in e["file"] or "/tests/sim/" in e["file"]]
json.dump(keep, open(sys.argv[2], "w"))
print("lint.sh: %d translation units" % len(keep), file=sys.stderr)
PY

status=0
echo "==== cppcheck ===="
# No --suppress: the tree is clean without any. (A false positive from a library macro would be
# suppressed here by id and file, with the reason beside it.)
cppcheck --project="$db/compile_commands.json" --enable=warning,performance,portability \
    --error-exitcode=1 --inline-suppr --quiet -j"$(nproc 2>/dev/null || echo 2)" || status=1

echo "==== clang-tidy ===="
tidy_log="$db/tidy.log"
# run-clang-tidy colours its output even into a file: strip the escapes before grepping. Its own
# failure (a crash, a file it cannot parse) fails the lint too, with what it said.
tidy_rc=0
run-clang-tidy-14 -p "$db" -quiet -j "$(nproc 2>/dev/null || echo 2)" 2>"$db/tidy.err" |
    sed 's/\x1b\[[0-9;]*m//g' >"$tidy_log" || tidy_rc=$?
if [ "$tidy_rc" -ne 0 ]; then
    echo "clang-tidy failed (exit $tidy_rc):" >&2
    { grep -v "^[0-9]* warnings\? generated" "$db/tidy.err" || true; } | tail -20 >&2
    status=1
fi
if grep -qE '(warning|error): ' "$tidy_log"; then
    grep -E -A6 '(warning|error): ' "$tidy_log" >&2
    echo "clang-tidy: $(grep -cE '(warning|error): ' "$tidy_log") findings" >&2
    status=1
fi

echo "==== clang-format ===="
mapfile -t cfiles < <(git ls-files -co --exclude-standard '*.c' '*.h')
clang-format --dry-run -Werror "${cfiles[@]}" || status=1

[ "$status" -eq 0 ] && echo "lint.sh: clean (${#cfiles[@]} C files formatted)"
exit $status
