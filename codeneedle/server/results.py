"""Library results -> LSP shapes: file URIs, 0-based ranges in the negotiated position encoding, symbols."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import from_fs_path

from codeneedle.indexer.regular_file import read_regular_file
from codeneedle.server.linecache import LineCache

if TYPE_CHECKING:  # numpy and SQLite stay out of the server's start-up
    from codeneedle.indexer.search import SearchResult

# Bounded by bytes (see linecache): whole files cached as line lists once cost gigabytes.
LINES = LineCache()

SYMBOL_KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "block": types.SymbolKind.Module,
    "text": types.SymbolKind.String,
}


def result_range(root: Path, result: SearchResult, encoding: str) -> dict[str, dict[str, int]]:
    """From the start of ``start_line`` to the end of ``end_line`` (LSP lines are 0-based).

    The end character is the length of the last line in the client's position encoding; when the file can no
    longer be read it falls back to the start of the following line.
    """
    start = max(result.start_line - 1, 0)
    last = max(result.end_line - 1, start)
    length = _line_length(str(root / result.path), last, encoding)
    end = {"line": last, "character": length} if length is not None else {"line": last + 1, "character": 0}
    return {"start": {"line": start, "character": 0}, "end": end}


def to_lsp(root: Path, result: SearchResult, encoding: str) -> dict[str, Any]:
    """One hit as ``{uri, range, name, kind, language, score, weak, snippet, cell?}``; ``weak``: the score (a
    cosine) is below the "good match" line, so a client can say "no good match" when every hit is weak. ``cell``,
    for a hit in a notebook: ``{index, range}``, the cell (0-based, as a notebook editor numbers them) and the lines
    in its source (whole lines: from the start of the first to the start of the line after the last), where
    ``range`` is in the ``.ipynb`` file's text."""
    from codeneedle.indexer.scores import GOOD_MATCH  # numpy stays out of the server's start-up
    out = {
        "uri": file_uri(root / result.path),
        "range": result_range(root, result, encoding),
        "name": result.name,
        "kind": result.kind,
        "language": result.language,
        "score": result.score,
        "weak": result.score < GOOD_MATCH and not result.verbatim,
        "snippet": result.snippet,
    }
    if result.cell:
        start = max(result.cell_start_line - 1, 0)
        # Whole lines: the end of the last one in the client's encoding would need the cell's source, which only
        # the notebook's JSON holds; an editor measures it in the cell's own document.
        end = max(result.cell_end_line, start + 1)
        out["cell"] = {"index": result.cell - 1, "range": {"start": {"line": start, "character": 0},
                                                            "end": {"line": end, "character": 0}}}
    return out


def to_symbol(root: Path, result: SearchResult, encoding: str) -> types.SymbolInformation:
    """One hit as a workspace symbol, straight from the library's result; the container shows the file (relative
    to its folder), so every picker can show where."""
    rng = result_range(root, result, encoding)
    name = result.name or result.snippet.split("\n")[0].strip()[:80] or result.path
    return types.SymbolInformation(
        name=name,
        kind=SYMBOL_KINDS.get(result.kind, types.SymbolKind.Variable),
        location=types.Location(
            uri=file_uri(root / result.path),
            range=types.Range(
                start=types.Position(line=rng["start"]["line"], character=rng["start"]["character"]),
                end=types.Position(line=rng["end"]["line"], character=rng["end"]["character"]),
            ),
        ),
        container_name=result.path,
    )


def file_uri(path: Path | str) -> str:
    """``path``'s ``file:`` URI, every byte of it: a folder whose name is not UTF-8 (a lone surrogate here, from
    surrogateescape) is percent-encoded byte for byte (``%FF``), as Neovim's ``vim.uri_from_fname`` writes it and
    ``uris.uri_to_path`` reads it back (pygls' ``from_fs_path`` raises on it: every search there failed)."""
    try:
        return from_fs_path(str(path)) or Path(path).as_uri()
    except UnicodeEncodeError:
        return Path(path).as_uri()


def _line_length(path: str, line: int, encoding: str) -> int | None:
    """The length of line ``line`` as the editor counts it: in its text (a byte-order mark is not part of it, a
    file in a declared legacy encoding is read in that encoding, as the chunker and editors read it), in the
    client's position encoding."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    raw = LINES.line(path, st.st_ctime_ns, st.st_size, line, _lines)
    if raw is None:
        return None
    if line == 0 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        codec = _declared_codec(path, st, raw)
        if codec is None and encoding == types.PositionEncodingKind.Utf8:
            return len(raw)  # not UTF-8 and nothing declared: the bytes are all there is to count
        text = raw.decode(codec or "utf-8", errors="replace")
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", errors="surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


_BOM = b"\xef\xbb\xbf"


def _declared_codec(path: str, st: os.stat_result, raw: bytes) -> str | None:
    """The legacy encoding a file that is not UTF-8 declares in its first two lines (PEP 263, as Emacs reads it
    too: ``# -*- coding: latin-1 -*-``), checked as the chunker checks it (``source_encoding``)."""
    from codeneedle.indexer.source_encoding import declared_encoding

    head = [LINES.line(path, st.st_ctime_ns, st.st_size, n, _lines) for n in (0, 1)]
    return declared_encoding(b"\n".join([*(h for h in head if h is not None), raw]))


def _lines(path: str, _ctime_ns: int, _size: int) -> bytes | None:
    """The file's bytes for the line cache (which splits and bounds them); a UTF-16 or UTF-32 file's as UTF-8,
    so its lines split where its text's do."""
    from codeneedle.indexer.source_encoding import utf8_view

    data = read_regular_file(path)
    return None if data is None else utf8_view(data)
