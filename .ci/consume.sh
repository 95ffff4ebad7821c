#!/bin/bash
# Install-and-consume test (CI step): install libfuture every way README.md's
# "Install" section says, with the section's own blocks (marked
# `<!-- ci: NAME -->`, read by .ci/readme-block.py), and use it the ways an
# outside project does. Everything happens in a scratch directory, from
# copies of the tree, with HOME pointing into it; it is removed afterwards.
# 1. The prerequisites (apt-get install), then the prefix install (block
#    meson-install-prefix, which builds and runs examples/hello against
#    it). Exactly the headers, the versioned libraries (soname symlink
#    chain), the .pc files and the CMake package must land there.
#    tests/consumer/<name>.c is built with pkg-config for libfuture and
#    every adapter installed (libfuture also --static), and
#    tests/consumer-cmake with CMake, every adapter required; each program
#    runs and must use the prefix's libraries. The README's CMake blocks
#    build hello against the prefix; find_package refuses another minor.
# 2. The system-wide block, staged with DESTDIR: the files must land where
#    the run-time loader (after ldconfig), pkg-config and CMake look.
# 3. tests/consumer as a meson project with this tree as its subproject:
#    the library alone by default, every adapter when asked for.
# 4. The README's wrap, pointed at a git repository of the tree tagged as
#    the wrap says: hello builds with libfuture fetched as a subproject.
# 5. The Debian packages: the symbols files up to date, the README's block
#    (build with the tests, dpkg -i), lintian (no error), the adapters'
#    packages (apt-get install ./...); the pkg-config and CMake blocks, tests/consumer with
#    pkg-config and tests/consumer-cmake against them; then they are purged
#    and must leave no file behind.
# Finally every README block must have been run. It installs and removes
# packages, so it runs as root (CI), one run at a time (a lock), and refuses
# to start when a libfuture package is already installed. Compiler: CC
# (default cc).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
read -r -a cc <<< "${CC:-cc}"
# The compiler's own default C dialect, as a user's plain `cc` has it (the
# strict -std=c99/c11 builds of each header are tests/api's): libuv's
# headers need POSIX types that a bare -std=c11 hides.
cflags=(-Wall -Wextra -Wpedantic -Werror)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# The Debian packages, as debian/control names them.
mapfile -t packages < <(sed -n 's/^Package: //p' "$src/debian/control")

fail() {
  echo "consume: $*" >&2
  exit 1
}

# installed_packages: those of them dpkg has (unpacked, or just configuration
# files); dpkg-query fails when it knows none of them.
installed_packages() {
  { dpkg-query -W -f '${Package} ${db:Status-Status}\n' "${packages[@]}" \
      2>/dev/null || true; } | awk '$2 != "not-installed" { print $1 }'
}
[ "$(id -u)" = 0 ] || fail "run as root: it installs and removes packages"
# One run at a time on a machine: the packages are the machine's, and an
# installed libfuture would be found by the subproject and wrap checks.
exec 9> /run/lock/libfuture-consume.lock
flock -w 1200 9 || fail "another .ci/consume.sh has held the lock for 20 minutes"
[ -z "$(installed_packages)" ] ||
  fail "libfuture packages are installed already: $(installed_packages)"
