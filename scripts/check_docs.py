#!/usr/bin/env python3
"""Checks that the links in this repository's documentation lead somewhere.

    scripts/check_docs.py [FILE.md...]

Without arguments it reads README.md, ARCHITECTURE.md, docs/*.md, clients/*/README.md and
examples/*/README.md. For every relative link (`[text](path)`, `[text](path#anchor)`, a bare
`[text](#anchor)`, an image, or a `[label]: path` definition) it checks that the path exists
(relative to the linking file; a leading `/` means the repository root) and, when there is an
anchor into a markdown file (or a folder, which GitHub shows through its README.md), that the
file has a heading with that anchor. Anchors follow GitHub's rules: the heading's text,
lower-cased, with punctuation other than `-` and `_` removed and each space turned into `-`;
a repeated heading gets `-1`, `-2`, ... Links with a scheme (`https:`, `mailto:`, `ws:`, ...)
are not checked, nor is anything inside fenced code blocks, inline code or HTML comments.

Each broken link is printed as `file:line: broken link to X (reason)` and the exit status is
1; otherwise one summary line is printed and the status is 0. Python 3.11, standard library
only.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GLOBS = ["README.md", "ARCHITECTURE.md", "docs/*.md", "clients/*/README.md", "examples/*/README.md"]

SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
REFERENCE_DEF = re.compile(r"^ {0,3}\[((?:[^\]\\]|\\.)+)\]:[ \t]*(<[^>\n]*>|\S+)", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<[A-Za-z][^>]*?\s(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
LINE_ANCHOR = re.compile(r"^L\d+(C\d+)?(-L\d+(C\d+)?)?$")
BACKTICKS = re.compile(r"`+")


def mask_fences(text: str) -> str:
    """The text with every fenced code block's lines (fences included) blanked, newlines kept."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            m = FENCE_OPEN.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in line[m.end():]):
                fence = m.group(1)
                out.append("")
                continue
            out.append(line)
        else:
            stripped = line.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence) and len(line) - len(line.lstrip(" ")) <= 3:
                fence = None
            out.append("")
    return "\n".join(out)


def blank(s: str) -> str:
    """Spaces for every character of `s`, newlines kept, so offsets and line numbers stay."""
    return "".join("\n" if c == "\n" else " " for c in s)


def mask_inline(text: str) -> str:
    """Blanks HTML comments and inline code spans (which may not cross a blank line)."""
    text = re.sub(r"<!--.*?-->", lambda m: blank(m.group(0)), text, flags=re.DOTALL)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(text[i:i + 2])
            i += 2
            continue
        if c != "`":
            out.append(c)
            i += 1
            continue
        j = i
        while j < n and text[j] == "`":
            j += 1
        run = text[i:j]
        # The span ends at the next run of exactly as many backticks, within the paragraph.
        end = None
        for m in BACKTICKS.finditer(text, j):
            if "\n\n" in text[j:m.start()]:
                break
            if len(m.group(0)) == len(run):
                end = m.end()
                break
        if end is None:
            out.append(run)  # a literal run of backticks
            i = j
        else:
            out.append(blank(text[i:end]))
            i = end
    return "".join(out)


def matching_bracket(text: str, start: int) -> int | None:
    """The index of the `]` closing the `[` at `start`, within one paragraph."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n" and text.startswith("\n\n", i):
            return None
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def destination(text: str, start: int) -> str | None:
    """The destination of an inline link whose `(` is at `start`, or None if it is not one."""
    i = start + 1
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i < len(text) and text[i] == "<":
        end = text.find(">", i)
        if end == -1 or "\n" in text[i:end]:
            return None
        return text[i + 1:end]
    depth = 0
    j = i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c.isspace():
            break
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        j += 1
    if j >= len(text):
        return None
    rest = text[j:]
    # After the destination: optional whitespace and title, then `)`.
    if not re.match(r"""\s*(?:(?:"[^"]*"|'[^']*'|\([^)]*\))\s*)?\)""", rest):
        return None
    return text[i:j]


def links(text: str) -> list[tuple[int, str]]:
    """(offset, destination) for each inline link, image and reference definition."""
    found: list[tuple[int, str]] = []
    i = 0
    while True:
        i = text.find("[", i)
        if i == -1:
            break
        if i > 0 and text[i - 1] == "\\":
            i += 1
            continue
        close = matching_bracket(text, i)
        if close is not None and close + 1 < len(text) and text[close + 1] == "(":
            dest = destination(text, close + 1)
            if dest is not None:
                found.append((i, dest))
        i += 1
    for m in REFERENCE_DEF.finditer(text):
        dest = m.group(2)
        if dest.startswith("<") and dest.endswith(">"):
            dest = dest[1:-1]
        found.append((m.start(2), dest))
    return sorted(found)


