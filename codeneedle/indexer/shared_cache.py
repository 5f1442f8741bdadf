"""Vectors shared by every index on this machine, keyed by model and by the exact text the encoder read.

A second clone, a git worktree, a branch checked out in another folder, or an index deleted and built again holds
code this machine has already embedded; its vectors come from here instead of the encoder (on 2 cores the encoder
is almost all of an index's cost). The key is a hash of ``embed_text`` itself (path and name included), not the
per-index content hash, so a vector is only ever reused for the very input that produced it.

Best effort by design: the file is a cache, never a source of truth. Whatever goes wrong with it (locked by another
process, read-only, damaged, full disk) costs only the reuse, never an update; a damaged file is removed and starts
over on the next run. It holds hashes and vectors only, no code, in the user cache (``numpy_bert.user_cache``),
readable by its owner alone, and is kept under a size bound by dropping the vectors least recently used.

Two indexes of the same code at work at once (worktrees opened together, a clone indexed while an editor indexes
another) share the work: each claims a group of texts before embedding it, a run passes over what another live run
claimed, and takes those vectors from here once that run has stored them.

``$NEEDLE_EMBEDDING_CACHE``: ``off`` (or ``0``) turns it off, a path moves it; ``$NEEDLE_EMBEDDING_CACHE_MB`` bounds
its size in MiB (default 1024).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codeneedle.indexer.lock import process_alive
from codeneedle.indexer.numpy_bert import user_cache
from codeneedle.indexer.store import is_corruption

log = logging.getLogger(__name__)

ENV_PATH = "NEEDLE_EMBEDDING_CACHE"
ENV_MB = "NEEDLE_EMBEDDING_CACHE_MB"
DEFAULT_MB = 1024
FILE_NAME = "embeddings.db"
# Another process writing its batch holds the file for milliseconds; waiting longer would stall an update for a cache.
BUSY_MS = 2000
# Counting the rows is cheap but not free: the bound is checked after this many new vectors (and on the first put).
PRUNE_EVERY = 5000
# A group is sized to take about two seconds to embed: a claim this old belongs to a run that stalled or stopped.
# Ages are the wall clock's (claims are shared between processes), so one dated this far ahead of it is as stale:
# the clock was set back (NTP stepping a VM's clock after its host slept), and its age would count from then on.
CLAIM_SECONDS = 30.0
# This process's runs now at work: a claim of this process's that none of them owns was left by one that ended
# without dropping it (its cache turned off mid-run) and is not waited for.
_LIVE_OWNERS: set[str] = set()


def text_key(text: str) -> str:
    """The cache key of one text as the encoder reads it."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def cache_path() -> Path | None:
    """Where the machine's shared vectors live, or None when ``$NEEDLE_EMBEDDING_CACHE`` turns them off."""
    value = os.environ.get(ENV_PATH)
    if value is None:
        return user_cache() / FILE_NAME
    if value.strip().lower() in ("", "0", "off", "false", "no"):
        return None
    return Path(value).expanduser()


def _max_bytes() -> int:
    try:
        return max(0, int(float(os.environ.get(ENV_MB, DEFAULT_MB)) * (1 << 20)))
    except ValueError:
        return DEFAULT_MB << 20


def usage() -> dict | None:
    """Where the shared vectors are, how many bytes they take and may take (a stat, no database read); None when
    they are turned off."""
    path = cache_path()
    limit = _max_bytes()
    if path is None or limit <= 0:
        return None
    size = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            size += path.with_name(path.name + suffix).stat().st_size
    return {"path": str(path), "bytes": size, "max_bytes": limit}


