#!/usr/bin/env python3
"""The README's copy-paste blocks that CI runs, as they are written.

A block is the fenced code block that follows a marker line
`<!-- ci: NAME -->` in README.md. .ci/consume.sh runs every one of them (or
writes it to the file it stands for), so the README cannot drift from what
works.

    readme-block.py NAME     print block NAME
    readme-block.py --list   print the names of all blocks
"""
import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parent.parent / 'README.md'
MARKER = re.compile(r'^<!-- ci: ([a-z0-9-]+) -->$')


def blocks():
    lines = README.read_text(encoding='utf-8').splitlines()
    found = {}
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        name = m.group(1)
        if name in found:
            sys.exit(f'README.md:{i + 1}: block {name} is marked twice')
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == len(lines) or not lines[j].startswith('```'):
            sys.exit(f'README.md:{i + 1}: no code block after marker {name}')
        end = j + 1
        while end < len(lines) and lines[end] != '```':
            end += 1
        if end == len(lines):
            sys.exit(f'README.md:{j + 1}: block {name} is not closed')
        found[name] = '\n'.join(lines[j + 1:end]) + '\n'
    return found


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    found = blocks()
    if argv[1] == '--list':
        print('\n'.join(found))
    elif argv[1] in found:
        sys.stdout.write(found[argv[1]])
    else:
        sys.exit(f'README.md has no block {argv[1]}')


if __name__ == '__main__':
    main(sys.argv)
