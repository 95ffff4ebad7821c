#!/usr/bin/env python3
"""Run an example and check what it prints on stdout.

usage: check_output.py [--expect TEXT] [--match REGEX]... -- PROGRAM [ARGS...]

--expect: stdout must be exactly TEXT.
--match:  each REGEX must match somewhere in stdout (multiline mode, so ^ and
          $ anchor at line boundaries).
The program must also exit 0. Exits 1 with a diff-like report otherwise.
The environment variable FUT_EXAMPLE_WRAPPER, if set, is a command line put
in front of PROGRAM (e.g. valgrind --error-exitcode=1 --leak-check=full).
"""
import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--expect')
    ap.add_argument('--match', action='append', default=[])
    ap.add_argument('command', nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not cmd:
        ap.error('no program to run')
    # `meson test --wrap=X` wraps this script, not the example: set
    # FUT_EXAMPLE_WRAPPER (e.g. to a valgrind command line) to wrap the example.
    wrapper = shlex.split(os.environ.get('FUT_EXAMPLE_WRAPPER', ''))

    proc = subprocess.run(wrapper + cmd, stdout=subprocess.PIPE)
    out = proc.stdout.decode('utf-8', errors='replace')
    sys.stdout.write(out)
    sys.stdout.flush()
    errors = []
    if proc.returncode != 0:
        errors.append('%s exited with status %d' % (cmd[0], proc.returncode))
    if args.expect is not None and out != args.expect:
        diff = difflib.unified_diff(
            args.expect.splitlines(keepends=True),
            out.splitlines(keepends=True),
            'expected stdout', 'actual stdout')
        errors.append('stdout differs:\n' + ''.join(diff))
    for pattern in args.match:
        if not re.search(pattern, out, re.MULTILINE):
            errors.append('no match for /%s/ in stdout' % pattern)

    for e in errors:
        print('check_output: ' + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
