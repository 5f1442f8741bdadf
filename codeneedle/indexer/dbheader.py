"""Read a live SQLite file's header without breaking the locks SQLite holds on it.

SQLite's locks are POSIX advisory (fcntl) locks, which belong to the process and the file, not to a descriptor:
closing *any* descriptor of the database file drops every lock the process holds on it. In WAL mode each
connection keeps a SHARED lock on the database file for as long as it is open; that lock is how the last
connection to close knows it is the last one, checkpoints and deletes ``-wal`` and ``-shm``. A plain
``open(db).read(100)`` + close in the language server dropped its locks, so the next one-shot ``needle search``
believed it was alone: on exit it deleted the WAL and the shared-memory file under the live server, whose next
write went to a deleted WAL ("disk I/O error" on every request, the writes lost). See sqlite.org/howtocorrupt.html
section 2.2.

So a process opens each database file (inode) here once and keeps that descriptor for its lifetime; a
descriptor is closed only once its file has been unlinked (replaced or deleted: no connection of ours may
use it any more).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

_fds: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> a read-only descriptor kept open
_spare: list[int] = []  # duplicates from a race, kept open for the same reason
_lock = threading.Lock()


def read_header(db: Path, size: int = 100) -> bytes | None:
    """The first ``size`` bytes of the file ``db`` (fewer when it is shorter); None when it cannot be read."""
    try:
        st = os.stat(db)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino)
    with _lock:
        fd = _fds.get(key)
        if fd is None:
            try:
                fd = os.open(db, os.O_RDONLY | os.O_CLOEXEC)
                opened = os.fstat(fd)
            except OSError:
                return None
            key = (opened.st_dev, opened.st_ino)  # the file may have been replaced since the stat
            if key in _fds:
                _spare.append(fd)  # a race with another thread: closing this one would drop our locks too
                fd = _fds[key]
            else:
                _fds[key] = fd
                _forget_unlinked(keep=key)
        try:
            return os.pread(fd, size, 0)
        except OSError:
            return None


def _forget_unlinked(keep: tuple[int, int]) -> None:
    """Close the descriptors of files that no longer have a name: an index deleted or replaced under us, whose
    connections were closed when it was found lost (its header is read only while it is the file in use)."""
    for key, fd in list(_fds.items()):
        if key == keep:
            continue
        try:
            gone = os.fstat(fd).st_nlink == 0
        except OSError:
            gone = True
        if gone:
            del _fds[key]
            try:
                os.close(fd)
            except OSError:
                pass


def checkpoint_unfinished(db: Path) -> bool:
    """Whether the write-ahead log of ``db`` holds frames a checkpoint began copying into the file but did not finish.

    A checkpoint writes page 1 (the header, with the new page count) first; when the disk fills before the pages
    that grow the file, the file stays shorter than its header says, and rightly so: the log still holds those
    pages and readers take them from there. Read from the WAL-index (``-shm``, native byte order): WalCkptInfo's
    nBackfillAttempted (offset 128) above nBackfill (offset 96). A process that finds the log left behind sets
    them so on recovery (nBackfill 0, attempted the log's last frame), so this holds across runs too.
    """
    shm = read_header(db.with_name(db.name + "-shm"), 136)
    if shm is None or len(shm) < 136:
        return False
    backfilled = int.from_bytes(shm[96:100], sys.byteorder)
    attempted = int.from_bytes(shm[128:132], sys.byteorder)
    return attempted > backfilled
