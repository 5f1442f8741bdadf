"""Jupyter notebooks: each code cell chunked as Python (functions, classes, its other code as blocks), markdown
cells as sections (named under the headings of the cells above them); outputs (images, base64, printed tables)
are never read.

Positions are the ``.ipynb`` file's: a chunk's lines are the JSON lines where its first and last source lines
are written (nbformat writes each source line as its own string on its own line), its bytes span those
strings. A source written as one string, or keys spelled unusually, put every line of a cell on the line where
its source starts. An nbformat 3 notebook's worksheets are read the same way (a code cell's ``input``, a heading
cell as a Markdown heading of its level). Anything that is no notebook (invalid JSON, another shape) gives
``None``, and the file is read as plain text instead.
"""

from __future__ import annotations

import dataclasses
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from functools import partial

from codeneedle.indexer.chunks import CLASS, TEXT, Chunk
from codeneedle.indexer.formats import Cutter
from codeneedle.indexer.markdown_sections import (
    Heading,
    chunk_found,
    document_title,
    markdown_headings,
    sections,
)

# JSON's tokens that matter for positions: strings (whole, so nothing inside one is read as structure) and
# punctuation. Numbers, true/false/null and whitespace are passed over.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]')
# IPython's line magics and shell escapes (`%matplotlib inline`, `!pip install x`) become comments of the same
# length before parsing, so byte offsets hold and the rest of the cell still parses.
_MAGIC = re.compile(rb"^([ \t]*)[%!]", re.M)
# Cell magics whose body is still Python; any other (`%%bash`, `%%html`, `%%sql`) makes the cell text.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "writefile"})
_CELL_MAGIC = re.compile(r"%%(\w+)")
_KERNEL_LANGUAGES = {"python": "python", "python3": "python", "ipython": "python", "javascript": "javascript",
                     "typescript": "typescript", "go": "go", "rust": "rust", "scala": "scala", "kotlin": "kotlin",
                     "c++": "cpp", "cpp": "cpp", "c": "c", "java": "java", "c#": "csharp", "ruby": "ruby",
                     "lua": "lua", "bash": "bash", "php": "php"}

Span = tuple[int, int]


@dataclasses.dataclass(slots=True)
class Cell:
    """One cell: its type, its source as text, where each of its source lines is written in the file, and its
    number (1-based, among all the notebook's cells in order: what an editor's notebook view shows)."""

    kind: str
    source: str
    lines: list[Span]  # per source line: the byte span of the JSON string it starts in
    number: int = 0


# Where a cell's source is written: nbformat 4's cells[i].source, nbformat 3's worksheets[w].cells[i].input (code)
# or .source (markdown, raw, heading). A cell is known by its indices along the path: (i,) or (w, i).
CellKey = tuple[int, ...]
_CELLS_PATH = ((b'"cells"',), (b'"worksheets"', None, b'"cells"'))
_SOURCE_KEYS = frozenset({b'"source"', b'"input"'})


def source_spans(data: bytes) -> tuple[dict[tuple[CellKey, bytes], list[Span]], dict[CellKey, int]]:
    """Byte spans of the strings each cell's source is written as (by cell and key: ``"source"`` or nbformat 3's
    ``"input"``), and where each cell starts.

    A JSON scan that follows only the paths to cells' sources; keys are compared as written.
    """
    spans: dict[tuple[CellKey, bytes], list[Span]] = {}
    cell_starts: dict[CellKey, int] = {}
    stack: list[list] = []  # per open container: [is_object, key or index, expecting a key]
    for token in _TOKEN.finditer(data):
        first = data[token.start()]
        if first == 0x22:  # "
            top = stack[-1] if stack else None
            if top is not None and top[0] and top[2]:
                top[1] = token.group()
            elif 3 <= len(stack) <= (4 if stack[0][1] == b'"cells"' else 6) and (source := _source_of(stack)):
                spans.setdefault(source, []).append(token.span())
        elif first in b"{[":
            if first == 0x7B and (cell := _cell_of(stack)) is not None:
                cell_starts[cell] = token.start()
            stack.append([first == 0x7B, None if first == 0x7B else 0, first == 0x7B])
        elif first in b"}]":
            if stack:
                stack.pop()
        elif stack and first == 0x2C:  # ,
            if stack[-1][0]:
                stack[-1][2] = True
            else:
                stack[-1][1] += 1
        elif stack and first == 0x3A:  # :
            stack[-1][2] = False
    return spans, cell_starts


def _cell_of(stack: list[list]) -> CellKey | None:
    """The cell an object opened at the top of ``stack`` is, or None when it is none."""
    for path in _CELLS_PATH:
        if len(stack) == len(path) + 1 and not stack[-1][0] and all(
                (step is None and not entry[0]) or (step is not None and entry[0] and entry[1] == step)
                for step, entry in zip(path, stack, strict=False)):
            return tuple(entry[1] for entry in stack if not entry[0])
    return None


