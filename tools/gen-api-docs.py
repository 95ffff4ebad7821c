#!/usr/bin/env python3
"""Write docs/api.md, the API reference, from the comments of include/*.h.

    python3 tools/gen-api-docs.py          rewrite docs/api.md
    python3 tools/gen-api-docs.py --check  fail (with a diff) if it is stale

The headers are the source: a banner comment (a line of dashes, a title,
optional text, a line of dashes) opens a section; a comment just above a
run of declarations documents that run; comments at the end of a line stay
with their code. The meson test `api-docs` runs --check, so the reference
cannot drift from the headers. Python 3 standard library only.
"""
import argparse
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_]\w*"
BANNER_RULE = re.compile(r"^\s*/?\*?\s*-{10,}\s*(\*/)?\s*$")


class Section:
    def __init__(self, title, intro):
        self.title, self.intro, self.items = title, intro, []


class Item:
    """A leading comment and the declarations it documents."""

    def __init__(self, comment):
        self.comment, self.decls = comment, []  # decls: lists of lines


def comment_text(lines):
    """The text of a /* */ comment: markers, ' * ' gutters and the common
    indentation removed; blank lines kept."""
    text = "\n".join(lines).strip()
    text = re.sub(r"^/\*+", "", text)
    text = re.sub(r"\*+/$", "", text)
    body = text.split("\n")
    if all(re.match(r"\s*\*", ln) for ln in body[1:] if ln.strip()):
        body = [body[0]] + [re.sub(r"^\s*\* ?", "", ln) for ln in body[1:]]
    first, rest = body[0].strip(), body[1:]
    indents = [len(ln) - len(ln.lstrip()) for ln in rest if ln.strip()]
    cut = min(indents, default=0)
    out = ([first] if first else []) + [ln[cut:].rstrip() for ln in rest]
    while out and not out[-1]:
        out.pop()
    return out


def banner(lines):
    """(title, intro lines) if the comment is a section banner, else None."""
    if len(lines) < 3 or not BANNER_RULE.match(lines[0]) or \
            not BANNER_RULE.match(lines[-1]):
        return None
    inner = comment_text(["/*"] + lines[1:-1] + ["*/"])
    while inner and not inner[0]:
        inner.pop(0)
    return inner[0], inner[1:]


class Scanner:
    """Tracks comment state and brace depth across lines of C."""

    def __init__(self):
        self.in_comment, self.depth = False, 0

    def feed(self, line):
        i = 0
        while i < len(line):
            two = line[i:i + 2]
            if self.in_comment:
                if two == "*/":
                    self.in_comment, i = False, i + 2
                    continue
            elif two == "/*":
                self.in_comment, i = True, i + 2
                continue
            elif two == "//":
                return
            elif line[i] == '"':
                end = line.find('"', i + 1)
                i = len(line) if end < 0 else end + 1
                continue
            elif line[i] == "{":
                self.depth += 1
            elif line[i] == "}":
                self.depth -= 1
            i += 1


def parse(path):
    """(file comment, sections) of one header."""
    lines = path.read_text().split("\n")
    intro, sections = None, [Section(None, [])]
    item, scan = None, Scanner()
    cond, guard = 0, None  # #if nesting; the include guard's name

    def flush():
        nonlocal item
        if item is not None:
            sections[-1].items += split_item(item)
            item = None

    i = 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        if scan.in_comment or scan.depth > 0:
            item.decls[-1].append(line)
            scan.feed(line)
            i += 1
            continue
        if not stripped:
            flush()
            i += 1
            continue
        if stripped.startswith("/*"):
            j = i
            while "*/" not in lines[j]:
                j += 1
            block = lines[i:j + 1]
            i = j + 1
            b = banner(block)
            if b:
                flush()
                sections.append(Section(*b))
            elif intro is None and item is None and \
                    not any(s.items for s in sections):
                intro = comment_text(block)
            else:
                if item is not None and item.decls:
                    flush()
                if item is None:
                    item = Item([])
                elif item.comment:
                    item.comment.append("")
                item.comment += comment_text(block)
            continue
        if stripped.startswith("#"):
            directive = [line]
            while directive[-1].endswith("\\"):
                i += 1
                directive.append(lines[i])
            i += 1
            word = re.match(r"#\s*(\w+)\s*(\w*)", stripped)
            kind, name = word.group(1), word.group(2)
            if kind in ("if", "ifdef", "ifndef"):
                cond += 1
                if kind == "ifndef" and guard is None:
                    guard = name
            elif kind == "endif":
                cond -= 1
            elif kind == "define" and cond <= 1 and name != guard:
                item = item or Item([])
                item.decls.append(directive)
            continue
        if stripped in ('extern "C" {', "}"):  # the C++ guard
            i += 1
            continue
        item = item or Item([])
        # A declaration runs to its ';' (lines inside braces or inside a
        # comment it opened are taken at the top of the loop).
        if not item.decls or decl_complete(item.decls[-1]):
            item.decls.append([])
        item.decls[-1].append(line)
        scan.feed(line)
        i += 1
    flush()
    return intro or [], [s for s in sections if s.items or s.title]


