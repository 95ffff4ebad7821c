#!/bin/bash
# Keeps the benchmark building (with warnings as errors) and running: each
# workload once, untimed, on every host and the baseline. Its timings and
# targets are not checked here: a shared CI machine is no place for them
# (docs/performance.md says how to measure).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}

rm -rf "$build"
meson setup "$build" -Dbenchmarks=enabled -Dwerror=true
ninja -C "$build"
for work in w1 w2 w4; do
  for host in lib ml base; do
    "$build/bench/bench" "$work" "$host" 1000 16
  done
done
"$build/bench/bench_task" --smoke
for work in arm fire; do
  for host in ml base; do
    "$build/bench/bench_timers" "$work" "$host" 1000
  done
done
# Fibers: every row once, small (Boost.Context's when it was found).
"$build/bench/bench_fiber" 1000
# The worker pools' table, tiny: 100 jobs, 10 round trips, one run each.
"$build/bench/bench_pool" 100 10 1
"$build/bench/bench_compose" quick
"$build/bench/bench_time" 1000
echo "bench: every workload ran"
