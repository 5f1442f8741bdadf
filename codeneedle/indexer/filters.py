"""Checking search arguments once, for every front door: query, k, languages, kinds, include/exclude globs.

A bad argument is a one-line NeedleError naming what is accepted, never a silent "no results".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from codeneedle.errors import NeedleError
from codeneedle.indexer.formats import FORMATS
from codeneedle.indexer.ignore import glob_match
from codeneedle.indexer.languages import SUPPORTED_LANGUAGES

# "text" is what every other file without a tree-sitter grammar is indexed as; a format (vue, jupyter, markdown)
# selects its files by extension, whatever the language of the code inside (formats.py).
KNOWN_LANGUAGES: tuple[str, ...] = (*SUPPORTED_LANGUAGES, *FORMATS, "text")


# What a search's kind filter names: the kinds results carry, and words people use for them.
KNOWN_KINDS: tuple[str, ...] = ("function", "method", "class", "block", "text")
_KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "functions": ("function",), "fn": ("function",), "func": ("function",), "methods": ("method",),
    "classes": ("class",), "type": ("class",), "types": ("class",), "struct": ("class",), "interface": ("class",),
    "trait": ("class",), "enum": ("class",), "blocks": ("block",),
    # everything with a name, what "go to definition" would land on
    "definition": ("function", "method", "class"), "definitions": ("function", "method", "class"),
    "def": ("function", "method", "class"), "code": ("function", "method", "class"),
}


def kind_filter(kind: str | Sequence[str] | None) -> tuple[str, ...]:
    """The chunk kinds a ``kind`` filter names (``"function,method"``, ``["class"]``, ``"def"``); () for none.
    NeedleError for an unknown kind, and for a filter given but naming none (``""``)."""
    if kind is None:
        return ()
    items = kind.split(",") if isinstance(kind, str) else list(kind)
    words = [w.strip().lower() for w in items if isinstance(w, str) and w.strip()]
    if not words:
        raise NeedleError(f"kind {kind!r} names no kind (e.g. function,method)")
    unknown = [w for w in words if w not in KNOWN_KINDS and w not in _KIND_ALIASES]
    if unknown:
        raise NeedleError(f"unknown kind {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN_KINDS)} "
                          "(and def: every named definition)")
    return tuple(dict.fromkeys(k for w in words for k in _KIND_ALIASES.get(w, (w,))))


# The most results one search returns, whichever door asks (the MCP server allows fewer: a model's context is small).
MAX_K = 1000


def check_query(query: str, k: int) -> None:
    """A blank query, one that is not valid Unicode, or k outside 1..MAX_K is an error, not an empty or quietly
    shortened answer."""
    if not query or not query.strip():
        raise NeedleError("the query is empty: describe the code you are looking for")
    problem = lone_surrogate(query)
    if problem:
        raise NeedleError(problem)
    if "\0" in query:  # no one types one: a client's bug, refused by every door alike
        raise NeedleError(f"the query contains a NUL character (at character {query.index(chr(0))})")
    if not 1 <= k <= MAX_K:
        raise NeedleError(f"k must be between 1 and {MAX_K}, got {k}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str, what: str = "the query") -> str | None:
    """What is wrong with ``text`` if it holds a lone surrogate (JSON allows ``\\ud800``; bytes that are not
    UTF-8 arrive in argv that way), else None: no tokenizer or UTF-8 file can take one."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (f"{what} contains a lone surrogate (\\u{ord(found.group()):04x} at character {found.start()}) or bytes "
            "that are not UTF-8; it is not valid Unicode")


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """Canonical names as given, or NeedleError naming the unknown ones and the known ones."""
    unknown = [name for name in languages if name not in KNOWN_LANGUAGES]
    if unknown:
        raise NeedleError(f"unknown language {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN_LANGUAGES)}")
    return tuple(languages)


def split_globs(
    glob: str | Sequence[str] | None, exclude: str | Sequence[str] | None = None,
) -> tuple[str | None, tuple[str, ...]]:
    """(include glob, exclude globs). A glob written ``!pattern`` is an exclusion, as in ripgrep's ``-g``."""
    globs = [glob] if isinstance(glob, str) else list(glob or ())
    excludes = [exclude] if isinstance(exclude, str) else list(exclude or ())
    include: list[str] = []
    for g in (g.strip() for g in globs):
        if g.startswith("!"):
            excludes.append(g[1:])
        elif g:
            include.append(g)
    if len(include) > 1:
        raise NeedleError(f"give at most one include glob (got {', '.join(include)}); exclude with '!GLOB'")
    include = [_from_root(g) for g in include]
    cleaned = tuple(dict.fromkeys(_from_root(e.strip().removeprefix("!")) for e in excludes
                                  if e.strip().removeprefix("!")))
    for g in (*include, *cleaned):
        if "\\" in g:
            raise NeedleError(f"bad glob {g!r}: use '/' between folders (globs match POSIX paths relative to the "
                              "repository root)")
        for alternative in expand_braces(g):
            _spec(alternative)  # a pattern pathspec cannot parse is a bad argument, reported now
            if (at := _unclosed_class(alternative)) is not None:
                # Git's wildmatch gives up on such a pattern: it matches nothing, which reads as "no results".
                of = f" of {alternative!r}" if alternative != g else ""  # where braces put it: counted there
                raise NeedleError(f"bad glob {g!r}: the '[' at character {at + 1}{of} is never closed (a class is "
                                  "written '[abc]'; a literal '[' is '[[]')")
    return (include[0] if include else None), cleaned


