#!/bin/bash
# Coverage of src/ by the whole test suite (unit tests and examples): a
# -Db_coverage=true build runs its tests, then gcovr prints the line and the
# branch table and fails below 95 % of lines or 85 % of branches.
# Usage: bash .ci/coverage.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-coverage}

rm -rf "$build"
meson setup "$build" -Dwerror=true -Db_coverage=true -Dbuildtype=debug
ninja -C "$build"
meson test -C "$build" --print-errorlogs

# Branches gcc emits on lines with no code of ours (a closing brace, a
# declaration) are not counted: --exclude-unreachable-branches. C has no
# throw branches, so --exclude-throw-branches would change nothing.
gcovr=(gcovr --root . --filter 'src/' --exclude-unreachable-branches "$build")
"${gcovr[@]}"
"${gcovr[@]}" --branches --print-summary \
  --fail-under-line 95 --fail-under-branch 85
