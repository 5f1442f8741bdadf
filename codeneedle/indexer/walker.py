"""Which files get indexed: list the tree under a root, stat each candidate, never read contents.

``walk()`` serves a cold index, a warm re-index (where it is most of the work, so it only stats) and,
through ``stat_one()``, the watcher's single-path updates. ``read_source()`` is the one place that reads
a file's bytes, and it re-checks everything the listing saw, because files change in between.

Symlinks follow git's spirit: a file is indexed once, under its real path. A symlinked file or
folder whose target lies inside the root is a second name for something the walk reaches anyway, so
it is counted as ``symlink_duplicate``; only a target that the direct walk did not reach is indexed
under the link's name. A link whose target resolves outside the root is never opened or listed.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NeedleError
from .formats import size_cap
from .ignore import SECRET, IgnoreRules, normalize_rel_path
from .secrets import holds_private_key
from .source_encoding import utf8_view, wide_text
from .types import DEFAULT_MAX_FILE_BYTES

MAX_SKIPPED_PATHS = 1000
SNIFF_BYTES = 8192

# Skip reasons owned by the walker (the ignore rules add gitignore, needleignore, hidden, secret, noise).
TOO_LARGE = "too_large"
BINARY = "binary"
UNREADABLE = "unreadable"
MISSING = "missing"
SPECIAL = "special"
BAD_NAME = "bad_name"
SYMLINK_OUTSIDE = "symlink_outside"
SYMLINK_LOOP = "symlink_loop"
SYMLINK_BROKEN = "symlink_broken"
SYMLINK_DUPLICATE = "symlink_duplicate"
DIRECTORY = "directory"  # stat_one only: the path is a folder, walk it instead
OUTSIDE = "outside"  # stat_one only: the path is absolute or climbs out with ".."
MINIFIED = "minified"  # read by the pipeline: minified or packed code whatever its name (see looks_minified)

# Folders that are nobody's source (the index's own, version control's): left out without a word, so a
# status's "skipped: 1 hidden" is never the .git folder the user did not ask about.
UNCOUNTED_FOLDERS = frozenset({".needle", ".git", ".hg", ".svn", ".jj"})


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to index: ``path`` is relative to the root with POSIX separators; ``abs_path`` is real."""

    path: str
    abs_path: Path
    size: int
    mtime_ns: int
    # The real root the walk started from: reads go through it (see read_source), "" when unknown.
    root: str = ""
    # The inode's change time: a file renamed over another or dated back (`touch -d`, `cp -p`, `rsync -a`) keeps
    # an mtime, never a ctime. 0 when unknown.
    ctime_ns: int = 0


