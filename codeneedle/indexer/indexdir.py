"""The index folder: where it may be, what may already be in it, and its self-ignoring ``.gitignore``.

An index folder set by a setting or ``--index-dir`` can point anywhere. Writing ``index.db`` and a ``*``
ignore file into the repository root hid the whole repository from git (and indexed 0 files); into ``~/.ssh``
it mixed our files with keys; onto another program's ``index.db`` it adopted and later renamed that file.
So the folder must not be the root or one of its parents, and a folder that holds anything but Needle's own
files is refused until it holds an index of ours.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

from codeneedle.errors import NeedleError
from codeneedle.indexer.root import DB_NAME

GITIGNORE_TEXT = "# Needle's index: never commit it\n*\n"

# Names Needle writes in an index folder (prefixes: WAL/SHM files, .corrupt-* copies, temp files of atomic saves).
_OURS_PREFIXES = ("index.db", "vectors.usearch", ".vectors.usearch", "writer.", ".gitignore", "models", ".needle-",
                  "settings.json", ".settings.json")
# Every name Needle opens in an index folder, for writing or reading (its log, adapter, trained models too).
_OWN_NAMES = (*_OURS_PREFIXES, "feedback.jsonl", "query_adapter.npz", "training")


def too_broad(root: Path) -> str | None:
    """What ``root`` is when it is a folder no one means to index unasked ("your home folder"), else None."""
    if root == Path(root.anchor):
        return "the file system's root"
    try:
        home = Path.home().resolve()
    except (RuntimeError, OSError):  # no home folder known
        return None
    return "your home folder" if root == home else None


def indexed_only_when_asked(root: Path, index_dir: Path) -> str | None:
    """What ``root`` is (``too_broad``) when no index of it exists at ``index_dir`` yet, else None: such a folder is
    indexed only when asked by name (``needle index``), and once its index exists every door uses it."""
    return None if (index_dir / DB_NAME).exists() else too_broad(root)


def check_index_dir(root: Path, index_dir: Path) -> None:
    """Refuse an index folder that is the root, a parent of it, or a folder holding someone else's files."""
    if index_dir == root:
        raise NeedleError(f"index folder {index_dir} is the repository root itself; use a folder inside or "
                          "outside it (the default is <root>/.needle)")
    if root.is_relative_to(index_dir):
        raise NeedleError(f"index folder {index_dir} is a parent of the repository {root}; choose another folder")
    _refuse_planted_links(index_dir)
    _refuse_tracked(root, index_dir)
    if (index_dir / "index.db").exists():
        _check_database_is_ours(index_dir / "index.db")
        return  # the store checks the rest (schema version, damage)
    if not index_dir.is_dir():
        return
    try:
        # Folders do not count: an indexDir shared by several workspace folders holds one subfolder per root.
        # A .git does: the folder is a repository's work tree, never an index folder.
        names = [e.name for e in os.scandir(index_dir) if not e.is_dir(follow_symlinks=False) or e.name == ".git"]
    except OSError as exc:
        raise NeedleError(f"cannot read index folder {index_dir}: {exc.strerror}") from None
    foreign = sorted(n for n in names if not n.startswith(_OURS_PREFIXES)
                     or (n == ".gitignore" and not _our_gitignore(index_dir / n)))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise NeedleError(f"index folder {index_dir} already holds files that are not Needle's ({shown}); "
                          "choose an empty or new folder")


def make_index_dir(index_dir: Path) -> None:
    """Create ``index_dir`` (and its parents) if missing; the folder itself readable by its owner only.

    The index holds a copy of every indexed file's text and the queries typed: with the umask's 0755 a file the
    user had made private (``chmod 600``) was readable by everyone in ``index.db``. A folder that exists (one the
    user made for ``--index-dir``, an index built before) keeps its mode.
    """
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    index_dir.mkdir(mode=0o700, exist_ok=True)


# What an index folder holds that copies code (the store, its vectors, the models trained on it) or what was typed.
CARRIES_CODE_OR_QUERIES = ("index.db*", "vectors.usearch*", "feedback.jsonl*", "query_adapter*", "models/**")


