#!/bin/bash
# exe_wrapper of the `valgrind` test setup (tests/meson.build): runs one test
# under memcheck, any error or leak failing it (exit status 66). Every *.supp
# next to this script is loaded, so a suppression for a third-party library
# is added by dropping a file here. Tests that run the examples' python
# checker (examples/check_output.py) are not put under valgrind themselves:
# the checker runs the example through FUT_EXAMPLE_WRAPPER instead, so that
# valgrind sees the example and not the python interpreter.
set -euo pipefail
here=$(dirname "$0")
vg=(valgrind --error-exitcode=66 --leak-check=full
    --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes
    --quiet)
shopt -s nullglob
for supp in "$here"/*.supp; do
  vg+=("--suppressions=$supp")
done
case "${1##*/}" in
  python*)
    printf -v FUT_EXAMPLE_WRAPPER '%q ' "${vg[@]}" # check_output.py: shlex
    export FUT_EXAMPLE_WRAPPER
    exec "$@" ;;
esac
exec "${vg[@]}" "$@"
