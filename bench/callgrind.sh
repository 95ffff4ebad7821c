#!/bin/bash
# Instructions per W1 cycle, counted by callgrind: a number that a noisy,
# shared machine cannot blur. The target applies to the ring host, which
# measures the future alone; the bundled loop's count is printed beside it.
# Each side runs twice (N and 2N cycles) and the difference is divided by
# N, so start-up and tear-down cancel out.
#   bench/callgrind.sh path/to/bench      (exit 1 if the ratio exceeds 1.5)
set -euo pipefail
bench=${1:?usage: callgrind.sh path/to/bench}
n=${CALLGRIND_CYCLES:-100000}
limit=1.5

instructions() { # which cycles
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$bench" w1 "$1" "$2" 2>&1 |
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p'
}

per_cycle() { # which
  local one two
  one=$(instructions "$1" "$n")
  two=$(instructions "$1" $((2 * n)))
  [ -n "$one" ] && [ -n "$two" ] || { echo "callgrind gave no count" >&2; exit 2; }
  echo $(((two - one) / n))
}

lib=$(per_cycle lib)
ml=$(per_cycle ml)
base=$(per_cycle base)
floor=$(per_cycle floor)
ratio() { awk -v a="$1" -v b="$base" 'BEGIN { printf "%.2f", a / b }'; }
echo "W1 instructions per cycle (callgrind): hand-written ring $base;" \
  "libfuture on the ring host $lib ($(ratio "$lib")x, target <= ${limit}x)," \
  "on the bundled loop $ml; the stripped future (floor) $floor" \
  "($(ratio "$floor")x)"
ratio=$(ratio "$lib")
awk -v r="$ratio" -v l="$limit" 'BEGIN { exit !(r <= l) }' || {
  echo "MISSED: libfuture needs more than ${limit}x the baseline's instructions"
  exit 1
}
