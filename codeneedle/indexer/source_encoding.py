"""Python files in a declared legacy encoding (PEP 263: ``# -*- coding: latin-1 -*-``).

The chunker reads UTF-8. A Latin-1 or cp1252 file read that way loses every accented name to U+FFFD, and
tree-sitter cuts identifiers at the bad byte (``def café_price`` became a function named ``_price``). Such a file
is chunked as UTF-8 text transcoded from its declared encoding, and each chunk's byte range is mapped back onto
the file's own bytes, which is what a chunk's ``start_byte``/``end_byte`` promise.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import tokenize
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcoded:
    """A legacy-encoded file as the chunker reads it."""

    codec: str
    utf8: bytes
    to_raw: Callable[[int], int]  # offset in ``utf8`` -> offset in the file's own bytes


def transcoded_source(data: bytes) -> Transcoded | None:
    """A Python file's bytes in its declared legacy encoding, as UTF-8 with the offset map back; None: read the
    file as UTF-8 (it is UTF-8, declares nothing usable, or its codec does not line up). Never raises."""
    codec = declared_encoding(data)
    if codec is None:
        return None
    try:
        mapped = transcoded(data, codec)
    except Exception:  # noqa: BLE001 - an odd codec must not cost the file: it is read as UTF-8, as before
        logger.warning("reading a file declared as %s failed; reading it as UTF-8", codec, exc_info=True)
        return None
    return None if mapped is None else Transcoded(codec, *mapped)


def declared_encoding(data: bytes) -> str | None:
    """The legacy codec a Python file that is not valid UTF-8 declares and decodes with, or None (UTF-8, no
    cookie, or a cookie that does not hold: an unknown codec, a non-text one such as ``hex``, one that is not
    ASCII-compatible, or bytes it cannot decode). Never raises."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    try:
        name, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        codec = codecs.lookup(name).name
        # Python itself accepts only ASCII-compatible text encodings for source (``hex`` is a bytes codec)
        if codec.startswith("utf-8") or "\n#:=".encode(codec) != b"\n#:=":
            return None
        data.decode(codec)
    except (SyntaxError, LookupError, ValueError, TypeError):  # UnicodeError is a ValueError
        return None
    return codec


def transcoded(data: bytes, codec: str) -> tuple[bytes, Callable[[int], int]] | None:
    """``data`` decoded with ``codec`` and encoded as UTF-8, and a map from offsets in the UTF-8 bytes back to
    offsets in ``data``; None when the two do not line up line for line (then the file is read as UTF-8)."""
    utf8 = data.decode(codec).encode("utf-8")
    raw_lines, utf8_lines = data.split(b"\n"), utf8.split(b"\n")
    if len(raw_lines) != len(utf8_lines):
        return None
    raw_starts = [0, *accumulate(len(line) + 1 for line in raw_lines)]
    utf8_starts = [0, *accumulate(len(line) + 1 for line in utf8_lines)]
    char_starts: dict[int, list[int]] = {}  # line -> raw offset of each of its characters, built when asked

    def to_raw(offset: int) -> int:
        line = max(0, min(bisect_right(utf8_starts, offset) - 1, len(utf8_lines) - 1))
        within = offset - utf8_starts[line]
        if within <= 0:
            return raw_starts[line]
        if within >= len(utf8_lines[line]):
            return raw_starts[line] + len(raw_lines[line]) + (within - len(utf8_lines[line]))
        if line not in char_starts:
            char_starts[line] = _char_starts(raw_lines[line], codec)
        chars = len(utf8_lines[line][:within].decode("utf-8", "ignore"))  # tree-sitter cuts on characters
        starts = char_starts[line]
        return raw_starts[line] + (starts[chars] if chars < len(starts) else len(raw_lines[line]))

    return utf8, to_raw


def _char_starts(raw: bytes, codec: str) -> list[int]:
    """The offset in ``raw`` (one line) where each decoded character starts: decoded byte by byte, so a codec
    whose one code stands for two characters (shift_jis_2004) needs no encoding back."""
    decoder = codecs.getincrementaldecoder(codec)("replace")
    starts: list[int] = []
    pending = 0  # where the bytes of the character being decoded began
    for i in range(len(raw)):
        got = decoder.decode(raw[i:i + 1])
        starts.extend([pending] * len(got))
        if got:
            pending = i + 1
    starts.extend([pending] * len(decoder.decode(b"", final=True)))
    return starts


# UTF-16 and UTF-32 files that start with their byte-order mark: Windows PowerShell 5 writes scripts so (`Out-File`,
# `>`), and older SQL Server Management Studio saves queries so. UTF-32's little-endian mark begins with UTF-16's:
# it is tried first.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


# Control characters no text holds (tab, line and page breaks, and ESC for terminal colours aside): bytes that
# happen to follow a byte-order mark and decode (a binary file starting FF FE) are not text.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def wide_text(data: bytes) -> str | None:
    """The text of a UTF-16 or UTF-32 file that opens with its byte-order mark (the mark left out); None for any
    other file, or one that does not decode to text."""
    for bom, codec in _WIDE_BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(codec)
            except UnicodeDecodeError:
                return None
            return None if _NOT_TEXT.search(text) else text
    return None


def utf8_view(data: bytes) -> bytes:
    """The bytes that checks of a file's content read: a UTF-16 or UTF-32 file's text as UTF-8 (the raw bytes hide
    every ASCII marker between zeros), any other file's bytes as they are."""
    text = wide_text(data)
    return data if text is None else text.encode("utf-8", errors="surrogatepass")


def display_text(data: bytes) -> str:
    """A file's bytes as text to show: UTF-16 or UTF-32 by its byte-order mark, else UTF-8 (bad bytes replaced)."""
    text = wide_text(data)
    return data.decode("utf-8", errors="replace") if text is None else text


def transcoded_wide(data: bytes) -> Transcoded | None:
    """A UTF-16 or UTF-32 file (by its byte-order mark) as the chunker reads it: UTF-8, with each offset mapped
    back onto the file's own bytes; None for any other file."""
    text = wide_text(data)
    if text is None:
        return None
    bom, codec = next((b, c) for b, c in _WIDE_BOMS if data.startswith(b))
    lines = text.split("\n")
    utf8_lines = [line.encode("utf-8", errors="surrogatepass") for line in lines]
    newline = len("\n".encode(codec))
    raw_starts = list(accumulate((len(line.encode(codec, errors="surrogatepass")) + newline for line in lines),
                                 initial=len(bom)))
    utf8_starts = [0, *accumulate(len(line) + 1 for line in utf8_lines)]

    def to_raw(offset: int) -> int:
        line = max(0, min(bisect_right(utf8_starts, offset) - 1, len(lines) - 1))
        chars = len(utf8_lines[line][: max(0, offset - utf8_starts[line])].decode("utf-8", "ignore"))
        return raw_starts[line] + len(lines[line][:chars].encode(codec, errors="surrogatepass"))

    return Transcoded(codec, b"\n".join(utf8_lines), to_raw)
