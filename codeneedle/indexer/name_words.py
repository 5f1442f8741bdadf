"""How much of a definition's name a sentence uses: ``put_u64_le`` for "Writes an unsigned 64 bit integer ... in
little-endian byte order", ``BytesMut.len`` for "Returns the number of bytes ... length".

A doc-style sentence describes what a function does in the words its author named it with, abbreviated
(``len``, ``buf``, ``ctx``, ``le``). The encoder reads names as word pieces and often misses the link between
siblings (``get_i32`` and ``get_i32_le``, ``put_u64`` and ``put_f64``); counting the name's words the query uses
tells them apart. ``ranking.QueryRules`` turns the share into a mild boost for sentences only: on short typed
questions it hurt (CoSQA dev 0.546 -> 0.525: many functions there are named with the question's words and one of
them is the answer). Figures: docs/BENCHMARKS.md, "Names in the words of the sentence".
"""

from __future__ import annotations

import re
from functools import lru_cache

from codeneedle.indexer.types import split_identifier

_WORD = re.compile(r"[A-Za-z0-9]+")
_SIZED_NUMBER = re.compile(r"(u|i|uint|int)(8|16|32|64|128)")
_SUFFIXES = ("ing", "es", "ed", "s")
MIN_PREFIX = 3  # a name part this long may abbreviate a longer word by its start: buf, len, str, init, config
# Longer "names" (generated code, minified keys, whole queries) stay out of the name caches, ranking.normalise's too;
# here they are not read at all.
MAX_NAME = 200

# Abbreviations that are not the start of the word they stand for (or too short to be read as one).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "ptr": ("pointer",), "idx": ("index",), "cnt": ("count",), "ctx": ("context",), "msg": ("message",),
    "src": ("source",), "dst": ("destination",), "req": ("request",), "res": ("response", "result"),
    "resp": ("response",), "err": ("error",), "fn": ("function",), "cb": ("callback",), "cfg": ("configuration",),
    "tmp": ("temporary",), "db": ("database",), "ws": ("whitespace",), "sep": ("separator",), "eq": ("equal",),
    "cmp": ("compare",), "lt": ("less",), "gt": ("greater",), "le": ("little",), "be": ("big",), "ne": ("native",),
    "mul": ("multiply",), "div": ("divide",), "num": ("number",), "len": ("length",), "str": ("string",),
    "buf": ("buffer",), "mut": ("mutable",), "init": ("initialize", "initialise"), "max": ("maximum",),
    "min": ("minimum",), "dir": ("directory",), "env": ("environment",), "val": ("value",), "var": ("variable",),
    "arg": ("argument",), "args": ("arguments",), "param": ("parameter",), "attr": ("attribute",),
    "elem": ("element",), "pos": ("position",), "prev": ("previous",), "cur": ("current",), "obj": ("object",),
    "doc": ("document",), "info": ("information",), "char": ("character",), "chars": ("characters",),
    "ref": ("reference",), "refs": ("references",), "sub": ("subtract",), "f32": ("single",), "f64": ("double",),
}


def stem(word: str) -> str:
    """A crude English stem (``writes`` -> ``writ``, ``bytes`` -> ``byt``): both sides are stemmed alike."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def query_words(query: str) -> frozenset[str]:
    """The lower-cased words of a query (identifiers split), with their stems."""
    words = [w.lower() for w in _WORD.findall(split_identifier(query))]
    return frozenset(words) | frozenset(map(stem, words))


def _uses(part: str, words: frozenset[str]) -> bool:
    if part in words or stem(part) in words:
        return True
    if len(part) >= MIN_PREFIX and any(len(w) > len(part) and w.startswith(part) for w in words):
        return True
    if any(full in words or stem(full) in words for full in ABBREVIATIONS.get(part, ())):
        return True
    # u64, i32, uint16: a sentence says the size, and "unsigned" for the unsigned ones only.
    sized = _SIZED_NUMBER.fullmatch(part)
    return sized is not None and sized.group(2) in words and sized.group(1).startswith("u") == ("unsigned" in words)


@lru_cache(maxsize=1 << 14)
def name_parts(name: str) -> tuple[str, ...]:
    """The lower-cased words of a definition's own name: ``BufMut.put_u64_le`` -> ``("put", "u64", "le")``."""
    own = re.split(r"\.|::|#", name)[-1]
    return tuple(p.lower() for p in split_identifier(own).split())


def name_overlap(name: str, words: frozenset[str]) -> float:
    """The share of the name's words the query uses, 0 to 1 (0 for an empty name)."""
    parts = name_parts(name) if len(name) <= MAX_NAME else ()
    if not parts:
        return 0.0
    return sum(_uses(p, words) for p in parts) / len(parts)