def split_item(item):
    """A leading comment documents the declarations under it up to the
    first one with a comment of its own at the end of the line; those that
    follow are items of their own (the header groups by blank lines, and a
    run often ends with accessors documented in a few words each)."""
    for k, decl in enumerate(item.decls[1:], 1):
        if item.comment and has_trailing_comment(decl):
            rest = Item([])
            rest.decls = item.decls[k:]
            item.decls = item.decls[:k]
            return [item, rest]
    return [item]


def has_trailing_comment(decl):
    start = decl[-1].find("/*")
    return start > 0 and decl[-1][:start].rstrip().endswith(";")


def code_only(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"/\*.*", " ", text)  # a comment still open at the end


def decl_complete(decl):
    code = code_only("\n".join(decl)).strip()
    return decl[0].lstrip().startswith("#") or code.endswith(";")


def names(decl):
    """The names a declaration introduces, as the reader looks them up."""
    code = " ".join(code_only("\n".join(decl)).split())
    code = re.sub(r"\bFUT_API\s+", "", code)
    m = re.match(r"#\s*define\s+(" + IDENT + ")", code)
    if m:
        return [m.group(1)]
    if code.startswith("typedef"):
        code = re.sub(r"\{.*\}", "{}", code)  # not the members' names
        m = re.search(r"\(\s*\*\s*(" + IDENT + r")\s*\)", code)
        if m:
            return [m.group(1)]
        return [re.search("(" + IDENT + r")\s*;$", code).group(1)]
    m = re.match(r"(struct|enum|union)\s+(" + IDENT + r")?\s*\{(.*)\}", code)
    if m and m.group(2):
        return [m.group(1) + " " + m.group(2)]
    if m:  # an anonymous enum: its constants
        return [re.match(r"\s*(" + IDENT + ")", e).group(1)
                for e in m.group(3).split(",") if e.strip()]
    m = re.search("(" + IDENT + r")\s*\(", code)
    if m:
        return [m.group(1)]
    return [re.search("(" + IDENT + r")\s*(\[[^]]*\])?\s*;$", code).group(1)]


def show_decl(decl):
    """The declaration as the reader should see it: FUT_API is how the
    library exports, not part of the interface."""
    if "FUT_API " not in decl[0]:
        return decl
    shift = len("FUT_API ")  # continuation lines were aligned after it
    return [decl[0].replace("FUT_API ", "", 1)] + [
        ln[min(shift, len(ln) - len(ln.lstrip())):] for ln in decl[1:]]