def heading_text(raw: str) -> str:
    """A heading's text as GitHub renders it, before the slug: links and images give their
    text, inline code its content, HTML tags and emphasis markers go."""
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    s = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]", r"\1", s)
    s = re.sub(r"<[^>]+>", "", s)
    # Emphasis with underscores around whole words (`_word_`), not snake_case names.
    s = re.sub(r"(?<![A-Za-z0-9])_{1,2}([^_\s](?:[^_]*[^_\s])?)_{1,2}(?![A-Za-z0-9])", r"\1", s)
    s = re.sub(r"\\(.)", r"\1", s)
    return s.strip()


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text (the rules of github-slugger)."""
    kept = []
    for c in text.lower():
        cat = unicodedata.category(c)
        if c in "-_ " or cat[0] in "LMN" or cat == "Pc":
            kept.append(c)
    return "".join(kept).replace(" ", "-")


def anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    """Every anchor a markdown file offers: its headings' slugs and HTML ids/names."""
    if path in cache:
        return cache[path]
    text = mask_fences(path.read_text(encoding="utf-8"))
    lines = text.split("\n")
    seen: dict[str, int] = {}
    result: set[str] = set()

    def add(raw: str) -> None:
        base = slug(heading_text(raw))
        candidate = base
        while candidate in seen:
            seen[base] += 1
            candidate = f"{base}-{seen[base]}"
        seen[candidate] = 0
        result.add(candidate)

    for n, line in enumerate(lines):
        m = ATX_HEADING.match(line)
        if m:
            add(m.group(2) or "")
            continue
        if (
            n + 1 < len(lines)
            and line.strip()
            and SETEXT_UNDERLINE.match(lines[n + 1])
            and not line.lstrip().startswith(("|", "-", "*", "+", ">"))
            and not ATX_HEADING.match(line)
            and (n == 0 or not lines[n - 1].strip() or ATX_HEADING.match(lines[n - 1]))
        ):
            add(line)
    result.update(m.group(1) for m in HTML_ANCHOR.finditer(mask_inline(text)))
    cache[path] = result
    return result


def check(file: Path, cache: dict[Path, set[str]]) -> tuple[int, list[str]]:
    """How many links `file` has, and a message for each broken one."""
    text = mask_inline(mask_fences(file.read_text(encoding="utf-8")))
    shown = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
    problems: list[str] = []
    count = 0
    for offset, dest in links(text):
        if not dest or SCHEME.match(dest) or dest.startswith("//"):
            continue
        count += 1
        line = text.count("\n", 0, offset) + 1

        def broken(reason: str) -> None:
            problems.append(f"{shown}:{line}: broken link to {dest} ({reason})")

        path_part, _, anchor = dest.partition("#")
        path_part = unquote(path_part.split("?", 1)[0])
        anchor = unquote(anchor)
        if path_part:
            target = (ROOT / path_part.lstrip("/")) if path_part.startswith("/") else (file.parent / path_part)
            if not target.exists():
                broken("no such file")
                continue
        else:
            target = file
        if not anchor:
            if "#" in dest and not path_part:
                broken("empty anchor")
            continue
        if target.is_dir():
            readme = target / "README.md"
            if not readme.is_file():
                broken("an anchor into a folder without README.md")
                continue
            target = readme
        if target.suffix.lower() not in (".md", ".markdown"):
            if not LINE_ANCHOR.match(anchor):
                broken(f"anchor #{anchor} into a file that is not markdown")
            continue
        if anchor not in anchors_of(target.resolve(), cache):
            where = "this file" if target == file else str(target.resolve().relative_to(ROOT) if target.resolve().is_relative_to(ROOT) else target)
            broken(f"no heading with anchor #{anchor} in {where}")
    return count, problems


def main(argv: list[str]) -> int:
    if argv:
        files = [Path(a).resolve() for a in argv]
    else:
        files = sorted({p for pattern in DEFAULT_GLOBS for p in ROOT.glob(pattern) if p.is_file()})
    cache: dict[Path, set[str]] = {}
    total = 0
    problems: list[str] = []
    for file in files:
        count, found = check(file, cache)
        total += count
        problems.extend(found)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_docs: {len(problems)} broken link(s) of {total} in {len(files)} files", file=sys.stderr)
        return 1
    print(f"check_docs: {total} relative links in {len(files)} files, all resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
