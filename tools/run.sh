#!/bin/bash
# One entry point for a fresh Debian 12 machine, used by README.md and CI:
#   bash tools/run.sh hello   build, then run examples/hello on the bundled loop
#   bash tools/run.sh test    build, then run the whole test suite
# It installs the Debian packages it needs when they are missing (apt-get as
# root, through sudo otherwise). Extra meson options: MESON_ARGS, build
# directory: BUILD_DIR (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build gcc libc6-dev pkg-config libcmocka-dev python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
fi

build=${BUILD_DIR:-build}
read -r -a extra <<< "${MESON_ARGS:-}"
if [ -f "$build/build.ninja" ]; then
  meson configure "$build" "${extra[@]}" >/dev/null
else
  meson setup "$build" "${extra[@]}"
fi

# hello builds the one program it runs (the library and examples/hello),
# not the ~100 targets of the tests.
case "${1:-test}" in
  hello) ninja -C "$build" examples/hello && "$build/examples/hello" ;;
  test) ninja -C "$build" && meson test -C "$build" --print-errorlogs ;;
  *) echo "usage: $0 hello|test" >&2; exit 2 ;;
esac