def slug(heading, seen):
    """The anchor GitHub gives a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
    n = seen.get(s, 0)
    seen[s] = n + 1
    return s if n == 0 else f"{s}-{n}"


# ---- prose: comment text to markdown ----

CODE_SPAN = re.compile(r"(`[^`]*`)")
# Identifiers with an underscore (fut_create, FUT_OK, free_value), member
# access (loop->call_soon), calls (fn(arg), TypeName(code)), and
# dereferences (*exc): code, set in backticks.
CODEISH = re.compile(
    r"(?<![\w`*])(\*?(?:" + IDENT + r")(?:->\w+)*(?:\([\w, .]*\))?\*?)")


def inline(text):
    parts = CODE_SPAN.split(text)
    for k in range(0, len(parts), 2):
        parts[k] = CODEISH.sub(_codeish, parts[k])
        parts[k] = re.sub(r"<(?=[A-Za-z/])", "&lt;", parts[k])
    return "".join(parts)


def _codeish(m):
    tok = m.group(1)
    if any(c in tok for c in "_(*") or "->" in tok:
        return "`" + tok + "`"
    return tok


def prose(lines):
    """Markdown for comment text: paragraphs, '-' lists (continuations
    indented), and lines indented further as preformatted blocks."""
    out, pre, in_list = [], [], False

    def end_pre():
        if pre:
            if out and out[-1]:
                out.append("")
            out.extend(["```text"] + pre + ["```", ""])
            pre.clear()

    for ln in lines:
        indent = len(ln) - len(ln.lstrip())
        if not ln.strip():
            end_pre()
            out.append("")
            in_list = False
        elif re.match(r"\s*(-|\d+\.) ", ln) and indent < 2:
            end_pre()
            if not in_list and out and out[-1]:
                out.append("")
            out.append(inline(ln.strip()))
            in_list = True
        elif in_list and indent >= 2 and not pre:
            out.append("  " + inline(ln.strip()))
        elif indent >= 2:
            pre.append(ln[2:].rstrip() if ln.startswith("  ") else ln)
        else:
            end_pre()
            if in_list:
                out.append("")
                in_list = False
            out.append(inline(ln.strip()))
    end_pre()
    while out and not out[-1]:
        out.pop()
    return out


# ---- the document ----

def heading_for(item_names):
    shown = item_names if len(item_names) <= 4 else \
        [item_names[0], item_names[-1]]
    sep = ", " if len(item_names) <= 4 else " … "
    text = sep.join(f"`{n}`" for n in shown)
    if len(item_names) > 4:
        text += f" ({len(item_names)} names)"
    return text


def render(headers):
    seen, body, index = {}, [], []
    for path in headers:
        intro, sections = parse(path)
        title = f"`{path.name}`"
        body += ["", f"## {title}", ""]
        index.append(f"- [{title}](#{slug(title, seen)})")
        body += [f"`#include <{path.name}>`", ""] + prose(intro)
        for sec in sections:
            sec_names = []
            if sec.title:
                body += ["", f"### {sec.title}"]
                anchor = slug(sec.title, seen)
            if sec.intro:
                body += [""] + prose(sec.intro)
            for item in sec.items:
                if not item.decls:  # a note between declarations
                    body += [""] + prose(item.comment)
                    continue
                item_names = [n for d in item.decls for n in names(d)]
                heading = heading_for(item_names)
                target = slug(heading, seen)
                body += ["", f"#### {heading}", "", "```c"]
                for d in item.decls:
                    body += show_decl(d)
                body += ["```"]
                if item.comment:
                    body += [""] + prose(item.comment)
                sec_names += [f"[`{n}`](#{target})" for n in item_names]
            if sec_names:
                where = f"[{sec.title}](#{anchor})" if sec.title else \
                    "declarations"
                index.append(f"  - {where}: " + ", ".join(sec_names))
    head = [
        "<!-- Generated by tools/gen-api-docs.py from the comments in",
        "     include/*.h: edit those, then run the script. The test",
        "     `api-docs` fails while this file is out of step. -->",
        "# API reference",
        "",
        "Every public declaration of libfuture, header by header, in the "
        "headers' own order and words. The rules every function follows "
        "(status codes, ownership, threads) open the section of "
        "`libfuture.h`. Exported functions carry `FUT_API` in the headers; "
        "it is left out here.",
        "",
    ]
    return "\n".join(squeeze(head + index + body)) + "\n"


def squeeze(lines):
    """No runs of blank lines outside code blocks, none at the end."""
    out, fenced = [], False
    for ln in lines:
        if ln.startswith("```"):
            fenced = not fenced
        if ln or fenced or (out and out[-1]):
            out.append(ln)
    while out and not out[-1]:
        out.pop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare instead of writing; exit 1 if stale")
    ap.add_argument("--root", type=pathlib.Path, default=ROOT)
    args = ap.parse_args()
    # The core first, then the adapters.
    headers = sorted((args.root / "include").glob("*.h"),
                     key=lambda p: (p.name != "libfuture.h", p.name))
    doc = render(headers)
    target = args.root / "docs" / "api.md"
    if not args.check:
        target.parent.mkdir(exist_ok=True)
        target.write_text(doc)
        return 0
    old = target.read_text() if target.exists() else ""
    if old == doc:
        print(f"{target.relative_to(args.root)} is in step with "
              f"{len(headers)} header(s)")
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        old.splitlines(True), doc.splitlines(True),
        "docs/api.md", "generated from include/*.h"))
    print("docs/api.md is stale: run python3 tools/gen-api-docs.py",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
