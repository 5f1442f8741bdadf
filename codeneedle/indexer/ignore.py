"""Which paths under a root are left out of the index, and why.

Rules, in the order they are checked for one path (the first that decides wins):

1. ``secret``: :data:`~codeneedle.indexer.secrets.DEFAULT_SECRET_PATTERNS` (or the ``secret_patterns``
   given). Nothing else can re-include a secret.
   ``excluded``: the ``extra_patterns`` of the settings (``--exclude``, ``needle.exclude``); like
   secrets, no ignore file can re-include them.
2. ``hidden``: any file or folder whose name starts with ``.`` (so ``.git/``, ``.needle/``, ``.github/``).
3. ``noise``: :data:`NOISE_PATTERNS` (lock files, minified bundles, source maps, ``node_modules/``, ...).
4. ``needleignore``: ``.needleignore`` files (gitignore syntax) in the root and any folder below it.
5. ``gitignore``: ``.gitignore`` files in the root and below, ``.gitignore`` files of the folders between
   the enclosing git work tree's top and the root (when the root is a subfolder of a repository), and
   that repository's ``.git/info/exclude``.
6. ``generated``: build output folders beside sources (``generated.py``); a ``.needleignore`` ``!`` wins.

Within one stack (4 or 5) git's semantics hold: a pattern is relative to the folder of its file, the
last matching line of a file wins, a deeper file wins over a shallower one, ``!`` re-includes, and
nothing inside an ignored folder can be re-included. Across the stacks, a ``.needleignore`` decision
(ignore *or* ``!`` re-include) wins over ``.gitignore``, as ripgrep's ``.ignore`` files do, so a
``.needleignore`` can pull a git-ignored file back into the index.

Not modelled: git's global ``core.excludesFile`` (results would depend on the machine), and nested
repositories (a folder with its own ``.git`` is treated as an ordinary subfolder).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .generated import GENERATED, is_output_dir
from .secrets import DEFAULT_SECRET_PATTERNS
from .wildmatch import LIT, Automaton, Token, regex_safe, to_regex, tokenize

GITIGNORE = "gitignore"
NEEDLEIGNORE = "needleignore"
HIDDEN = "hidden"
SECRET = "secret"
EXCLUDED = "excluded"
NOISE = "noise"

GITIGNORE_NAME = ".gitignore"
NEEDLEIGNORE_NAME = ".needleignore"
IGNORE_FILE_NAMES = frozenset({GITIGNORE_NAME, NEEDLEIGNORE_NAME})
GIT_EXCLUDE_PATH = ".git/info/exclude"

NOISE_PATTERNS: tuple[str, ...] = (
    # dependency lock files: huge, generated, never what a search is looking for
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "Cargo.lock",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "pdm.lock",
    "composer.lock",
    "Gemfile.lock",
    "go.sum",
    "flake.lock",
    "mix.lock",
    "pubspec.lock",
    "Podfile.lock",
    "packages.lock.json",
    # minified bundles and source maps
    "*.min.js",
    "*.min.mjs",
    "*.min.css",
    "*.map",
    # vendored dependencies and build caches
    "node_modules/",
    "bower_components/",
    "__pycache__/",
    ".needle/",
    # compiled objects and common binary assets: skipping them by name saves reading them to sniff
    "*.pyc",
    "*.pyo",
    "*.class",
    "*.o",
    "*.obj",
    "*.a",
    "*.so",
    "*.dylib",
    "*.dll",
    "*.exe",
    "*.wasm",
    "*.jar",
    "*.whl",
    "*.zip",
    "*.gz",
    "*.tgz",
    "*.bz2",
    "*.xz",
    "*.7z",
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.ico",
    "*.webp",
    "*.pdf",
    "*.woff",
    "*.woff2",
    "*.ttf",
)

# An ignore file larger than this is almost certainly not a real ignore file; read only its head.
_MAX_IGNORE_FILE_BYTES = 4 << 20

def _literals(tokens: list[Token]) -> tuple[str, str, str]:
    """Text every match must start with, end with, and contain (each "" when there is none)."""
    runs = "".join(payload if kind == LIT else "\0" for kind, payload in tokens).split("\0")
    if len(runs) == 1:
        return runs[0], runs[0], runs[0]
    return runs[0], runs[-1], max(runs, key=len)


def _trim_trailing_spaces(line: str) -> str:
    # git drops trailing spaces unless the last one is escaped with a backslash
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        backslashes = 0
        k = end - 2
        while k >= 0 and line[k] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2:
            break
        end -= 1
    return line[:end]


@dataclass(frozen=True, slots=True)
class _Pattern:
    index: int
    negate: bool
    dir_only: bool
    basename: bool  # no slash: matched against the name alone, at any depth
    regex: str
    prefix: str  # literal text every match starts with ("" if none)
    suffix: str  # literal text every match ends with ("" if none)
    infix: str  # longest literal text every match contains ("" if none)
    # Patterns with several stars would make the backtracking regex blow up: they run as an automaton.
    automaton: Automaton | None


def _parse_line(index: int, line: str) -> _Pattern | None:
    line = _trim_trailing_spaces(line)
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/")
    if dir_only:
        line = line[:-1]
    basename = "/" not in line
    if not basename and line.startswith("/"):
        line = line[1:]
    if not line:
        return None
    tokens = tokenize(line, anchored=not basename)
    if tokens is None:
        return None
    automaton = None if regex_safe(tokens) else Automaton(tokens)
    return _Pattern(index, negate, dir_only, basename, to_regex(tokens), *_literals(tokens), automaton)


class _Alternation:
    """Patterns compiled into one regex, latest line first, behind a cheap literal pre-check.

    A backtracking engine takes the first alternative that fully matches, so ordering the lines
    last-to-first gives git's "last matching line wins" in a single C-level match. Nearly every path
    matches nothing, and ``str.startswith``/``endswith`` over the patterns' literal ends (``*.pyc``,
    ``node_modules``, ``.env.*``) rules that out several times faster than the regex.
    """

    __slots__ = ("_regex", "_patterns", "_automata", "_prefixes", "_suffixes", "_infixes")

    def __init__(self, patterns: list[_Pattern], keyed: bool) -> None:
        ordered = sorted(patterns, key=lambda p: p.index, reverse=True)
        self._patterns = [p for p in ordered if p.automaton is None]
        self._automata = [p for p in ordered if p.automaton is not None]
        self._regex = (
            re.compile("|".join(f"({p.regex})" for p in self._patterns), re.DOTALL) if self._patterns else None
        )
        self._prefixes: tuple[str, ...] | None = None
        self._suffixes: tuple[str, ...] = ()
        self._infixes: tuple[str, ...] = ()
        if keyed:
            self._prefixes = tuple({p.prefix for p in ordered if p.prefix})
            self._suffixes = tuple({p.suffix for p in ordered if p.suffix and not p.prefix})
            self._infixes = tuple({p.infix for p in ordered if not (p.prefix or p.suffix)})

    def match(self, subject: str) -> _Pattern | None:
        if (
            self._prefixes is not None
            and not subject.startswith(self._prefixes)
            and not subject.endswith(self._suffixes)
        ):
            for infix in self._infixes:
                if infix in subject:
                    break
            else:
                return None
        found = None
        if self._regex is not None:
            m = self._regex.fullmatch(subject)
            if m is not None:
                found = self._patterns[m.lastindex - 1]  # type: ignore[operator]
        for p in self._automata:  # latest first: stop at the first later line that matches
            if found is not None and p.index < found.index:
                break
            if p.automaton.fullmatch(subject):  # type: ignore[union-attr]
                return p
        return found


def _alternations(patterns: list[_Pattern]) -> tuple[_Alternation, ...]:
    keyed = [p for p in patterns if p.infix]
    unkeyed = [p for p in patterns if not p.infix]
    return tuple(_Alternation(group, key) for group, key in ((keyed, True), (unkeyed, False)) if group)


class _Spec:
    """One gitignore-syntax file, compiled for fast "which line decides this path" queries."""

    __slots__ = ("_by_kind",)

    def __init__(self, lines: Iterable[str]) -> None:
        patterns = [p for i, line in enumerate(lines) if (p := _parse_line(i, line)) is not None]
        # [is_dir] -> (alternations over the name, alternations over the path); dir-only lines
        # never see files
        self._by_kind: tuple[tuple[tuple[_Alternation, ...], tuple[_Alternation, ...]], ...] = tuple(
            (
                _alternations([p for p in patterns if p.basename and (is_dir or not p.dir_only)]),
                _alternations([p for p in patterns if not p.basename and (is_dir or not p.dir_only)]),
            )
            for is_dir in (False, True)
        )

    def __bool__(self) -> bool:
        return any(pair[0] or pair[1] for pair in self._by_kind)

    def check(self, path: str, name: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by ``!``, None: no line matches.

        ``path`` is relative to the ignore file's folder; ``name`` is its last component.
        """
        by_name, by_path = self._by_kind[is_dir]
        found: _Pattern | None = None
        for alternation in by_name:
            hit = alternation.match(name)
            if hit is not None and (found is None or hit.index > found.index):
                found = hit
        for alternation in by_path:
            hit = alternation.match(path)
            if hit is not None and (found is None or hit.index > found.index):
                found = hit
        return None if found is None else not found.negate