@dataclass(slots=True)
class WalkResult:
    """Files to index, sorted by path, and what was left out: a count per reason, and the first
    :data:`MAX_SKIPPED_PATHS` skipped paths (an ignored folder counts once, its contents not at all).

    Skipped paths are always valid UTF-8: bytes of an undecodable name appear as ``\\xNN``.
    """

    files: list[SourceFile] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_paths: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        """Count ``path`` as skipped for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_paths) < MAX_SKIPPED_PATHS:
            self.skipped_paths.append((printable_path(path), reason))

    @property
    def skipped_total(self) -> int:
        """How many files and folders were skipped, all reasons together."""
        return sum(self.skipped.values())


def walk(
    root: str | os.PathLike[str],
    rules: IgnoreRules | None = None,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> WalkResult:
    """List every indexable file under ``root`` (stat only, no reads).

    Raises NeedleError (one clear line) when ``root`` is missing, not a folder or not readable; every
    problem below the root is counted in ``WalkResult.skipped`` and the walk goes on.
    """
    real_root = _resolve_root(root)
    if rules is None:
        rules = IgnoreRules(real_root)
    elif rules.root != real_root:
        raise ValueError(f"ignore rules are for {rules.root}, not {real_root}")
    return _Walker(real_root, rules, max_file_bytes).run()


def stat_one(
    root: str | os.PathLike[str],
    rel_path: str,
    rules: IgnoreRules | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> SourceFile | str:
    """What :func:`walk` would say about one path: a SourceFile, or the reason it is not indexed.

    ``"missing"`` when the path does not exist (the watcher then drops it from the index) and
    ``"directory"`` for a folder (the watcher walks it instead).
    """
    real_root = Path(root).resolve()
    if rules is None:
        rules = IgnoreRules(real_root)
    try:
        rel = normalize_rel_path(rel_path)
    except ValueError:
        return OUTSIDE
    if not rel:
        return DIRECTORY
    if not all(_valid_name(part) for part in rel.split("/")):
        return BAD_NAME
    root_str = os.fspath(real_root)
    abs_path = f"{root_str.rstrip('/')}/{rel}"
    parent_rel, _, name = rel.rpartition("/")
    if parent_rel:
        # Resolve the folders first so that a symlinked folder on the way is judged, not silently
        # followed (and nothing outside the root is even stat'ed).
        parent_real = os.path.realpath(os.path.dirname(abs_path))
        if not _inside(parent_real, root_str):
            return SYMLINK_OUTSIDE
        if parent_real != os.path.dirname(abs_path):
            target = stat_one(real_root, _rel_to(parent_real, root_str) + "/" + name, rules, max_file_bytes)
            return SYMLINK_DUPLICATE if isinstance(target, SourceFile) else target
    try:
        st = os.lstat(abs_path)
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except OSError:
        return UNREADABLE
    if stat.S_ISLNK(st.st_mode):
        reason = rules.is_ignored(rel, False)
        if reason is not None:
            return reason
        real = os.path.realpath(abs_path)
        if not _inside(real, root_str):
            return SYMLINK_OUTSIDE
        try:
            target_st = os.stat(real)
        except OSError as exc:
            return _link_error_reason(exc)
        if stat.S_ISDIR(target_st.st_mode):
            return DIRECTORY
        real_rel = _rel_to(real, root_str)
        if real_rel == rel:  # raced: the link was replaced by its target
            return stat_one(real_root, rel, rules, max_file_bytes)
        target = stat_one(real_root, real_rel, rules, max_file_bytes)
        return SYMLINK_DUPLICATE if isinstance(target, SourceFile) else target
    is_dir = stat.S_ISDIR(st.st_mode)
    reason = rules.is_ignored(rel, is_dir)
    if reason is not None:
        return reason
    if is_dir:
        return DIRECTORY
    if not stat.S_ISREG(st.st_mode):
        return SPECIAL
    return _source_file(rel, abs_path, st, max_file_bytes, root=root_str)


def sniff_binary(data: bytes) -> bool:
    """Whether ``data`` looks binary: a NUL byte in its first 8 KiB (git's own test).

    UTF-16 and UTF-32 text that opens with its byte-order mark and decodes is text (git calls it binary): Windows
    PowerShell 5 writes its scripts so, and older SQL Server Management Studio its queries.
    """
    return data.find(b"\0", 0, SNIFF_BYTES) != -1 and wide_text(data) is None


# Minified code: the 1 MiB single-line bundle that became 27,454 chunks (15 minutes of encoder time), all on
# line 1. Hand-written code and prose keep their lines short or their spaces: 0.5 % of this repository's
# lines pass 200 bytes, and English prose is ~15 % whitespace, minified JavaScript/CSS and base64 ~1-5 %.
# Entropy keeps degenerate long lines (10,000 nested brackets, "1,1,1,...": ~1 bit/byte) indexed: they make
# one capped window, not thousands of chunks; minified code and packed JSON measure 4.3-5 bits/byte.
MINIFIED_MIN_BYTES = 4096
MINIFIED_LONG_LINE = 1000
MINIFIED_MAX_SPACE_RATIO = 0.08
MINIFIED_MIN_ENTROPY = 3.0  # bits per byte


def looks_minified(data: bytes) -> bool:
    """Whether ``data`` is minified or packed code: most of it in lines over 1,000 bytes, almost no spaces,
    and the character variety of code (byte entropy >= 3 bits)."""
    if len(data) < MINIFIED_MIN_BYTES:
        return False
    long_lines = [line for line in data.split(b"\n") if len(line) > MINIFIED_LONG_LINE]
    long_bytes = sum(map(len, long_lines))
    if long_bytes * 2 < len(data):
        return False
    sample = b"".join(long_lines)[: 1 << 16]
    spaces = sample.count(b" ") + sample.count(b"\t")
    return spaces < MINIFIED_MAX_SPACE_RATIO * len(sample) and _entropy(sample) >= MINIFIED_MIN_ENTROPY


def _entropy(data: bytes) -> float:
    counts = [data.count(bytes((b,))) for b in set(data)]
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in counts)


def read_source(sf: SourceFile, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes | str:
    """The file's bytes, or why they cannot be indexed: ``"missing"`` (gone or replaced by a
    symlink since the listing), ``"binary"``, ``"too_large"`` (it grew), ``"unreadable"`` or
    ``"special"`` (replaced by a FIFO or device), ``"secret"`` (a private-key block in its first KiB)."""
    # No symlink is followed anywhere on the way: a file or any parent folder swapped for a link after the
    # listing must not lead the read outside the root (O_NOFOLLOW alone guards only the last component; 188
    # of 700 files were read from outside when a parent folder was swapped mid-index). O_NONBLOCK: a file
    # swapped for a FIFO must not hang the indexer.
    try:
        fd = open_beneath(sf.root, os.fspath(sf.abs_path))
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except OSError as exc:
        return MISSING if exc.errno in (errno.ELOOP, errno.EXDEV) else UNREADABLE
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return SPECIAL
        cap = size_cap(sf.path, max_file_bytes)
        if st.st_size > cap:
            return TOO_LARGE
        parts: list[bytes] = []
        total = 0
        while True:
            block = os.read(fd, max(st.st_size + 1 - total, 1 << 16))
            if not block:
                break
            total += len(block)
            if total > cap:
                return TOO_LARGE
            parts.append(block)
    except OSError:
        return UNREADABLE
    finally:
        os.close(fd)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    if sniff_binary(data):
        return BINARY
    if holds_private_key(utf8_view(data)):
        return SECRET
    return data


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_beneath(root: str, abs_path: str) -> int:
    """A read-only fd of ``abs_path``, opened component by component from ``root``'s folder handle with
    O_NOFOLLOW, so no symlink anywhere in the path is followed (what openat2's RESOLVE_BENEATH |
    RESOLVE_NO_SYMLINKS does, which Python does not expose). Raises OSError (ELOOP on a link, EXDEV when
    ``abs_path`` is not under ``root``). Without a root, only the last component is guarded."""
    if not root:
        return os.open(abs_path, _READ_FLAGS)
    prefix = root.rstrip("/") + "/"
    if not abs_path.startswith(prefix):
        raise OSError(errno.EXDEV, "outside the root", abs_path)
    parts = abs_path[len(prefix):].split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EXDEV, "not a plain path below the root", abs_path)
    sys.audit("codeneedle.open_beneath", abs_path)  # the full path, for audit hooks (the opens are fd-relative)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], _READ_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


# -- internals --------------------------------------------------------------------------------------


class _Walker:
    """One walk: an explicit stack (no recursion limit on deep trees) and deferred symlinks."""

    def __init__(self, root: Path, rules: IgnoreRules, max_file_bytes: int) -> None:
        self.root_str = os.fspath(root)
        self.rules = rules
        self.max_file_bytes = max_file_bytes
        self.result = WalkResult()
        # Real paths of listed folders; a symlinked folder pointing at one of them adds nothing.
        self.visited: set[str] = set()
        self.link_dirs: list[tuple[str, str]] = []
        self.link_files: list[tuple[str, str, os.stat_result]] = []

    def run(self) -> WalkResult:
        self._walk_tree("", self.root_str)
        # Symlinked folders wait until the real tree is done: by then "already visited" is known, so
        # the outcome does not depend on which name the listing happened to meet first.
        while self.link_dirs:
            self.link_dirs.sort(reverse=True)
            rel, real = self.link_dirs.pop()
            if real in self.visited:
                self.result.skip(rel, SYMLINK_DUPLICATE)
                continue
            self._walk_tree(rel, real)
        self._add_link_files()
        self.result.files.sort(key=lambda sf: sf.path)
        return self.result

    def _walk_tree(self, top_rel: str, top_abs: str) -> None:
        # Each folder carries its Path: "folder / name" costs half of Path(full_path) per file.
        stack = [(top_rel, top_abs, Path(top_abs))]
        while stack:
            dir_rel, dir_abs, dir_path = stack.pop()
            try:
                with os.scandir(dir_abs) as it:
                    entries = list(it)
            except OSError as exc:
                if dir_abs == self.root_str:
                    raise NeedleError(f"{self.root_str}: cannot list folder ({exc.strerror})") from exc
                missing = isinstance(exc, FileNotFoundError | NotADirectoryError)
                self.result.skip(dir_rel, MISSING if missing else UNREADABLE)
                continue
            # Only a listed folder counts as visited: a link may still reach one the walk could not list.
            self.visited.add(dir_abs)
            for entry in entries:
                self._entry(dir_rel, dir_abs, dir_path, entry, stack)

    def _entry(
        self,
        dir_rel: str,
        dir_abs: str,
        dir_path: Path,
        entry: os.DirEntry[str],
        stack: list[tuple[str, str, Path]],
    ) -> None:
        name = entry.name
        rel = f"{dir_rel}/{name}" if dir_rel else name
        if not _valid_name(name):
            self.result.skip(rel, BAD_NAME)
            return
        try:
            if entry.is_symlink():
                self._symlink(dir_rel, dir_abs, name, rel, entry.path)
                return
            is_dir = entry.is_dir(follow_symlinks=False)
            reason = self.rules.check_entry(dir_rel, name, is_dir)
            if reason is not None:
                if not (is_dir and name in UNCOUNTED_FOLDERS):
                    self.result.skip(rel, reason)
                return
            if is_dir:
                stack.append((rel, entry.path, dir_path / name))
                return
            if not entry.is_file(follow_symlinks=False):
                self.result.skip(rel, SPECIAL)
                return
            st = entry.stat(follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            self.result.skip(rel, MISSING)
            return
        except OSError:
            self.result.skip(rel, UNREADABLE)
            return
        self._add_file(rel, entry.path, st, dir_path / name)

    def _symlink(self, dir_rel: str, dir_abs: str, name: str, rel: str, link_abs: str) -> None:
        # realpath only reads links, so the "outside" verdict comes before anything touches the target.
        real = os.path.realpath(link_abs)
        if not _inside(real, self.root_str):
            self.result.skip(rel, SYMLINK_OUTSIDE)
            return
        try:
            st = os.stat(real)
        except OSError as exc:
            self.result.skip(rel, _link_error_reason(exc))
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        reason = self.rules.check_entry(dir_rel, name, is_dir)
        if reason is None:
            real_rel = _rel_to(real, self.root_str)
            # A link must not smuggle in what the rules keep out (a "config.py" pointing at ".env").
            reason = self.rules.is_ignored(real_rel, is_dir) if real_rel else None
        if reason is not None:
            self.result.skip(rel, reason)
        elif is_dir:
            if real == dir_abs or dir_abs.startswith(real.rstrip("/") + "/"):
                self.result.skip(rel, SYMLINK_LOOP)
            else:
                self.link_dirs.append((rel, real))
        elif stat.S_ISREG(st.st_mode):
            self.link_files.append((rel, real, st))
        else:
            self.result.skip(rel, SPECIAL)

    def _add_link_files(self) -> None:
        if not self.link_files:
            return
        indexed = {os.fspath(sf.abs_path) for sf in self.result.files}
        for rel, real, st in sorted(self.link_files, key=lambda item: item[0]):
            if real in indexed:
                self.result.skip(rel, SYMLINK_DUPLICATE)
                continue
            indexed.add(real)
            found = _source_file(rel, real, st, self.max_file_bytes, root=self.root_str)
            if isinstance(found, SourceFile):
                self.result.files.append(found)
            else:
                self.result.skip(rel, found)

    def _add_file(self, rel: str, abs_path: str, st: os.stat_result, path: Path) -> None:
        found = _source_file(rel, abs_path, st, self.max_file_bytes, path, root=self.root_str)
        if isinstance(found, SourceFile):
            self.result.files.append(found)
        else:
            self.result.skip(rel, found)


def _source_file(
    rel: str, abs_path: str, st: os.stat_result, max_file_bytes: int, path: Path | None = None, root: str = ""
) -> SourceFile | str:
    if st.st_size > size_cap(rel, max_file_bytes):
        return TOO_LARGE
    # os.access costs a syscall, so ask only when the mode bits do not already grant read to all.
    if st.st_mode & 0o444 != 0o444 and not os.access(abs_path, os.R_OK):
        return UNREADABLE
    return SourceFile(rel, Path(abs_path) if path is None else path, st.st_size, st.st_mtime_ns, root, st.st_ctime_ns)


def _resolve_root(root: str | os.PathLike[str]) -> Path:
    try:
        real = Path(root).resolve(strict=True)
    except FileNotFoundError:
        raise NeedleError(f"{os.fspath(root)}: no such folder") from None
    except OSError as exc:
        raise NeedleError(f"{os.fspath(root)}: {exc.strerror or exc}") from None
    if not real.is_dir():
        raise NeedleError(f"{os.fspath(root)}: not a folder")
    return real


def _valid_name(name: str) -> bool:
    # os.scandir smuggles undecodable bytes in as lone surrogates, which SQLite and JSON reject.
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(path: str) -> bool:
    """Whether ``path`` can be stored and looked up as it is (a name that is not UTF-8 cannot: see _valid_name)."""
    return _valid_name(path)


def printable_path(path: str) -> str:
    """``path`` with the bytes of a name that is not UTF-8 written as ``\\xff`` escapes: storable."""
    if path.isascii():
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _inside(real: str, root_str: str) -> bool:
    return real == root_str or real.startswith(root_str.rstrip("/") + "/")


def _rel_to(real: str, root_str: str) -> str:
    if real == root_str:
        return ""
    return real[len(root_str.rstrip("/")) + 1 :]


def _link_error_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return SYMLINK_LOOP
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return SYMLINK_BROKEN
    return UNREADABLE
