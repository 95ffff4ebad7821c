#!/bin/bash
# Install-and-consume test (CI step): use libfuture the two ways an outside
# project does, from a scratch directory that is removed afterwards.
# 1. `meson install` into a temporary prefix; check that exactly the
#    headers, the versioned libraries (soname symlink chain) and the .pc
#    files land there; build tests/consumer/<name>.c against the installed
#    copy with `pkg-config --cflags --libs <name>` for libfuture and every
#    adapter installed, plus libfuture with `pkg-config --static`; run each.
# 2. Build tests/consumer as a meson project with this tree as its
#    subproject (forcefallback) and run its tests.
# Compiler: CC (default cc).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/libfuture-consume.XXXXXX")
trap 'rm -rf "$work"' EXIT
read -r -a cc <<< "${CC:-cc}"
# The compiler's own default C dialect, as a user's plain `cc` has it (the
# strict -std=c99/c11 builds of each header are tests/api's): libuv's
# headers need POSIX types that a bare -std=c11 hides.
cflags=(-Wall -Wextra -Wpedantic -Werror)
prefix=$work/prefix
libdir=$prefix/lib
export PKG_CONFIG_PATH=$libdir/pkgconfig

fail() {
  echo "consume: $*" >&2
  exit 1
}

# run EXE NAME: run a consumer program; it must say it is fine.
run() {
  local out
  out=$(timeout 60 "$1") || fail "$2: $1 failed: $out"
  [[ $out == "consumer ("*"): ok, libfuture $version" ]] ||
    fail "$2: unexpected output: $out"
  echo "  $2: $out"
}

echo "--- meson install into $prefix"
meson setup "$work/build" "$src" --prefix "$prefix" --libdir lib \
  -Dwerror=true -Dtests=disabled -Dexamples=disabled \
  > "$work/setup.log" || { cat "$work/setup.log"; fail "meson setup"; }
ninja -C "$work/build" > "$work/build.log" ||
  { cat "$work/build.log"; fail "build"; }
meson install -C "$work/build" > "$work/install.log" ||
  { cat "$work/install.log"; fail "meson install"; }
version=$(meson introspect --projectinfo "$work/build" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')

# Every installed file must be one of these, and each .pc must come with
# its header and its libraries.
shopt -s nullglob
pcs=("$libdir"/pkgconfig/*.pc)
[ "${#pcs[@]}" -gt 0 ] || fail "no .pc file installed"
n='libfuture(-[a-z0-9]+)?'
expected="^\./(include/$n\.h|lib/$n\.(a|so(\.[0-9]+|\.[0-9]+\.[0-9]+\.[0-9]+)?)|lib/pkgconfig/$n\.pc)$"
(cd "$prefix" && find . ! -type d | sort) | while read -r f; do
  [[ $f =~ $expected ]] || fail "installed a file nobody asked for: $f"
done
names=()
for pc in "${pcs[@]}"; do
  name=$(basename "$pc" .pc)
  names+=("$name")
  cmp -s "$src/include/$name.h" "$prefix/include/$name.h" ||
    fail "$name: include/$name.h is not the tree's"
  [ -f "$libdir/$name.a" ] || fail "$name: no static $name.a"
  # The chain name.so -> name.so.N -> name.so.X.Y.Z, with SONAME name.so.N.
  soname=$(readlink "$libdir/$name.so") || fail "$name: $name.so is no symlink"
  real=$(readlink "$libdir/$soname") || fail "$name: $soname is no symlink"
  [[ $soname =~ ^$name\.so\.[0-9]+$ && $real == "$name.so.$version" &&
     -f $libdir/$real && ! -L $libdir/$real ]] ||
    fail "$name: symlinks $name.so -> $soname -> $real"
  [[ $(readelf -d "$libdir/$real") == *"(SONAME)"*"[$soname]"* ]] ||
    fail "$name: $real has not SONAME $soname"
  [ "$(pkg-config --modversion "$name")" = "$version" ] ||
    fail "$name: pkg-config --modversion is not $version"
  [ "$(pkg-config --variable=prefix "$name")" = "$prefix" ] ||
    fail "$name: the .pc file's prefix is not $prefix"
  echo "  $name: $name.h, $name.a, $name.so -> $soname -> $real, $name.pc"
done
[ "$(readlink "$libdir/libfuture.so")" = libfuture.so.0 ] ||
  fail "libfuture's soname is not libfuture.so.0"

echo "--- consumers built with pkg-config against $prefix"
for name in "${names[@]}"; do
  prog=$src/tests/consumer/$name.c
  [ -f "$prog" ] || fail "$name: no consumer program $prog"
  read -r -a flags <<< "$(pkg-config --cflags --libs "$name")"
  "${cc[@]}" "${cflags[@]}" -o "$work/$name" \
    "$prog" "${flags[@]}" -Wl,-rpath,"$libdir"
  # The libraries must come from the prefix, not from a build directory
  # or the system.
  soname=$(readlink "$libdir/$name.so")
  deps=$(ldd "$work/$name")
  [[ $deps == *"$soname => $libdir/$soname "* ]] ||
    fail "$name: $soname does not come from $libdir: $deps"
  run "$work/$name" "$name"
done

read -r -a flags <<< "$(pkg-config --static --cflags --libs libfuture)"
"${cc[@]}" "${cflags[@]}" -static \
  -o "$work/libfuture-static" "$src/tests/consumer/libfuture.c" "${flags[@]}"
[[ $(readelf -d "$work/libfuture-static") != *NEEDED* ]] ||
  fail "libfuture (static): the program still needs shared libraries"
run "$work/libfuture-static" "libfuture (static)"

echo "--- tests/consumer with libfuture as a meson subproject"
cp -r "$src/tests/consumer" "$work/subproject"
mkdir "$work/subproject/subprojects"
ln -s "$src" "$work/subproject/subprojects/libfuture"
meson setup "$work/subproject/build" "$work/subproject" \
  --wrap-mode=forcefallback -Dwerror=true \
  > "$work/subproject.log" || { cat "$work/subproject.log"; fail "setup"; }
for name in "${names[@]}"; do
  grep -q "Dependency $name found: YES $version (overridden)" \
    "$work/subproject.log" || fail "the subproject did not provide $name"
done
ninja -C "$work/subproject/build" > "$work/subproject-build.log" ||
  { cat "$work/subproject-build.log"; fail "subproject build"; }
# Only the consumer's own tests: the subproject adds none of its own.
# (A subproject's test would be listed as libfuture:NAME.)
tests=$(meson test -C "$work/subproject/build" --list --no-rebuild | sort)
[ "$tests" = "$(printf '%s\n' "${names[@]}" | sort)" ] ||
  fail "subproject tests: $tests; installed: ${names[*]}"
for t in $tests; do
  run "$work/subproject/build/$t" "subproject $t"
done
echo "consume: ok"
