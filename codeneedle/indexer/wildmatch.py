"""Gitignore-style globs (git's wildmatch with WM_PATHNAME) matched in linear time.

A glob becomes a list of tokens. Patterns with at most one unbounded wildcard (``*``, ``**``) are
matched by a regex: with one star a backtracking engine tries each split once, O(len(path) *
len(pattern)). Patterns with more stars (``*?*?*?*?...Q``) made Python's backtracking regex take
exponential time: a 25-character glob froze the language server and ``needle index``. They are
matched here by simulating the pattern's automaton over the path, one character at a time, with the
set of live pattern positions held in an int bitmask: O(len(path) * len(pattern) / 64), whatever the
pattern.

:func:`tokenize` and :class:`Automaton` serve ``ignore.py``: ignore files, ``exclude`` settings and the search
filter's globs (``ignore.glob_match``).
"""

from __future__ import annotations

import re

LIT = "lit"  # one literal character
ANY = "any"  # ?: one character other than "/"
CLASS = "class"  # [...]: one character other than "/" from a set (payload: a one-character regex)
STAR = "star"  # *: zero or more characters other than "/"
DSTAR = "dstar"  # a trailing /**: anything, "/" included
DSLASH = "dslash"  # **/: zero or more whole folders

Token = tuple[str, str]
_UNBOUNDED = frozenset({STAR, DSTAR, DSLASH})
# Patterns with more unbounded wildcards than this run as an automaton (tests set -1 to run every one so).
REGEX_MAX_STARS = 1

_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


def _translate_bracket(body: str, start: int) -> tuple[str, int] | None:
    """A ``[...]`` expression starting at ``body[start]`` as a one-character regex, and the index after it.

    None when the bracket never closes or names an unknown class: git then matches nothing.
    """
    i = start + 1
    n = len(body)
    negate = i < n and body[i] in "!^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while i < n and (first or body[i] != "]"):
        first = False
        ch = body[i]
        if ch == "\\" and i + 1 < n:
            ch = body[i + 1]
            i += 2
        elif ch == "[" and body.startswith("[:", i):
            close = body.find(":]", i + 2)
            if close == -1:
                items.append(_class_char(ch))
                i += 1
                continue
            cls = _POSIX_CLASSES.get(body[i + 2 : close])
            if cls is None:
                return None
            items.append(cls)
            i = close + 2
            continue
        else:
            i += 1
        if i + 1 < n and body[i] == "-" and body[i + 1] != "]":
            high = body[i + 1]
            i += 2
            if high == "\\" and i < n:
                high = body[i]
                i += 1
            if ch <= high:  # git: an inverted range matches nothing
                items.append(f"{_class_char(ch)}-{_class_char(high)}")
            continue
        items.append(_class_char(ch))
    if i >= n:
        return None
    chars = "".join(items)
    if negate:
        return f"[^/{chars}]", i + 1
    if not chars:
        return "(?!)", i + 1
    return f"(?:(?!/)[{chars}])", i + 1  # a bracket never matches "/" in a path


def tokenize(body: str, anchored: bool) -> list[Token] | None:
    """A wildmatch pattern body (no ``!``, no trailing ``/``, no leading ``/``) as tokens.

    None when the pattern can never match (an unclosed bracket, a trailing backslash).
    """
    tokens: list[Token] = []
    i = 0
    n = len(body)
    # git compares an anchored pattern's literal head separately and hands only the rest to
    # wildmatch, where the first wildcard then counts as the start of a segment: "a**/x" matches
    # "ax" like "a" + "**/x". Reproduce the quirk so the walker agrees with `git status`.
    first_wild = next((k for k, c in enumerate(body) if c in "*?[\\"), -1) if anchored else -1
    while i < n:
        ch = body[i]
        if ch == "*":
            j = i
            while j < n and body[j] == "*":
                j += 1
            at_segment_start = i == 0 or body[i - 1] == "/" or i == first_wild
            if j - i >= 2 and at_segment_start and j == n:
                tokens.append((DSTAR, ""))  # "a/**": everything inside a
                i = j
            elif j - i >= 2 and at_segment_start and body[j] == "/":
                tokens.append((DSLASH, ""))  # "**/": zero or more folders, so the "/" is optional too
                i = j + 1
            else:
                tokens.append((STAR, ""))  # other runs of stars are a plain "*"
                i = j
        elif ch == "?":
            tokens.append((ANY, ""))
            i += 1
        elif ch == "[":
            translated = _translate_bracket(body, i)
            if translated is None:
                return None
            tokens.append((CLASS, translated[0]))
            i = translated[1]
        elif ch == "\\":
            if i + 1 >= n:
                return None  # git: a trailing backslash makes the pattern invalid
            tokens.append((LIT, body[i + 1]))
            i += 2
        else:
            tokens.append((LIT, ch))
            i += 1
    return tokens


