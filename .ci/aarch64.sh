#!/bin/bash
# The AArch64 fiber switch, run: tests/fiber_cross.c with src/fiber.c,
# src/alloc.c and src/fiber_switch_aarch64.S, cross-built statically with
# aarch64-linux-gnu-gcc at -O0, at -O2, and at -O2 with pointer
# authentication of return addresses (-mbranch-protection=standard), and
# run under qemu-aarch64 (user-mode emulation) on its `max` CPU, which
# authenticates them. First the same driver runs natively against this machine's
# switch, so that a failure under the emulator is the AArch64 switch's and
# not the driver's. Installs nothing: .ci/run installs gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross and qemu-user.
# Usage: bash .ci/aarch64.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-aarch64}

rm -rf "$out"
mkdir -p "$out"
# The project's warnings (meson.build, warning_level=3), as errors.
flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror
  -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wundef -Wcast-align
  -Wpointer-arith -Wwrite-strings -Werror=vla -Iinclude -Isrc)
sources=(tests/fiber_cross.c src/fiber.c src/alloc.c)

native=src/fiber_switch_$(uname -m).S
if [ -f "$native" ]; then
  echo "--- natively, $native"
  cc "${flags[@]}" -O2 "${sources[@]}" "$native" -lm -o "$out/fiber_cross-native"
  "$out/fiber_cross-native"
fi

n=0
for opts in "-O0" "-O2" "-O2 -mbranch-protection=standard"; do
  n=$((n + 1))
  echo "--- qemu-aarch64, src/fiber_switch_aarch64.S, $opts"
  # shellcheck disable=SC2086 # $opts: one or more flags
  aarch64-linux-gnu-gcc "${flags[@]}" $opts -static "${sources[@]}" \
    src/fiber_switch_aarch64.S -lm -o "$out/fiber_cross-$n"
  qemu-aarch64 -cpu max "$out/fiber_cross-$n"
done
