"""Giving back the disk space an index's updates freed.

SQLite keeps the pages that deleted rows leave in its file (the freelist) and reuses them, but never returns them
to the disk: deleting half of a 332-file repository left 4.6 MB of a 17.6 MB index.db free for good, and a model
dropped after an upgrade 5.8 MB of 23.4 MB (``needle index`` on a copy of pygments' sources). Ordinary edits free
little (40 runs of 3 edited files each: at most 4 % free), so the check after each update stays off the common
path: a VACUUM runs only once a fifth of the file and 4 MiB are free, or when asked (``needle index --compact``).

VACUUM is one transaction (a process killed in it leaves the index as it was) and keeps every chunk id (an INTEGER
PRIMARY KEY, which the vector file and FTS5 rows are keyed by), so the vector file is left as it is. Readers (a
language server, a search) read their snapshot meanwhile; it needs about the file's live size free twice, in the
index folder (the log) and in SQLite's temporary folder (the copy it builds).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from codeneedle.indexer.store import Space, Store

log = logging.getLogger(__name__)

# Compacted after an update once this share of the file and this many bytes are free. A fifth, not a quarter:
# dropping one of two models' vectors freed 24.7 % (above), which a quarter missed; edits stay far below it.
MIN_FREE_SHARE = 0.2
MIN_FREE_BYTES = 4 << 20
# The longest a compaction waits for SQLite's write lock (another connection writing: skipped, tried after the next
# update) and for readers of an older snapshot before the file is cut (else a later checkpoint cuts it).
BUSY_MS = 1000
# Room kept beyond the live size: the log's header and frame headers, a page cache spilled, other writers.
ROOM_MARGIN = 1 << 20


@dataclass(frozen=True)
class Compaction:
    """One compaction, done or skipped: the database file's size before and after it."""

    before: int
    after: int
    seconds: float = 0.0
    skipped: str | None = None  # why nothing was done, one line; None when it ran
    no_room: bool = False  # skipped for lack of disk space (said to people, unlike a busy lock)

    @property
    def freed(self) -> int:
        return max(0, self.before - self.after)

    def message(self) -> str:
        if self.skipped is not None:
            return self.skipped
        return (f"compacted the index database: {_mb(self.before)} -> {_mb(self.after)} ({_mb(self.freed)} given "
                f"back) in {self.seconds:.2f}s")


def due(space: Space) -> bool:
    """Whether an update left enough of the file free to be worth a VACUUM."""
    return space.free_bytes >= MIN_FREE_BYTES and space.free_pages >= MIN_FREE_SHARE * space.pages


def compact(store: Store) -> Compaction:
    """VACUUM ``store`` now, unless the disk lacks room or another connection holds the write lock (then skipped,
    saying why). The caller is the index's writer; nothing here raises for those."""
    space = store.space()
    short = _lacking_room(store.path, space)
    if short is not None:
        return Compaction(space.file_bytes, space.file_bytes, skipped=short, no_room=True)
    start = time.perf_counter()
    try:
        store.vacuum(BUSY_MS)
    except sqlite3.Error as exc:
        # Busy (another connection writes), a statement still open on ours, or a disk that filled meanwhile: the
        # transaction rolled back and the index is as it was. The next update tries again.
        log.info("%s: compaction skipped: %s", store.path, exc)
        return Compaction(space.file_bytes, space.file_bytes, no_room="full" in str(exc),
                          skipped=f"not compacting the index database now ({exc}); the next update tries again")
    after = store.space().file_bytes
    return Compaction(space.file_bytes, after, time.perf_counter() - start)


def _lacking_room(db: Path, space: Space) -> str | None:
    """Why the disk cannot take a VACUUM of ``db`` now (one line), or None when it can."""
    need = space.live_bytes + ROOM_MARGIN
    temp = sqlite_temp_dir(db.parent)
    places = {db.parent: need}
    try:
        same = os.stat(temp).st_dev == os.stat(db.parent).st_dev
    except OSError:
        same = True
    if same:
        places[db.parent] += need
    else:
        places[temp] = need
    for folder, wanted in places.items():
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        free = st.f_bavail * st.f_frsize
        if free < wanted:
            return (f"not compacting the index database ({_mb(space.free_bytes)} reclaimable): it needs "
                    f"{_mb(wanted)} free in {folder}, which has {_mb(free)}; free some space and run "
                    "`needle index --compact`")
    return None


def sqlite_temp_dir(fallback: Path) -> Path:
    """The folder SQLite (unix VFS) builds a VACUUM's copy in: ``SQLITE_TMPDIR``, ``TMPDIR``, then the first
    writable of /var/tmp, /usr/tmp, /tmp."""
    for name in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"):
        if name and os.path.isdir(name) and os.access(name, os.W_OK | os.X_OK):
            return Path(name)
    return fallback


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