_REGEX_OF = {ANY: "[^/]", STAR: "[^/]*", DSTAR: ".*", DSLASH: "(?:.*/)?"}


def to_regex(tokens: list[Token]) -> str:
    """The tokens as a regex for ``fullmatch`` (DOTALL). Safe from blow-up only when :func:`regex_safe`."""
    return "".join(
        re.escape(payload) if kind == LIT else payload if kind == CLASS else _REGEX_OF[kind]
        for kind, payload in tokens
    )


def regex_safe(tokens: list[Token]) -> bool:
    """Whether a backtracking regex of these tokens runs in time linear in the subject's length."""
    return sum(1 for kind, _ in tokens if kind in _UNBOUNDED) <= REGEX_MAX_STARS


class Automaton:
    """The tokens as a nondeterministic automaton; :meth:`fullmatch` simulates every path through it at once.

    State ``i`` means "the first ``i`` tokens are matched". Bit ``i`` of an int is state ``i``, so one
    character costs a few big-int operations, never a backtrack. A star state loops on the characters it
    may eat and may be left at any time. A ``**/`` state loops on any character but may be left only
    right after it was entered (zero folders) or right after it ate a ``/`` (the end of a folder).
    """

    __slots__ = ("_accept", "_eps", "_eps_loop", "_dslash", "_loop_any", "_loop_noslash", "_steps", "_tokens")

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = [
            (kind, re.compile(payload, re.DOTALL) if kind == CLASS else payload) for kind, payload in tokens
        ]
        self._accept = 1 << len(tokens)
        eps = dslash = loop_any = loop_noslash = 0
        for i, (kind, _) in enumerate(tokens):
            bit = 1 << i
            if kind in _UNBOUNDED:
                eps |= bit  # each may match nothing
            if kind == DSLASH:
                dslash |= bit
                loop_any |= bit
            elif kind == DSTAR:
                loop_any |= bit
            elif kind == STAR:
                loop_noslash |= bit
        self._eps = eps
        self._eps_loop = eps & ~dslash
        self._dslash = dslash
        self._loop_any = loop_any
        self._loop_noslash = loop_noslash
        self._steps: dict[str, int] = {}  # char -> states whose token consumes it and moves on

    def _step_mask(self, ch: str) -> int:
        mask = self._steps.get(ch)
        if mask is None:
            mask = 0
            for i, (kind, payload) in enumerate(self._tokens):
                if kind == LIT:
                    hit = payload == ch
                elif kind == ANY:
                    hit = ch != "/"
                elif kind == CLASS:
                    hit = ch != "/" and payload.fullmatch(ch) is not None  # type: ignore[union-attr]
                else:
                    hit = False
                if hit:
                    mask |= 1 << i
            if len(self._steps) < 4096:  # bounded: a hostile path cannot grow the cache without limit
                self._steps[ch] = mask
        return mask

    def _closure(self, states: int) -> int:
        """``states`` plus every state reachable from them by matching nothing (all entered afresh)."""
        while True:
            grown = states | ((states & self._eps) << 1)
            if grown == states:
                return states
            states = grown

    def fullmatch(self, subject: str) -> bool:
        """Whether the whole ``subject`` matches."""
        states = self._closure(1)
        loop_any, loop_noslash, dslash, eps_loop = self._loop_any, self._loop_noslash, self._dslash, self._eps_loop
        for ch in subject:
            if ch == "/":
                looped = states & loop_any
                fresh = ((states & self._step_mask(ch)) << 1) | ((looped & dslash) << 1)
            else:
                looped = states & (loop_any | loop_noslash)
                fresh = (states & self._step_mask(ch)) << 1
            states = looped | self._closure(fresh | ((looped & eps_loop) << 1))
            if not states:
                return False
        return bool(states & self._accept)
