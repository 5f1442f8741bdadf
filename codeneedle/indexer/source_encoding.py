"""Python files in a declared legacy encoding (PEP 263: ``# -*- coding: latin-1 -*-``).

The chunker reads UTF-8. A Latin-1 or cp1252 file read that way loses every accented name to U+FFFD, and
tree-sitter cuts identifiers at the bad byte (``def café_price`` became a function named ``_price``). Such a file
is chunked as UTF-8 text transcoded from its declared encoding, and each chunk's byte range is mapped back onto
the file's own bytes, which is what a chunk's ``start_byte``/``end_byte`` promise.
"""

from __future__ import annotations

import codecs
import io
import tokenize
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate


def declared_encoding(data: bytes) -> str | None:
    """The legacy codec a Python file declares and decodes with, or None (UTF-8, no cookie, or a cookie that
    does not hold: an unknown codec, one that is not ASCII-compatible, or bytes it cannot decode)."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    try:
        name, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        codec = codecs.lookup(name).name
    except (SyntaxError, LookupError):
        return None
    if codec.startswith("utf-8") or "\n#:=".encode(codec, "replace") != b"\n#:=":
        return None  # Python itself accepts only ASCII-compatible source encodings
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return None
    return codec


def transcoded(data: bytes, codec: str) -> tuple[bytes, Callable[[int], int]]:
    """``data`` decoded with ``codec`` and encoded as UTF-8, and a map from offsets in the UTF-8 bytes back to
    offsets in ``data``. Lines stay where they were: ``codec`` is ASCII-compatible, so newlines are the same."""
    text = data.decode(codec)
    utf8 = text.encode("utf-8")
    if len(utf8) == len(data):  # nothing outside ASCII after all
        return utf8, lambda offset: offset
    utf8_ends = [0, *accumulate(len(ch.encode("utf-8")) for ch in text)]
    raw_ends = [0, *accumulate(len(ch.encode(codec)) for ch in text)]

    def to_raw(offset: int) -> int:
        # the character that starts at or before ``offset`` (tree-sitter's ranges fall on character edges)
        return raw_ends[max(0, bisect_right(utf8_ends, offset) - 1)]

    return utf8, to_raw
