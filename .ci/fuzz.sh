#!/bin/bash
# CI: the differential fuzzer (fuzz/README.md). Builds the libFuzzer target
# with clang and fuzzes each target for 60 s, each starting from
# a copy of its committed corpus (which stays untouched); then replays the
# corpora through the gcc build under ASan+UBSan. Any crash or model
# divergence fails.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf build-fuzz-ci build-fuzz-ci-replay
CC=clang meson setup build-fuzz-ci -Dfuzzing=enabled -Dwerror=true \
  -Dtests=disabled -Dexamples=disabled -Db_lundef=false
ninja -C build-fuzz-ci fuzz/fuzz_future fuzz/fuzz_compose fuzz/fuzz_task \
  fuzz/fuzz_pool
# Each target from a copy of its corpus; crashes land in $work, printed
# before failing.
for target in fuzz_future:corpus fuzz_compose:corpus-compose \
    fuzz_task:corpus-task fuzz_pool:corpus-pool; do
  name=${target%%:*}
  corpus=${target#*:}
  mkdir "$work/$corpus"
  cp fuzz/"$corpus"/* "$work/$corpus/"
  if ! build-fuzz-ci/fuzz/"$name" -max_total_time="$seconds" \
      -print_final_stats=1 -artifact_prefix="$work/" "$work/$corpus"; then
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [ -e "$f" ] && echo "reproducer: $f ($(base64 -w0 "$f"))"
    done
    exit 1
  fi
done

CC=gcc meson setup build-fuzz-ci-replay -Dfuzzing=enabled -Dwerror=true \
  -Dtests=disabled -Dexamples=disabled -Db_sanitize=address,undefined \
  -Dbuildtype=debug
ninja -C build-fuzz-ci-replay
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-fuzz-ci-replay --suite fuzz --print-errorlogs