def _source_of(stack: list[list]) -> tuple[CellKey, bytes] | None:
    """The cell and source key a string value at the top of ``stack`` is written in, or None."""
    field_at = len(stack) - 1 if stack[-1][0] else len(stack) - 2  # one string, or a list of lines
    field = stack[field_at]
    if field_at < 1 or not field[0] or field[1] not in _SOURCE_KEYS:
        return None
    cell = _cell_of(stack[:field_at])
    return (cell, field[1]) if cell is not None else None


def _line_owners(pieces: list[tuple[str, Span]]) -> list[Span]:
    """For each line of the joined pieces, the span of the piece it starts in."""
    owners: list[Span] = []
    line_starts_here = True
    for text, span in pieces:
        if not text:
            continue
        if line_starts_here:
            owners.append(span)
        breaks = text.count("\n")
        line_starts_here = text.endswith("\n")
        owners.extend([span] * (breaks - 1 if line_starts_here else breaks))
    return owners


def read_cells(data: bytes) -> tuple[list[Cell], str] | None:
    """The cells of a notebook (nbformat 4, or 3's worksheets) and the language of its code, or None when ``data``
    is none."""
    try:
        notebook = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(notebook, dict):
        return None
    found: list[tuple[CellKey, object]] = []
    if isinstance(notebook.get("cells"), list):
        found = [((index,), cell) for index, cell in enumerate(notebook["cells"])]
    elif isinstance(notebook.get("worksheets"), list):  # nbformat 3
        for sheet, worksheet in enumerate(notebook["worksheets"]):
            if isinstance(worksheet, dict) and isinstance(worksheet.get("cells"), list):
                found += [((sheet, index), cell) for index, cell in enumerate(worksheet["cells"])]
    else:
        return None
    spans, cell_starts = source_spans(data)
    cells: list[Cell] = []
    # Every cell counts, even one skipped here (not an object, a source of numbers): an editor shows it all the same.
    for number, (key, cell) in enumerate(found, start=1):
        if not isinstance(cell, dict):
            continue
        kind = str(cell.get("cell_type", ""))
        field = "input" if kind == "code" and "source" not in cell and "input" in cell else "source"
        source = cell.get(field, "")
        parts = source if isinstance(source, list) else [source]
        if not all(isinstance(p, str) for p in parts):
            continue
        text = "".join(parts)
        if kind == "heading":  # nbformat 3: {"cell_type": "heading", "level": 2, "source": "Install"}
            level = cell.get("level")
            kind, text = "markdown", "#" * (level if isinstance(level, int) and 1 <= level <= 6 else 1) + " " + text
        written = spans.get((key, b'"%s"' % field.encode()), [])
        if len(written) == len(parts):
            owners = _line_owners(list(zip(parts, written, strict=True)))
        else:
            owners = []
        lines = text.count("\n") + 1
        if len(owners) < lines:  # written some other way: the cell's own start stands for each line
            fallback = written[0] if written else (cell_starts.get(key, 0), cell_starts.get(key, 0) + 1)
            owners.extend([owners[-1] if owners else fallback] * (lines - len(owners)))
        cells.append(Cell(kind, text, owners, number))
    return cells, _code_language(notebook.get("metadata"))


def _code_language(metadata: object) -> str:
    names: list[object] = []
    if isinstance(metadata, dict):
        for key, field in (("kernelspec", "language"), ("language_info", "name")):
            if isinstance(metadata.get(key), dict):
                names.append(metadata[key].get(field))
    for name in names:
        if isinstance(name, str) and name.strip():
            return _KERNEL_LANGUAGES.get(name.strip().lower(), "")  # "" for a kernel without a grammar (R, Julia)
    return "python"


def chunk_notebook(path: str, data: bytes, fmt: str, cutter: Cutter) -> list[Chunk] | None:
    """A notebook's chunks (code cells in their language, markdown cells as ``markdown`` sections, raw cells and
    cells in a language without a grammar as text windows named ``fmt``), or None when ``data`` is no notebook."""
    read = read_cells(data)
    if read is None:
        return None
    cells, language = read
    line_starts = [0, *(m.end() for m in re.finditer(b"\n", data))]
    chunks: list[Chunk] = []
    for cell, pieces in _cells_chunked(path, cells, language, fmt, cutter):
        chunks.extend(_placed(c, cell, lambda offset: bisect_right(line_starts, offset)) for c in pieces)
    chunks.sort(key=lambda c: (c.start_byte, -c.end_byte))
    return chunks


def chunk_cell(path: str, data: bytes, number: int, source: str, fmt: str, cutter: Cutter) -> list[Chunk]:
    """The chunks of cell ``number`` (1-based) of the notebook ``data`` had its source been ``source`` (a cell with
    unsaved edits), positioned in that source: their lines are the cell's own, and ``cell_*`` say so too.

    The saved notebook gives the rest as indexing would read it: the notebook's language, the cell's type (code
    past its last cell) and the headings of the cells above (a section's name). ``data`` that is no notebook reads
    as one of Python code cells.
    """
    read = read_cells(data)
    cells, language = read if read is not None else ([], "python")
    saved = next((c for c in cells if c.number == number), None)
    edited = Cell(saved.kind if saved is not None else "code", source, [], number)
    # The edited source stands in the saved one's place: the notebook's headings name its sections as they will
    # once it is saved.
    cells = [edited if c is saved else c for c in cells] if saved is not None else [*cells, edited]
    pieces = next((p for _cell, p in _cells_chunked(path, cells, language, fmt, cutter, only=number)), [])
    return [dataclasses.replace(c, cell=number, cell_start_line=c.start_line, cell_end_line=c.end_line)
            for c in pieces]


