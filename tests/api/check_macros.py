#!/usr/bin/env python3
"""The task macros' misuse test: compiles macros.c once per case, with the
compiler given on the command line (the C one, and the C++ one if any),
syntax only. CASE_ok must compile; each misuse must not.

Usage: check_macros.py SOURCE INCLUDE_DIR -- COMPILER... [-- COMPILER...]
"""
import subprocess
import sys

MISUSES = ["no_begin", "no_end", "begin_twice", "end_twice", "both_twice",
           "await_outside", "two_on_a_line"]


def compiles(compiler, source, include_dir, case):
    cmd = compiler + ["-fsyntax-only", "-I", include_dir,
                      "-DCASE_" + case, source]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def main():
    source, include_dir = sys.argv[1], sys.argv[2]
    compilers, current = [], None
    for arg in sys.argv[3:]:
        if arg == "--":
            current = []
            compilers.append(current)
        else:
            current.append(arg)
    failed = False
    for compiler in compilers:
        name = " ".join(compiler)
        if not compiles(compiler, source, include_dir, "ok"):
            print(f"{name}: the right use does not compile")
            failed = True
        for case in MISUSES:
            if compiles(compiler, source, include_dir, case):
                print(f"{name}: misuse '{case}' compiles")
                failed = True
            else:
                print(f"{name}: misuse '{case}' is a compile error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
