#!/usr/bin/env python3
"""The shape src/ keeps (issue 9): no file over 500 lines, every function under 60 lines.

usage: code_shape.py SRC_DIR [MAX_FILE_LINES] [MAX_FUNCTION_LINES]

Functions are found by brace depth on clang-formatted code: a '{' opened at namespace or
class level that is not a namespace, class, struct, enum or initializer ("= {") starts a
function (or lambda-free body); it ends at the matching '}'. The length counts the lines
from the first line of the signature to the closing brace. Prints every offender and exits
1 if there is one, so the limits cannot drift back unnoticed.
"""
import pathlib
import re
import sys

STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
SCOPE = re.compile(r'^\s*(?:template\s*<.*>\s*)?(?:namespace|class|struct|union|enum)\b')


def code_of(line: str) -> str:
    """The line without string/char literals and // comments (their braces do not count)."""
    line = STRING.sub('""', line)
    cut = line.find('//')
    return line if cut < 0 else line[:cut]


def functions(lines):
    """(first line, last line, header) of every function body, 1-based."""
    stack = []  # per open brace: True if transparent (namespace/class level)
    found = []
    start = None
    sig_start = 0
    for no, raw in enumerate(lines, 1):
        code = code_of(raw)
        at_scope = all(stack)
        if at_scope and code.strip() and not code.strip().startswith(('}', '#')):
            if sig_start == 0:
                sig_start = no
        for ch in code:
            if ch == '{':
                transparent = False
                if all(stack):
                    head = ''.join(code_of(l) for l in lines[sig_start - 1:no]) if sig_start else code
                    if SCOPE.match(head) or re.search(r'=\s*\{?\s*$', code[:code.index('{')] + ' ') \
                            or head.rstrip().endswith('= {'):
                        transparent = True
                    else:
                        start = (sig_start or no, head.strip().split('\n')[0][:80])
                stack.append(transparent)
            elif ch == '}':
                if stack:
                    stack.pop()
                if start and all(stack):
                    found.append((start[0], no, start[1]))
                    start = None
        if all(stack) and (code.rstrip().endswith((';', '}', '{')) or not code.strip()):
            sig_start = 0
    return found


def main():
    src = pathlib.Path(sys.argv[1])
    max_file = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    max_fn = int(sys.argv[3]) if len(sys.argv) > 3 else 59
    bad = []
    longest = (0, '')
    count = 0
    for path in sorted(src.rglob('*.cpp')) + sorted(src.rglob('*.hpp')):
        lines = path.read_text().split('\n')
        if len(lines) - 1 > max_file:
            bad.append(f'{path}: {len(lines) - 1} lines (limit {max_file})')
        for first, last, head in functions(lines):
            count += 1
            n = last - first + 1
            if n > longest[0]:
                longest = (n, f'{path}:{first}')
            if n > max_fn:
                bad.append(f'{path}:{first}: function of {n} lines (limit {max_fn}): {head}')
    print(f'{count} functions; longest {longest[0]} lines at {longest[1]}')
    for b in bad:
        print(b)
    if count < 100:
        print('too few functions found: the scanner is broken')
        return 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