@lru_cache(maxsize=256)
def _glob_spec(pattern: str) -> _Spec:
    """One gitignore line as a spec (the search filter's glob)."""
    return _Spec([pattern])


def glob_match(pattern: str, path: str) -> bool:
    """Whether root-relative ``path`` (a file) matches a gitignore-style ``pattern``, in linear time.

    The pattern means what one ``.gitignore`` line means: without a ``/`` it matches a name at any
    depth (``*.py``), otherwise it is anchored at the root (``src/**/*.py``); a folder that matches
    takes everything inside it (``docs`` or ``docs/``). A leading ``!`` inverts the answer
    (``glob_match("!tests/", p) == not glob_match("tests/", p)``); ``\\!`` is a literal ``!``.
    """
    if pattern.startswith("!"):
        return not glob_match(pattern[1:], path)
    spec = _glob_spec(pattern)
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        if spec.check("/".join(parts[:i]), parts[i - 1], True):
            return True
    return bool(spec.check("/".join(parts), parts[-1], False))


def _read_pattern_lines(path: str | os.PathLike[str]) -> list[str] | None:
    """Lines of an ignore file, or None when it is absent or not a regular file.

    Symlinked ignore files are not followed (git refuses them too, and they could point outside the
    root); O_NONBLOCK keeps a FIFO planted under an ignore file's name from hanging the walk.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        parts: list[bytes] = []
        total = 0
        while total < _MAX_IGNORE_FILE_BYTES:
            block = os.read(fd, min(1 << 16, _MAX_IGNORE_FILE_BYTES - total))
            if not block:
                break
            parts.append(block)
            total += len(block)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = b"".join(parts).removeprefix(b"\xef\xbb\xbf")
    # fsdecode matches how os.scandir decodes names, so non-UTF-8 names and patterns agree.
    return [line.removesuffix("\r") for line in os.fsdecode(data).split("\n")]


def _read_spec(path: str | os.PathLike[str]) -> _Spec | None:
    lines = _read_pattern_lines(path)
    if not lines:
        return None
    spec = _Spec(lines)
    return spec if spec else None


def normalize_rel_path(rel_path: str) -> str:
    """``rel_path`` as a clean relative POSIX path (``""`` for the root).

    Raises ValueError for an absolute path or one that climbs out with ``..``.
    """
    if rel_path.startswith("/"):
        raise ValueError(f"not a path relative to the root: {rel_path!r}")
    parts = [p for p in rel_path.split("/") if p and p != "."]
    if ".." in parts:
        raise ValueError(f"path leaves the root: {rel_path!r}")
    return "/".join(parts)


def is_ignore_file(rel_path: str) -> bool:
    """Whether a change to ``rel_path`` changes the ignore rules (the watcher then calls ``invalidate``)."""
    rel = rel_path.strip("/")
    return rel.rpartition("/")[2] in IGNORE_FILE_NAMES or rel == GIT_EXCLUDE_PATH


# One level of a stack: (offset into the root-relative path, prefix to prepend, spec). A spec from a
# folder inside the root sees the path with that folder's part cut off (offset); one from a folder
# above the root sees the root's own position in front of it (prefix).
_Level = tuple[int, str, _Spec]
# (needleignore levels, gitignore levels), each deepest first
_Chain = tuple[tuple[_Level, ...], tuple[_Level, ...]]


class IgnoreRules:
    """Decides, path by path, whether a file or folder under ``root`` is left out of the index.

    Specs are read lazily, once per folder, and cached; call :meth:`invalidate` when an ignore file
    changes. ``extra_patterns`` are the user's excludes from settings (gitignore syntax, relative to
    the root, reason ``excluded``). ``secret_patterns`` replaces the secret list; to extend it, pass
    ``secrets.secret_patterns(extra)`` (a ``!`` line there re-allows a default).
    ``parent_ignores=False`` ignores the ``.gitignore`` files and the exclude file of a repository
    that encloses the root.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        extra_patterns: Iterable[str] = (),
        secret_patterns: Sequence[str] = DEFAULT_SECRET_PATTERNS,
        *,
        parent_ignores: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self._root_str = os.fspath(self.root).rstrip("/")
        self._secret = _Spec(secret_patterns)
        self._excluded = _Spec(extra_patterns)
        self._noise = _Spec(NOISE_PATTERNS)
        self._parent_ignores = parent_ignores
        self.reload()

    # -- cache management ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Forget every cached spec; the next query re-reads ignore files from disk."""
        self._own: dict[str, tuple[_Spec | None, _Spec | None]] = {}
        self._dir_reasons: dict[str, str | None] = {}
        self._outer: tuple[_Level, ...] = self._load_outer()
        self._chains: dict[str, _Chain] = {"": self._extend(((), self._outer), "")}

    def invalidate(self, rel_path: str) -> None:
        """Re-read the ignore files of one folder (``rel_path`` is the folder or an ignore file in it)."""
        rel = normalize_rel_path(rel_path)
        if rel == GIT_EXCLUDE_PATH:
            self.reload()
            return
        parent, _, name = rel.rpartition("/")
        folder = parent if name in IGNORE_FILE_NAMES else rel
        self._own.pop(folder, None)
        # Every folder below inherits the changed spec, and cheap rebuilds beat tracking dependents.
        self._dir_reasons = {}
        self._chains = {"": self._extend(((), self._outer), "")}

    # -- queries ------------------------------------------------------------------------------------

    def is_ignored(self, rel_path: str, is_dir: bool) -> str | None:
        """The reason ``rel_path`` is left out (an ignored ancestor counts), or None if it is indexed."""
        rel = normalize_rel_path(rel_path)
        if not rel:
            return None
        parent, _, name = rel.rpartition("/")
        if parent:
            reason = self._dir_reason(parent)
            if reason is not None:
                return reason
        return self.check_entry(parent, name, is_dir)

    def check_entry(self, dir_rel: str, name: str, is_dir: bool) -> str | None:
        """Like :meth:`is_ignored` for ``name`` inside ``dir_rel``, assuming ``dir_rel`` is not ignored.

        The walker prunes ignored folders before descending, so it uses this to skip ancestor checks.
        """
        rel = f"{dir_rel}/{name}" if dir_rel else name
        if self._secret.check(rel, name, is_dir):
            return SECRET
        if self._excluded and self._excluded.check(rel, name, is_dir):
            return EXCLUDED
        if name.startswith("."):
            return HIDDEN
        if self._noise.check(rel, name, is_dir):
            return NOISE
        needle, git = self._chain(dir_rel)
        for offset, prefix, spec in needle:
            decision = spec.check(prefix + rel[offset:], name, is_dir)
            if decision is not None:
                return NEEDLEIGNORE if decision else None
        for offset, prefix, spec in git:
            decision = spec.check(prefix + rel[offset:], name, is_dir)
            if decision is not None:
                if decision:
                    return GITIGNORE
                break
        # Build output is left out even when git tracks it; only a .needleignore `!` line brings it back.
        if is_dir and is_output_dir(self._root_str, dir_rel, name):
            return GENERATED
        return None

    def needleignore_includes(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether a ``.needleignore`` ``!`` line explicitly re-includes ``rel_path`` (or a folder above it)."""
        rel = normalize_rel_path(rel_path)
        parts = rel.split("/")
        for depth in range(len(parts), 0, -1):
            dir_rel, name = "/".join(parts[: depth - 1]), parts[depth - 1]
            sub = "/".join(parts[:depth])
            for offset, prefix, spec in self._chain(dir_rel)[0]:
                decision = spec.check(prefix + sub[offset:], name, is_dir or depth < len(parts))
                if decision is not None:
                    if not decision:
                        return True
                    break
        return False

    # -- internals ----------------------------------------------------------------------------------

    def _dir_reason(self, dir_rel: str) -> str | None:
        # Iterative on purpose: a hostile tree can be thousands of folders deep.
        cached = self._dir_reasons.get(dir_rel, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        current = ""
        for part in dir_rel.split("/"):
            nxt = f"{current}/{part}" if current else part
            if nxt in self._dir_reasons:
                reason = self._dir_reasons[nxt]
            else:
                reason = self.check_entry(current, part, True)
                self._dir_reasons[nxt] = reason
            if reason is not None:
                return reason
            current = nxt
        return None

    def _chain(self, dir_rel: str) -> _Chain:
        chain = self._chains.get(dir_rel)
        if chain is not None:
            return chain
        missing: list[str] = []
        folder = dir_rel
        while folder not in self._chains:
            missing.append(folder)
            folder = folder.rpartition("/")[0]
        chain = self._chains[folder]
        for folder in reversed(missing):
            chain = self._extend(chain, folder)
            self._chains[folder] = chain
        return chain

    def _extend(self, parent: _Chain, folder: str) -> _Chain:
        git_spec, needle_spec = self._own_specs(folder)
        offset = len(folder) + 1 if folder else 0
        needle, git = parent
        if needle_spec is not None:
            needle = ((offset, "", needle_spec), *needle)
        if git_spec is not None:
            git = ((offset, "", git_spec), *git)
        return needle, git

    def _own_specs(self, folder: str) -> tuple[_Spec | None, _Spec | None]:
        specs = self._own.get(folder)
        if specs is None:
            base = f"{self._root_str}/{folder}/" if folder else f"{self._root_str}/"
            specs = (_read_spec(base + GITIGNORE_NAME), _read_spec(base + NEEDLEIGNORE_NAME))
            self._own[folder] = specs
        return specs

    def _load_outer(self) -> tuple[_Level, ...]:
        """Levels that come from outside the root: parent ``.gitignore`` files and info/exclude."""
        top = _git_top(self.root)
        if top is None or (top != self.root and not self._parent_ignores):
            return ()
        levels: list[_Level] = []
        if top != self.root:
            folder = self.root.parent
            while True:
                spec = _read_spec(folder / GITIGNORE_NAME)
                if spec is not None:
                    levels.append((0, self.root.relative_to(folder).as_posix() + "/", spec))
                if folder == top:
                    break
                folder = folder.parent
        exclude = _exclude_file(top)
        if exclude is not None:
            spec = _read_spec(exclude)
            if spec is not None:
                prefix = "" if top == self.root else self.root.relative_to(top).as_posix() + "/"
                levels.append((0, prefix, spec))
        return tuple(levels)


def _git_top(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``.git`` folder or file."""
    folder = start
    while True:
        if os.path.lexists(folder / ".git"):
            return folder
        if folder.parent == folder:
            return None
        folder = folder.parent


def _exclude_file(top: Path) -> Path | None:
    dot_git = top / ".git"
    if dot_git.is_dir():
        return dot_git / "info" / "exclude"
    # A worktree or submodule: ".git" is a file naming the real git dir; the exclude file lives in
    # the common dir that a worktree's git dir points to.
    lines = _read_pattern_lines(dot_git)
    if not lines or not lines[0].startswith("gitdir:"):
        return None
    git_dir = (top / lines[0].removeprefix("gitdir:").strip()).resolve()
    common = _read_pattern_lines(git_dir / "commondir")
    if common and common[0].strip():
        git_dir = (git_dir / common[0].strip()).resolve()
    return git_dir / "info" / "exclude"