def _refuse_tracked(root: Path, index_dir: Path) -> None:
    """Refuse an index folder inside a git work tree whose files git tracks.

    Our ``.gitignore`` keeps an index out of git, but not one a repository already tracks (it came with the
    clone, or was once added with ``-f``): the next ``git commit -a`` carried the updated ``index.db`` into the
    history, with a copy of every indexed file, untracked and private ones included, ready to be pushed.
    """
    if not index_dir.is_relative_to(root) or not (root / ".git").exists() or not index_dir.is_dir():
        return
    git = shutil.which("git")
    if git is None:
        return
    rel = index_dir.relative_to(root).as_posix()
    # Only the files that hold copies of code or what the user typed: a tracked settings.json (a team's shared
    # excludes) or .gitignore carries nothing of the kind.
    carried = [f":(glob){rel}/{name}" for name in CARRIES_CODE_OR_QUERIES]
    try:
        tracked = subprocess.run([git, "-C", str(root), "ls-files", "-z", "--", *carried],
                                 capture_output=True, timeout=10, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return  # git could not tell: the ignore file still keeps a new index out
    if tracked:
        raise NeedleError(f"the index folder {index_dir} is tracked by git: a commit would carry copies of your "
                          f"code (untracked and private files too) into the history; untrack it first: "
                          f"git -C {root} rm -r --cached {rel}")


def _refuse_planted_links(index_dir: Path) -> None:
    """Refuse an index folder where a name Needle writes is a symbolic link.

    A ``.needle/`` folder can come with a repository (git stores links): its ``writer.pid`` linked to a file
    outside truncated that file to a pid on the next search, ``feedback.jsonl`` had the queries appended to another
    file, and a dangling ``index.db`` link had the whole index (copies of the code) written where it pointed.
    Needle's own files are never links, so one that is was put there: nothing is opened through it.
    """
    try:
        links = sorted(e.name for e in os.scandir(index_dir)
                       if e.name.startswith(_OWN_NAMES) and e.is_symlink())
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise NeedleError(f"cannot read index folder {index_dir}: {exc.strerror}") from None
    if links:
        shown = ", ".join(links[:3]) + (", ..." if len(links) > 3 else "")
        raise NeedleError(f"index folder {index_dir} holds symbolic links where Needle keeps its own files ({shown}); "
                          "nothing was opened through them: remove them (or the whole folder, which the next run "
                          "builds again)")


def _our_gitignore(path: Path) -> bool:
    """Whether ``path`` is the ignore file Needle writes (or the empty one a full disk left): any other is a
    project's own (a repository root holding only folders and a .gitignore), which writing ours would replace."""
    try:
        st = os.stat(path)
        # A regular file of at most our size is read (a FIFO would block the read); anything else is not ours.
        return (stat.S_ISREG(st.st_mode) and st.st_size <= len(GITIGNORE_TEXT)
                and path.read_text(encoding="utf-8", errors="replace") in ("", GITIGNORE_TEXT))
    except OSError:
        return False


def write_gitignore(index_dir: Path) -> None:
    """Make sure ``index_dir/.gitignore`` ignores everything: written atomically, then read back.

    A plain write on a full disk left a 0-byte file forever, after which ``git add -A`` staged the index (every
    code chunk). A missing, empty or altered file is rewritten; any failure is a one-line error.
    """
    path = index_dir / ".gitignore"
    try:
        if path.read_text(encoding="utf-8", errors="replace") == GITIGNORE_TEXT:
            return
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NeedleError(f"cannot read {path}: {exc.strerror}") from None
    tmp = index_dir / f".needle-gitignore.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            data = GITIGNORE_TEXT.encode()
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if path.read_text(encoding="utf-8") != GITIGNORE_TEXT:
            raise OSError(errno.EIO, "the file reads back different from what was written")
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        hint = "; free some space and run again" if exc.errno == errno.ENOSPC else ""
        raise NeedleError(f"cannot write {path}: {exc.strerror or exc}{hint} (nothing was indexed)") from None


def _check_database_is_ours(db: Path) -> None:
    """Refuse, before anything is written next to it, an ``index.db`` that another program made."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return  # unreadable or damaged: the store decides (a writer moves a damaged index of ours aside)
    if tables and "meta" not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise NeedleError(f"{db} is a database Needle did not make (tables: {shown}); it is left untouched: "
                          "choose another index folder")
