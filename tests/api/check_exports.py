#!/usr/bin/env python3
"""The exported-symbols test: each shared library the build made exports
its own header's API, and nothing else.

For every libfuture*.so* under the build directory (libfuture, and any
libfuture-NAME, whose header is include/libfuture-NAME.h), the dynamic
symbols `nm -D --defined-only` lists must be public names (fut_* or FUT_*,
never the internal fut__*) declared in that library's header, and every
name the header declares with FUT_API must be among them.

Usage: check_exports.py INCLUDE_DIR BUILD_DIR REQUIRED_LIB... [--sanitize S]
[--coverage]. Each REQUIRED_LIB must be among those found. Exit 0: clean;
1: a stray or missing export; 77: skipped (a coverage build, whose runtime
exports its own symbols).
"""
import argparse
import pathlib
import re
import subprocess
import sys

# A real shared object, not its symlinks: libfuture.so.0.1.0 -> "future".
LIB_NAME = re.compile(r"lib(future(?:-[A-Za-z0-9_]+)?)\.so(?:\.\d+)*")
# ASan (gcc) adds a one-byte ODR indicator beside each exported variable.
ODR_INDICATOR = re.compile(r"__odr_asan\.(\w+)")
PUBLIC_NAME = re.compile(r"(?:fut|FUT)_(?!_)\w+")


def strip_comments_and_directives(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"\\\n", " ", text)  # join continued directives first
    return re.sub(r"(?m)^\s*#.*$", " ", text)


def header_api(header):
    """(names declared with FUT_API, every fut_/FUT_ name the code uses)."""
    code = strip_comments_and_directives(header.read_text())
    api = set()
    for decl in code.split(";"):
        if not re.search(r"\bFUT_API\b", decl):
            continue
        # A function: the name before the first '('. A variable: the last
        # identifier (extern FUT_API const fut_exc_type_t FUT_EXC_ERROR).
        m = re.search(r"(\w+)\s*\(", decl) or re.search(r"(\w+)\s*$", decl)
        api.add(m.group(1))
    return api, set(re.findall(r"\b(?:fut|FUT)_\w+", code))


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)],
                         check=True, capture_output=True, text=True).stdout
    # "ADDRESS TYPE NAME", NAME possibly with an @VERSION suffix.
    return {line.split()[-1].split("@")[0] for line in out.splitlines()
            if line.strip()}


def find_libs(build_dir):
    libs = {}
    for p in sorted(build_dir.rglob("libfuture*.so*")):
        dirs = p.relative_to(build_dir).parts[:-1]
        if (p.is_symlink() or not p.is_file() or "subprojects" in dirs or
                any(d.startswith("meson-") or d.endswith(".p") for d in dirs)):
            continue
        m = LIB_NAME.fullmatch(p.name)
        if m:
            libs.setdefault(m.group(1), []).append(p)
    return libs


def check(lib, header, address_sanitized):
    """The problems with lib's exports, as lines of text."""
    syms = exported(lib)
    api, declared = header_api(header)
    problems, indicators = [], 0
    for s in sorted(syms):
        odr = ODR_INDICATOR.fullmatch(s)
        if address_sanitized and odr and odr.group(1) in syms:
            indicators += 1
            continue
        if not PUBLIC_NAME.fullmatch(s):
            problems.append(f"exports {s}: not a public fut_/FUT_ name")
        elif s not in declared:
            problems.append(f"exports {s}: not declared in {header.name}")
    for name in sorted(api - syms):
        problems.append(f"does not export {name}, declared FUT_API "
                        f"in {header.name}")
    if not problems:
        extra = f" (and {indicators} ASan ODR indicators)" if indicators \
            else ""
        print(f"{lib.name}: {len(syms) - indicators} exports{extra}, all "
              f"declared in {header.name}; all {len(api)} FUT_API names "
              "exported")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("include_dir", type=pathlib.Path)
    ap.add_argument("build_dir", type=pathlib.Path)
    ap.add_argument("required", nargs="+", type=pathlib.Path)
    ap.add_argument("--sanitize", default="none")
    ap.add_argument("--coverage", action="store_true")
    args = ap.parse_args()
    if args.coverage:
        print("skipped: a coverage build exports its runtime's symbols")
        return 77

    libs = find_libs(args.build_dir)
    found = {p.resolve() for paths in libs.values() for p in paths}
    failures = [f"{r}: required, but not found under {args.build_dir}"
                for r in args.required if r.resolve() not in found]
    for stem, paths in sorted(libs.items()):
        header = args.include_dir / f"lib{stem}.h"
        for lib in paths:
            if not header.is_file():
                failures.append(f"{lib.name}: no public header {header.name}")
                continue
            failures += [f"{lib.name}: {p}" for p in
                         check(lib, header, "address" in args.sanitize)]
    for f in failures:
        print(f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