work=$(mktemp -d "${TMPDIR:-/tmp}/libfuture-consume.XXXXXX")
home=$work/home
mkdir "$home"
# On exit, even a failed one: purge what this run installed.
cleanup() {
  local left
  left=$(installed_packages)
  if [ -n "$left" ]; then
    # shellcheck disable=SC2086 # one word per package
    dpkg --purge $left > /dev/null || echo "consume: could not purge $left" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# copy_tree DIR: the tree's files in DIR, tracked or not, but nothing git
# ignores (no build directory).
copy_tree() {
  mkdir -p "$1"
  if git -C "$src" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    git -C "$src" ls-files -z -co --exclude-standard |
      tar -C "$src" --null -T - --ignore-failed-read -cf - | tar -C "$1" -xf -
  else
    tar -C "$src" --exclude='./build*' -cf - . | tar -C "$1" -xf -
  fi
}

# block NAME: README's block NAME, noted as run.
block() {
  python3 "$src/.ci/readme-block.py" "$1"
  echo "$1" >> "$work/blocks-run"
}

# run_block NAME DIR [VAR=VALUE...]: run README's shell block NAME in DIR as
# pasted into a shell (bash, stopping at the first failure), with HOME in
# the scratch directory, `sudo` running the command itself (we are root),
# no input, and the variables given. Its output goes to $work/NAME.log.
run_block() {
  local name=$1 dir=$2 code
  shift 2
  code=$(block "$name")
  echo "--- README block $name, in ${dir#"$work"/}"
  (cd "$dir" && env HOME="$home" "$@" bash -euo pipefail -c \
    "sudo() { \"\$@\"; }; $code" < /dev/null > "$work/$name.log" 2>&1) ||
    { tail -n 60 "$work/$name.log"; fail "README block $name failed"; }
}

# run EXE NAME: run a consumer program; it must say it is fine.
run() {
  local out
  out=$(timeout 60 "$1") || fail "$2: $1 failed: $out"
  [[ $out == "consumer ("*"): ok, libfuture $version" ]] ||
    fail "$2: unexpected output: $out"
  echo "  $2: $out"
}

# uses EXE NAME LIBDIR: EXE loads library NAME from LIBDIR, not from a build
# directory or another install (compared as real paths: /lib is /usr/lib).
uses() {
  local soname loaded
  soname=$(readlink "$3/$2.so") || fail "$2: no $3/$2.so"
  loaded=$(ldd "$1" | awk -v so="$soname" '$1 == so && $2 == "=>" { print $3 }')
  if [ -z "$loaded" ] ||
     [ "$(readlink -f "$loaded")" != "$(readlink -f "$3/$soname")" ]; then
    fail "$1: $soname does not come from $3: $(ldd "$1")"
  fi
}

# hello_ran NAME: README block NAME ran examples/hello to its end.
hello_ran() {
  grep -qx '\.\.\. world' "$work/$1.log" ||
    { cat "$work/$1.log"; fail "block $1: hello did not print its result"; }
}

# pc_consumers TAG LIBDIR: build tests/consumer/<name>.c for every installed
# library with pkg-config (as found on the current PKG_CONFIG_PATH), run it.
pc_consumers() {
  local name flags
  for name in "${names[@]}"; do
    read -r -a flags <<< "$(pkg-config --cflags --libs "$name")"
    "${cc[@]}" "${cflags[@]}" -o "$work/$1-$name" \
      "$src/tests/consumer/$name.c" "${flags[@]}" -Wl,-rpath,"$2"
    uses "$work/$1-$name" "$name" "$2"
    run "$work/$1-$name" "$1 pkg-config $name"
  done
}

# cmake_consumer TAG LIBDIR [CMAKE ARGS...]: build tests/consumer-cmake with
# every installed adapter required, run each program.
cmake_consumer() {
  local tag=$1 dir=$work/$1 libdir=$2 name
  shift 2
  echo "--- tests/consumer-cmake ($*)"
  { cmake -S "$src/tests/consumer-cmake" -B "$dir" \
      -DCMAKE_C_FLAGS="${cflags[*]}" \
      -DLIBFUTURE_ADAPTERS="$(IFS=';'; echo "${adapters[*]}")" "$@" &&
    cmake --build "$dir"; } > "$dir.log" 2>&1 ||
    { cat "$dir.log"; fail "tests/consumer-cmake ($*)"; }
  grep -o "libfuture $version in .*" "$dir.log" ||
    fail "tests/consumer-cmake did not find libfuture $version"
  for name in "${names[@]}"; do
    [ -x "$dir/$name" ] || fail "CMake made no target for $name"
    uses "$dir/$name" "$name" "$libdir"
    run "$dir/$name" "$tag $name"
  done
}

# cmake_hello TAG [VAR=VALUE...]: README's CMake blocks build and run hello.
cmake_hello() {
  local dir=$work/$1
  shift
  mkdir "$dir"
  block cmake-lists > "$dir/CMakeLists.txt"
  cp "$src/examples/hello.c" "$dir/"
  run_block cmake-build "$dir" "$@"
  hello_ran cmake-build
}

echo "--- 1. meson install into a prefix"
copy_tree "$work/tree"
run_block prerequisites "$work/tree"
run_block meson-install-prefix "$work/tree"
hello_ran meson-install-prefix
prefix=$home/.local
libdir=$prefix/lib
export PKG_CONFIG_PATH=$libdir/pkgconfig
version=$(meson introspect --projectinfo "$work/tree/build-local" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')

# Every installed file must be one of these, and each .pc must come with
# its header, its libraries and its CMake file.
shopt -s nullglob
pcs=("$libdir"/pkgconfig/*.pc)
[ "${#pcs[@]}" -gt 0 ] || fail "no .pc file installed"
n='libfuture(-[a-z0-9]+)?'
cm=lib/cmake/libfuture
expected="^\./(include/$n\.h|lib/$n\.(a|so(\.[0-9]+|\.[0-9]+\.[0-9]+\.[0-9]+)?)|lib/pkgconfig/$n\.pc|$cm/(libfutureConfig|libfutureConfigVersion|libfuture-[a-z0-9]+)\.cmake)$"
(cd "$prefix" && find . ! -type d | sort) | while read -r f; do
  [[ $f =~ $expected ]] || fail "installed a file nobody asked for: $f"
done
names=()
adapters=()
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
  if [ "$name" = libfuture ]; then
    cmake_file=libfutureConfig.cmake
  else
    cmake_file=$name.cmake
    adapters+=("${name#libfuture-}")
  fi
  [ -f "$prefix/$cm/$cmake_file" ] || fail "$name: no $cm/$cmake_file"
  echo "  $name: $name.h, $name.a, $name.so -> $soname -> $real, $name.pc, $cmake_file"
done
[ "$(readlink "$libdir/libfuture.so")" = libfuture.so.0 ] ||
  fail "libfuture's soname is not libfuture.so.0"

echo "--- consumers built with pkg-config against the prefix"
pc_consumers prefix "$libdir"
read -r -a flags <<< "$(pkg-config --static --cflags --libs libfuture)"
"${cc[@]}" "${cflags[@]}" -static \
  -o "$work/libfuture-static" "$src/tests/consumer/libfuture.c" "${flags[@]}"
[[ $(readelf -d "$work/libfuture-static") != *NEEDED* ]] ||
  fail "libfuture (static): the program still needs shared libraries"
run "$work/libfuture-static" "libfuture (static)"

echo "--- consumers built with CMake against the prefix"
cmake_consumer cmake-prefix "$libdir" -DCMAKE_PREFIX_PATH="$prefix"
# While 0.x, another minor version is another API: find_package refuses.
IFS=. read -r major minor _ <<< "$version"
others=("$major.$((minor + 1))")
[ "$minor" = 0 ] || others+=("$major.$((minor - 1))")
for other in "${others[@]}"; do
  if cmake -S "$src/tests/consumer-cmake" -B "$work/cmake-$other" \
      -DCMAKE_PREFIX_PATH="$prefix" -DLIBFUTURE_VERSION="$other" \
      > "$work/cmake-$other.log" 2>&1; then
    fail "find_package(libfuture $other) accepted $version"
  fi
  grep -q 'compatible with requested version' "$work/cmake-$other.log" ||
    { cat "$work/cmake-$other.log"; fail "find_package(libfuture $other)"; }
  echo "  find_package(libfuture $other): refused, as it must be"
done
cmake_hello cmake-hello-prefix CMAKE_PREFIX_PATH="$prefix"
uses "$work/cmake-hello-prefix/build/hello" libfuture "$libdir"

# From here on, the prefix is out of sight.
unset PKG_CONFIG_PATH

echo "--- 2. meson install, system-wide (staged with DESTDIR)"
stage=$work/stage
run_block meson-install-system "$work/tree" DESTDIR="$stage"
so=$(cd "$stage" && find . -name libfuture.so.0)
[ -n "$so" ] || fail "the system-wide install has no libfuture.so.0"
sys_libdir=$(dirname "${so#.}")
# The directories the README says ldconfig, pkg-config and CMake search.
grep -qsx "$sys_libdir" /etc/ld.so.conf /etc/ld.so.conf.d/*.conf ||
  fail "$sys_libdir is not a directory ldconfig knows"
[[ :$(pkg-config --variable pc_path pkg-config): == *":$sys_libdir/pkgconfig:"* ]] ||
  fail "$sys_libdir/pkgconfig is not on pkg-config's default path"
for f in "$sys_libdir/pkgconfig/libfuture.pc" \
    "$sys_libdir/cmake/libfuture/libfutureConfig.cmake" \
    "${sys_libdir%/lib*}/include/libfuture.h"; do
  [ -f "$stage$f" ] || fail "the system-wide install has no $f"
done
case $sys_libdir in
  /usr/local/lib | "/usr/local/lib/$multiarch") ;; # CMake searches both
  *) fail "the system-wide install put the library in $sys_libdir" ;;
esac
echo "  library, .pc and CMake package in $sys_libdir"

echo "--- 3. tests/consumer with libfuture as a meson subproject"
cp -r "$src/tests/consumer" "$work/subproject"
mkdir "$work/subproject/subprojects"
ln -s "$src" "$work/subproject/subprojects/libfuture"
# subproject BUILD [MESON ARGS...]: configure and build tests/consumer with
# the tree as its subproject (forcefallback: even if one is installed).
subproject() {
  local build=$work/subproject/$1
  shift
  meson setup "$build" "$work/subproject" --wrap-mode=forcefallback \
    -Dwerror=true "$@" > "$build.log" || { cat "$build.log"; fail "setup"; }
  ninja -C "$build" > "$build-ninja.log" ||
    { cat "$build-ninja.log"; fail "subproject build"; }
}
# By default, the library alone.
subproject build-default
grep -q "Dependency libfuture found: YES $version (overridden)" \
  "$work/subproject/build-default.log" || fail "the subproject gave no libfuture"
! grep -qi "dependency libfuture-[a-z0-9]* found: YES" \
  "$work/subproject/build-default.log" ||
  fail "the subproject built an adapter nobody asked for"
[ "$(meson test -C "$work/subproject/build-default" --list --no-rebuild)" = libfuture ] ||
  fail "subproject by default: not libfuture alone"
run "$work/subproject/build-default/libfuture" "subproject libfuture (adapters off)"
# Asked for, every adapter installed in 1. Only the consumer's own tests
# run: a test of the subproject's own would be listed as libfuture:NAME.
options=()
for a in "${adapters[@]}"; do options+=("-Dlibfuture:$a=enabled"); done
subproject build "${options[@]}"
for name in "${names[@]}"; do
  grep -q "Dependency $name found: YES $version (overridden)" \
    "$work/subproject/build.log" || fail "the subproject did not provide $name"
done
tests=$(meson test -C "$work/subproject/build" --list --no-rebuild | sort)
[ "$tests" = "$(printf '%s\n' "${names[@]}" | sort)" ] ||
  fail "subproject tests: $tests; installed: ${names[*]}"
for t in $tests; do
  run "$work/subproject/build/$t" "subproject $t"
done

echo "--- 4. the README's wrap"
repo=$work/libfuture-git
copy_tree "$repo"
revision=$(block wrap | sed -n 's/^revision = //p')
[ "$revision" = "v$version" ] ||
  fail "README's wrap asks for revision $revision; this is $version"
git -C "$repo" init -q
git -C "$repo" add -A
git -C "$repo" -c user.name=ci -c user.email=ci@example.org commit -q -m tree
git -C "$repo" tag "$revision"
app=$work/wrap-app
mkdir -p "$app/subprojects"
# The one change: the wrap fetches from the repository just made.
block wrap | sed "s|^url = .*|url = $repo|" > "$app/subprojects/libfuture.wrap"
block wrap-meson-build > "$app/meson.build"
cp "$src/examples/hello.c" "$app/"
run_block wrap-build "$app"
hello_ran wrap-build
grep -q "Dependency libfuture found: YES $version (overridden)" \
  "$work/wrap-build.log" || fail "the wrap did not provide libfuture"
[ "$(git -C "$app/subprojects/libfuture" rev-parse HEAD)" = \
  "$(git -C "$repo" rev-parse "$revision^{commit}")" ] ||
  fail "the wrap did not check out $revision"
echo "  hello built with libfuture $revision from the wrap"

echo "--- 5. Debian packages"
deb=$work/deb
copy_tree "$deb/src"
(cd "$deb/src" && debian/update-symbols --check) ||
  fail "a symbols file is stale (debian/README.source)"
run_block debian-packages "$deb/src"
grep -E '^(Ok|Fail): ' "$work/debian-packages.log" | tr -s ' ' | paste -sd ' ' |
  sed 's/^/  tests during the package build: /'
echo "--- lintian"
lintian --fail-on error "$deb"/libfuture_"$version"_"$arch".changes ||
  fail "lintian found errors"
# The rest (the adapters) the other way the README gives: apt-get install
# of the files (it fetches nothing here: their dependencies are installed).
[ "$(installed_packages | sort)" = "$(printf '%s\n' libfuture-dev libfuture0)" ] ||
  fail "the README's dpkg -i installed: $(installed_packages)"
debs=()
for p in "${packages[@]}"; do
  [ "$p" = libfuture0 ] || [ "$p" = libfuture-dev ] ||
    debs+=("$deb/${p}_${version}_$arch.deb")
done
apt-get install -y -q "${debs[@]}" > "$work/apt.log" ||
  { cat "$work/apt.log"; fail "apt-get install of the adapters' packages"; }
for p in "${packages[@]}"; do dpkg -L "$p"; done | sort -u > "$work/files"
sys_libdir=/usr/lib/$multiarch
grep -qx "$sys_libdir/cmake/libfuture/libfutureConfig.cmake" "$work/files" ||
  fail "no package has the CMake package"
echo "  installed: ${packages[*]}"

run_block pkg-config "$deb/src"
hello_ran pkg-config
grep -qx 'result: tick' "$work/pkg-config.log" ||
  { cat "$work/pkg-config.log"; fail "block pkg-config: uv_timer failed"; }
uses "$deb/src/hello" libfuture "$sys_libdir"
uses "$deb/src/uv_timer" libfuture-uv "$sys_libdir"
pc_consumers system "$sys_libdir"
cmake_hello cmake-hello-system
uses "$work/cmake-hello-system/build/hello" libfuture "$sys_libdir"
cmake_consumer cmake-system "$sys_libdir"
grep -q "libfuture $version in $sys_libdir/cmake/libfuture" \
  "$work/cmake-system.log" || fail "CMake did not find the system's libfuture"

echo "--- purge the packages"
# shellcheck disable=SC2046 # one word per package
dpkg --purge $(installed_packages) > "$work/purge.log" ||
  { cat "$work/purge.log"; fail "dpkg --purge"; }
while read -r f; do
  if [ -L "$f" ] || { [ -e "$f" ] && [ ! -d "$f" ]; }; then
    fail "$f is left after the purge"
  fi
done < "$work/files"
[ -z "$(installed_packages)" ] || fail "still installed: $(installed_packages)"

# Every block of the README ran.
missed=$(comm -23 <(python3 "$src/.ci/readme-block.py" --list | sort) \
  <(sort -u "$work/blocks-run"))
[ -z "$missed" ] || fail "README blocks CI did not run: $missed"
echo "consume: ok"