def _cells_chunked(path: str, cells: list[Cell], language: str, fmt: str, cutter: Cutter,
                   only: int | None = None) -> Iterator[tuple[Cell, list[Chunk]]]:
    """Each non-blank cell (or only cell number ``only``) with its chunks, positioned in the cell's own source."""
    # The markdown cells read as one document: a cell's sections are named under the headings of those above it.
    markdown = {id(cell): markdown_headings(cell.source.encode("utf-8", "surrogatepass")) for cell in cells
                if cell.kind == "markdown"}
    title = document_title([h for headings in markdown.values() for h in headings])
    trail: list[Heading] = []
    for cell in cells:
        if not cell.source.strip():
            continue
        source = cell.source.encode("utf-8", "surrogatepass")
        found = sections(source, markdown[id(cell)], title, trail) if cell.kind == "markdown" else []
        if only is not None and cell.number != only:
            continue  # read for its headings alone
        if cell.kind == "markdown":
            yield cell, chunk_found(path, source, "markdown", cutter, found)
        elif cell.kind == "code" and (code_language := _cell_language(cell.source, language)):
            yield cell, _code_chunks(path, source, code_language, cutter)
        else:
            yield cell, cutter.windows(path, source, fmt, [(0, len(source))], TEXT)


def code_cells(path: str, data: bytes, cutter: Cutter) -> list[tuple[bytes, list[Chunk], Callable[[Chunk], Chunk]]] | None:
    """Each code cell in a language with a grammar, as :func:`chunk_notebook` reads it: the cell's source, its chunks
    with positions in that source, and what places one of them in the file; None when ``data`` is no notebook. For
    readers of a chunk's own bytes (the training miner reads a docstring through its range, which in the file would
    be JSON)."""
    read = read_cells(data)
    if read is None:
        return None
    cells, language = read
    line_starts = [0, *(m.end() for m in re.finditer(b"\n", data))]
    found = []
    for cell in cells:
        code_language = _cell_language(cell.source, language) if cell.kind == "code" else ""
        if not code_language or not cell.source.strip():
            continue
        source = cell.source.encode("utf-8", "surrogatepass")
        found.append((source, _code_chunks(path, source, code_language, cutter),
                      partial(_placed, cell=cell, line_of=lambda offset: bisect_right(line_starts, offset))))
    return found


def _cell_language(source: str, language: str) -> str:
    if language == "python" and source.lstrip().startswith("%%"):
        magic = _CELL_MAGIC.match(source.lstrip())
        return language if magic is not None and magic.group(1) in _PYTHON_CELL_MAGICS else ""
    return language


def _code_chunks(path: str, source: bytes, language: str, cutter: Cutter) -> list[Chunk]:
    if language != "python" or _MAGIC.search(source) is None:
        return cutter.code(path, source, language)
    chunks = cutter.code(path, _MAGIC.sub(rb"\1#", source), language)
    # The magics were the same length as their comments: the cell's own bytes give each chunk its text back.
    return [c if c.kind == CLASS else dataclasses.replace(c, text=_same_length_text(source, c)) for c in chunks]


def _same_length_text(source: bytes, chunk: Chunk) -> str:
    size = len(chunk.text.encode("utf-8", "surrogatepass"))
    return source[chunk.start_byte:chunk.start_byte + size].decode("utf-8", "replace")


def _placed(chunk: Chunk, cell: Cell, line_of: Callable[[int], int]) -> Chunk:
    """``chunk`` of a cell's source placed in the notebook file: lines and bytes of the JSON strings it is in; its
    lines in the cell are kept as ``cell_*`` (a source written as one string puts every line on one file line)."""
    lines = cell.lines

    def in_cell(line: int) -> int:
        return min(max(line, 1), len(lines))

    def owner(line: int) -> Span:
        return lines[in_cell(line) - 1]

    first, last = owner(chunk.start_line), owner(chunk.end_line)
    moved = {"start_byte": first[0], "end_byte": max(last[1], first[0] + 1),
             "start_line": line_of(first[0]), "end_line": line_of(max(last[1], first[0] + 1) - 1),
             "cell": cell.number, "cell_start_line": in_cell(chunk.start_line),
             "cell_end_line": max(in_cell(chunk.end_line), in_cell(chunk.start_line))}
    if chunk.has_doc_span:
        doc_first, doc_last = owner(chunk.doc_start_line), owner(chunk.doc_end_line)
        moved.update(doc_start_byte=doc_first[0], doc_end_byte=max(doc_last[1], doc_first[0] + 1),
                     doc_start_line=line_of(doc_first[0]), doc_end_line=line_of(max(doc_last[1], doc_first[0] + 1) - 1))
    return dataclasses.replace(chunk, **moved)
