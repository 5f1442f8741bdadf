"""Quarto (``.qmd``) and R Markdown (``.Rmd``) documents: Markdown whose fenced chunks with the engine in braces
(```` ```{python} ````, ```` ```{r setup, include=FALSE} ````) are code that runs.

A chunk in a language Needle parses is chunked in that language at the file's own bytes and lines, so an analysis
written in a Quarto report is found as the functions it defines. The prose around the chunks, and chunks in
languages without a grammar here (R, SQL), are sections named after their headings, as a Markdown file's are.
Fences without braces (```` ```python ````) only show code, in Quarto as in Markdown: they stay in their section.
"""

from __future__ import annotations

import re

from codeneedle.indexer.chunks import Chunk, shifted
from codeneedle.indexer.embedded_scripts import Script
from codeneedle.indexer.formats import Cutter
from codeneedle.indexer.markdown_sections import chunk_found, document_title, markdown_headings, sections

LITERATE = frozenset({"quarto", "rmarkdown"})

# An executable chunk's opening fence: its engine is the first word in the braces (`{python}`, `{r, echo=FALSE}`,
# `{python .cell}`); `{.python}` is a display block. knitr runs chunks indented in list items too. The engine's name
# is taken whole before the options (`(?![\w+])`): two runs that could share its letters made "```{aaaa..." quadratic.
_OPEN = re.compile(rb"[ \t]*(`{3,}|~{3,})[ \t]*\{[ \t]*([A-Za-z][\w+]*)(?![\w+])[^}\n]*\}[ \t]*\r?$")
_FENCE = re.compile(rb"[ \t]*(`{3,}|~{3,})[ \t]*\r?$")
# A display fence (```python): as CommonMark has it, a backtick fence's info string holds no backtick, so a line
# of inline code (```js``` in prose) opens nothing.
_DISPLAY = re.compile(rb" {0,3}(?:(`{3,})[^`\n]*|(~{3,}).*)$")
# Quarto's chunk options (`#| label: fig-sales`, `#| echo: false`) open a chunk: options, not a doc comment.
_OPTIONS = re.compile(rb"\A(?:[ \t]*#\|[^\n]*\n)+")
# Engines (knitr's and Quarto's names, lower case) -> the language Needle chunks them as.
ENGINES: dict[str, str] = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "zsh": "bash",
                           "julia": "julia", "js": "javascript", "javascript": "javascript", "ts": "typescript",
                           "typescript": "typescript", "c": "c", "cpp": "cpp", "rcpp": "cpp", "c++": "cpp",
                           "rust": "rust", "go": "go", "java": "java", "ruby": "ruby", "perl": "perl", "sql": "sql",
                           "fortran": "fortran", "fortran95": "fortran"}


def code_blocks(data: bytes) -> list[tuple[int, int, Script]]:
    """Each executable chunk in a parsed language: ``(fence start, closing fence end, body)``, in file order.
    An unclosed chunk runs to the end of the file, as Pandoc reads it."""
    found: list[tuple[int, int, Script]] = []
    lines = data.split(b"\n")
    position = index = 0
    while index < len(lines):
        line = lines[index]
        opening = _OPEN.match(line)
        start = position
        position += len(line) + 1
        index += 1
        if opening is None:
            # A display fence's body may hold a line like an opening fence: skip it whole.
            plain = _DISPLAY.match(line)
            if plain is None:
                continue
            opening_fence = plain.group(1) or plain.group(2)
        else:
            opening_fence = opening.group(1)
        body_start = min(position, len(data))
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if closing is not None and closing.group(1)[0] == opening_fence[0] \
                    and len(closing.group(1)) >= len(opening_fence):
                break
            position += len(lines[index]) + 1
            index += 1
        body_end = min(position, len(data))
        if index < len(lines):  # past the closing fence
            position += len(lines[index]) + 1
            index += 1
        language = ENGINES.get(opening.group(2).decode("ascii").lower()) if opening is not None else None
        if language is not None and data[body_start:body_end].strip():
            found.append((start, min(position, len(data)), Script(body_start, body_end, language)))
    return found


def chunk_literate(path: str, data: bytes, fmt: str, cutter: Cutter) -> list[Chunk]:
    """A Quarto or R Markdown document's chunks: its code chunks' definitions and blocks, sections over the rest."""
    headings = markdown_headings(data)
    found = sections(data, headings, document_title(headings))
    blocks = code_blocks(data)
    chunks: list[Chunk] = []
    position = lines = 0
    for _, _, body in blocks:
        lines += data.count(b"\n", position, body.start)
        code = data[body.start : body.end]
        options = _OPTIONS.match(code)
        if options is not None:  # blanked in place: offsets and lines stay the file's
            code = re.sub(rb"[^\n]", b" ", options.group()) + code[options.end():]
        chunks.extend(shifted(c, body.start, lines) for c in cutter.code(path, code, body.language))
        lines += code.count(b"\n")
        position = body.end
    prose = _without(found, [(start, end) for start, end, _ in blocks], data)
    chunks.extend(chunk_found(path, data, fmt, cutter, prose))
    chunks.sort(key=lambda c: (c.start_byte, -c.end_byte))
    return chunks


def _without(found: list[tuple[int, int, str]], holes: list[tuple[int, int]],
             data: bytes) -> list[tuple[int, int, str]]:
    """The sections ``found`` with the byte ranges ``holes`` (sorted, apart) cut out; blank pieces left out."""
    out: list[tuple[int, int, str]] = []
    first = 0  # both are in file order: each section looks only at the holes from where the last one's began
    for start, end, name in found:
        position = start
        while first < len(holes) and holes[first][1] <= start:
            first += 1
        for hole_start, hole_end in holes[first:]:
            if hole_start >= end:
                break
            out.append((position, hole_start, name))
            position = max(position, hole_end)
        out.append((position, end, name))
    return [(s, e, name) for s, e, name in out if e > s and data[s:e].strip()]