def _unclosed_class(glob: str) -> int | None:
    """Where a ``[`` character class opens that no ``]`` closes (wildmatch's rules: ``[!]...]`` and ``[]...]``
    take that first ``]`` as a member), else None."""
    i = glob.find("[")
    while i != -1:
        j = i + 1
        if j < len(glob) and glob[j] in "!^":
            j += 1
        if j < len(glob) and glob[j] == "]":
            j += 1
        close = glob.find("]", j)
        if close == -1:
            return i
        i = glob.find("[", close + 1)
    return None


def globs_from_folder(globs: str | Sequence[str] | None, folder: str) -> str | list[str] | None:
    """``globs`` with those written ``./GLOB`` (what shell completion writes; ``!./GLOB`` too) read from ``folder``, a
    folder of the repository relative to its root (the shell's current folder): from ``pkg``, ``./models/**`` is
    ``pkg/models/**`` (read from the root it matched nothing). The others stay relative to the root."""
    if globs is None or folder in ("", "."):
        return globs

    def anchored(glob: str) -> str:
        bang = "!" if glob.startswith("!") else ""
        rest = glob[len(bang):]
        if not rest.startswith("./"):
            return glob
        while rest.startswith("./"):
            rest = rest[2:]
        return f"{bang}./{folder}/{rest}"

    return anchored(globs) if isinstance(globs, str) else [anchored(g) for g in globs]


def _from_root(glob: str) -> str:
    # "./src/**" is what shell completion writes: the root's own src, which gitignore spells "/src/**".
    rest = glob
    while rest.startswith("./"):
        rest = rest[2:]
    return glob if rest == glob else "/" + rest


_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")
MAX_ALTERNATIVES = 64


def expand_braces(glob: str) -> tuple[str, ...]:
    """``**/*.{ts,tsx}`` -> ``("**/*.ts", "**/*.tsx")``, as ripgrep, fd and VS Code's search read globs (gitignore
    lines have no braces); a glob without a comma inside braces is itself."""
    out: list[str] = []
    pending = [glob]
    while pending:
        g = pending.pop()
        found = _BRACES.search(g)
        if found is None:
            if g:  # an empty alternative ("{a,}") adds nothing
                # A "!" a brace put first is a file name's, not the inverting prefix of a gitignore line.
                out.append("\\" + g if g.startswith("!") and not glob.startswith("!") else g)
        else:
            pending.extend(g[: found.start()] + alt + g[found.end():] for alt in reversed(found.group(1).split(",")))
        if len(out) + len(pending) > MAX_ALTERNATIVES:
            raise NeedleError(f"bad glob {glob!r}: its braces expand to more than {MAX_ALTERNATIVES} patterns")
    return tuple(dict.fromkeys(out))


def within_paths(within: str | Sequence[str] | None) -> tuple[str, ...]:
    """The folders or files a search is narrowed to, as POSIX paths relative to the repository root (``src/``,
    ``./src/x.py`` -> ``src``, ``src/x.py``); () for the whole repository, also when one of them is its root.
    NeedleError for a path that leaves the repository (absolute, or through ``..``)."""
    given = [within] if isinstance(within, str) else list(within or ())
    cleaned: list[str] = []
    for raw in given:
        parts = [part for part in raw.split("/") if part not in ("", ".")]
        if raw.startswith("/") or ".." in parts:
            raise NeedleError(f"path {raw!r} is not inside the repository: give it relative to the repository root")
        if not parts:
            return ()  # the root itself: nothing is narrowed
        cleaned.append("/".join(parts))
    return tuple(dict.fromkeys(cleaned))


def within_of(root: Path, paths: Sequence[Path]) -> tuple[str, ...] | None:
    """What of the repository at ``root`` a search narrowed to ``paths`` (absolute) covers: those under it, relative
    to it (:func:`within_paths`); ``()`` where one of them is the root or holds it (all of it: a repository
    nested in a named folder); None where none is under it (none of it)."""
    inside = [path.relative_to(root).as_posix() if path.is_relative_to(root) else "."
              for path in paths if path.is_relative_to(root) or root.is_relative_to(path)]
    return within_paths(inside) if inside else None


def path_within(path: str, within: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``within``'s files or inside one of its folders (any, when ``within`` is empty)."""
    return not within or any(path == w or path.startswith(w + "/") for w in within)


def path_allowed(path: str, include: str | None, exclude: Sequence[str]) -> bool:
    """Whether ``path`` matches the include glob (if any) and none of the exclude globs."""
    if include and not _matches(include, path):
        return False
    return not any(_matches(g, path) for g in exclude)


# Matching runs in linear time (pathspec's regexes backtrack exponentially on globs like "*?*?*?...Q": a
# 25-character glob froze the language server); memoised because a filtered search asks once per chunk.
@lru_cache(maxsize=1 << 16)
def _matches(glob: str, path: str) -> bool:
    return any(glob_match(alternative, path) for alternative in expand_braces(glob))


@lru_cache(maxsize=128)
def _spec(glob: str):
    import warnings

    import pathspec

    try:
        with warnings.catch_warnings():  # re's "possible nested set" for '[[]': a glob's literal bracket is fine
            warnings.simplefilter("ignore", FutureWarning)
            return pathspec.GitIgnoreSpec.from_lines([glob])
    except (ValueError, TypeError) as exc:
        raise NeedleError(f"bad glob {glob!r}: {exc}") from None