class SharedCache:
    """One model's vectors in the machine-wide cache. Every method fails quietly (the cache turns itself off)."""

    def __init__(self, path: Path, model: str, dim: int, max_bytes: int):
        self.path = path
        self.model = model
        self.dim = dim
        self.max_bytes = max_bytes
        self._since_prune = PRUNE_EVERY  # check the bound on the first put
        self.owner = uuid.uuid4().hex  # this run's claims (two indexes of one process are two runs)
        self.conn: sqlite3.Connection | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Only its owner may read it: vectors say something about the code they came from.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        _check_private(path)
        conn = sqlite3.connect(str(path), timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            # $NEEDLE_EMBEDDING_CACHE may name a database that is not ours (a typo, an index's own file): never
            # write into one that holds anything but this cache.
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
            if not tables <= {"vectors", "vectors_used", "claims"}:
                raise sqlite3.DatabaseError(f"{path} holds another database (tables {', '.join(sorted(tables))})")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL, "
                         "vector BLOB NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (model, key))")
            conn.execute("CREATE INDEX IF NOT EXISTS vectors_used ON vectors(used)")
            conn.execute("CREATE TABLE IF NOT EXISTS claims (model TEXT NOT NULL, key TEXT NOT NULL, "
                         "owner TEXT NOT NULL, pid INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (model, key))")
        except sqlite3.Error:
            conn.close()
            raise
        self.conn = conn
        _LIVE_OWNERS.add(self.owner)

    @classmethod
    def open(cls, model: str, dim: int) -> SharedCache | None:
        """The machine's cache for ``model`` (vectors of ``dim``), or None when it is off or cannot be used."""
        path = cache_path()
        max_bytes = _max_bytes()
        if path is None or max_bytes <= 0 or dim <= 0:
            return None
        try:
            return cls(path, model, dim, max_bytes)
        except (OSError, sqlite3.Error) as exc:
            _forget_if_damaged(path, exc)
            log.debug("shared embedding cache %s unusable: %s", path, exc)
            return None

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (a vector that is not a finite unit vector of this size is ignored)."""
        if self.conn is None or not keys:
            return {}
        found: dict[str, np.ndarray] = {}
        try:
            wanted = list(dict.fromkeys(keys))
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                rows = self.conn.execute(
                    f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({','.join('?' * len(part))})",
                    [self.model, *part])
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.size == self.dim and np.isfinite(vec).all() and abs(float(vec @ vec) - 1.0) < 0.02:
                        found[key] = vec
            if found:  # least recently used goes first when the bound is reached
                now = int(time.time())
                hit = list(found)
                with self._transaction():
                    for i in range(0, len(hit), 500):
                        part = hit[i : i + 500]
                        self.conn.execute(f"UPDATE vectors SET used = ? WHERE model = ? AND key IN "
                                          f"({','.join('?' * len(part))})", [now, self.model, *part])
        except sqlite3.Error as exc:
            self._fail(exc)
        return found

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (rows in the order of ``keys``) for every index on this machine."""
        if self.conn is None or not len(keys):
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        now = int(time.time())
        try:
            with self._transaction():
                self.conn.executemany(
                    "INSERT OR REPLACE INTO vectors(model, key, vector, used) VALUES (?, ?, ?, ?)",
                    [(self.model, k, vecs[i].tobytes(), now) for i, k in enumerate(keys)])
            self._since_prune += len(keys)
            if self._since_prune >= PRUNE_EVERY:
                self._since_prune = 0
                self._prune()
        except sqlite3.Error as exc:
            self._fail(exc)

    def claim(self, keys: Sequence[str]) -> set[str]:
        """Mark ``keys`` as being embedded by this run; returns those another live run claimed first (it is
        embedding them now), which this run should take from the cache once they are stored instead."""
        if self.conn is None or not keys:
            return set()
        try:
            with self._transaction():
                taken = self._claimed_by_others(keys)
                now = time.time()
                self.conn.execute("DELETE FROM claims WHERE at < ? OR at > ?", (now - CLAIM_SECONDS, now + CLAIM_SECONDS))
                self.conn.executemany(
                    "INSERT OR REPLACE INTO claims(model, key, owner, pid, at) VALUES (?, ?, ?, ?, ?)",
                    [(self.model, k, self.owner, os.getpid(), now) for k in dict.fromkeys(keys) if k not in taken])
            return taken
        except sqlite3.Error as exc:
            self._fail(exc)
            return set()

    def claimed_by_others(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` another live run is embedding now (claimed within CLAIM_SECONDS)."""
        if self.conn is None or not keys:
            return set()
        try:
            return self._claimed_by_others(keys)
        except sqlite3.Error as exc:
            self._fail(exc)
            return set()

    def _claimed_by_others(self, keys: Sequence[str]) -> set[str]:
        assert self.conn is not None
        taken: set[str] = set()
        wanted = list(dict.fromkeys(keys))
        now = time.time()
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            rows = self.conn.execute(
                f"SELECT key, owner, pid FROM claims WHERE model = ? AND owner != ? AND at BETWEEN ? AND ? AND key IN "
                f"({','.join('?' * len(part))})",
                [self.model, self.owner, now - CLAIM_SECONDS, now + CLAIM_SECONDS, *part])
            taken.update(key for key, owner, pid in rows
                         if (owner in _LIVE_OWNERS if pid == os.getpid() else process_alive(pid)))
        return taken

    def _prune(self) -> None:
        """Keep the file under its bound: drop the least recently used rows beyond nine tenths of it, all models
        together. The bound is on the pages the rows fill (what the file holds), not on a guess at a row's size: a
        384-d row fills about 2.1 kB of pages, not the 1.5 kB of its vector."""
        assert self.conn is not None
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        used = (pages - free) * page_size
        if used <= self.max_bytes:
            return
        rows = self.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
        drop = rows - int(rows * 0.9 * self.max_bytes / used)
        with self._transaction():
            self.conn.execute("DELETE FROM vectors WHERE rowid IN "
                              "(SELECT rowid FROM vectors ORDER BY used LIMIT ?)", (drop,))
        # No VACUUM: on a file of this size it would hold every other index's update for seconds, and the freed
        # pages are reused by the next vectors, so the file stays near its bound.

    @contextlib.contextmanager
    def _transaction(self):
        assert self.conn is not None
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _fail(self, exc: sqlite3.Error) -> None:
        log.debug("shared embedding cache %s turned off for this run: %s", self.path, exc)
        self.close()
        _forget_if_damaged(self.path, exc)

    def close(self) -> None:
        """Drop this run's claims (what it stored is in the cache; what it did not, others may embed) and the file."""
        _LIVE_OWNERS.discard(self.owner)
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None


def _check_private(path: Path) -> None:
    """OSError unless the cache (and its WAL files) is ours and only we may write it: whoever else can write it can
    make every index on this machine take their vectors for its code (a shared $NEEDLE_CACHE_DIR, a loose umask)."""
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for suffix in ("", "-wal", "-shm"):
        try:
            st = os.stat(path.with_name(path.name + suffix))
        except FileNotFoundError:
            continue
        if (uid is not None and st.st_uid != uid) or st.st_mode & 0o022:
            raise PermissionError(f"{path}{suffix} may be written by others: not used")


def _forget_if_damaged(path: Path, exc: BaseException) -> None:
    """A damaged cache is worth nothing: remove it, and the next run starts a fresh one. Only a SQLite file is
    removed: "file is not a database" for any other file means ``$NEEDLE_EMBEDDING_CACHE`` names someone's file."""
    if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc) and _is_sqlite_file(path):
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                path.with_name(path.name + suffix).unlink()


def _is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
