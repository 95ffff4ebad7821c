#!/usr/bin/env python3
"""Check that every C snippet of README.md is quoted verbatim from one of
the given files (examples/readme_*.c), which the build compiles with the
project's warning flags and the test suite runs.

usage: check_readme.py README.md FILE...
Exits 1 naming each snippet that no file contains, and each file that no
snippet quotes.
"""
import re
import sys


def main():
    readme, files = sys.argv[1], sys.argv[2:]
    with open(readme, encoding='utf-8') as f:
        snippets = re.findall(r'^```c\n(.*?)^```$', f.read(), re.S | re.M)
    sources = {}
    for name in files:
        with open(name, encoding='utf-8') as f:
            sources[name] = f.read()
    bad = 0
    quoted = set()
    for i, snippet in enumerate(snippets, 1):
        homes = [n for n, text in sources.items() if snippet in text]
        if not homes:
            first = snippet.splitlines()[0] if snippet else ''
            print(f'{readme}: C snippet {i} ({first!r}) is in none of: '
                  + ', '.join(files))
            bad += 1
        quoted.update(homes)
    for name in files:
        if name not in quoted:
            print(f'{name}: README.md quotes none of it any more')
            bad += 1
    if not snippets:
        print(f'{readme}: no C snippet found')
        bad += 1
    print(f'{len(snippets)} C snippets, {bad} problems')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
