"""SQLite, the source of truth: files, chunks, the embedding cache, full-text search and skip counts."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeneedle.errors import IndexWriteError, NeedleError
from codeneedle.indexer import cjk
from codeneedle.indexer.chunks import WINDOW_KINDS, Chunk
from codeneedle.indexer.secrets import redact_secrets
from codeneedle.indexer.types import split_identifier

SCHEMA_VERSION = "1"
# SQLite reuses its write-ahead log from the start after a checkpoint but never shrinks it: a long-lived writer (the
# language server, `needle watch`) kept the log as large as its biggest burst of writes for good (a first build's:
# 7.3 MB beside an 8 MB jinja2+click index, 32 MB after one 16 MB transaction). Past a checkpoint it is cut back
# to this, the size SQLite's own auto-checkpoint (1000 pages) lets it reach anyway.
WAL_SIZE_LIMIT = 4 << 20
BUSY_TIMEOUT_S = 30  # how long a connection waits for SQLite's write lock
# Added to schema 1 in place (see _ensure_schema): where each chunk's doc comment sits.
_WINDOW_KINDS = "(" + ", ".join(f"'{k}'" for k in sorted(WINDOW_KINDS)) + ")"  # SQL: embedded after definitions
_DOC_SPAN_COLUMNS = ("doc_start_line", "doc_end_line", "doc_start_byte", "doc_end_byte")
# Added the same way: the notebook cell a chunk is in, and its lines there (Chunk.cell*); NULL reads as 0 (none).
_CELL_COLUMNS = ("cell", "cell_start_line", "cell_end_line")
# A row as ChunkRow takes it, up to its cell (the doc span is read only where a Chunk is rebuilt for embedding).
_ROW_COLUMNS = ("id, path, language, kind, name, start_line, end_line, start_byte, end_byte, text, doc, hash, "
                "coalesce(cell, 0), coalesce(cell_start_line, 0), coalesce(cell_end_line, 0)")
_ROW_COLUMNS_BEFORE_CELLS = _ROW_COLUMNS.split(", coalesce(")[0]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A query's words: letters of any script (an ASCII-only pattern cut "größe" into "gr" and "e", and dropped Cyrillic,
# Greek and Chinese words altogether), digits after the first.
_QUERY_WORD = re.compile(r"[^\W\d]\w*")
_COMPOUND = re.compile(r"[a-z0-9][A-Z]|[A-Z]{2}[a-z]")
_STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it of on or the this that to what when where which "
    "with python code function method".split()
)


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the store remembers of one indexed file."""

    path: str
    size: int
    mtime_ns: int
    hash: str
    language: str | None
    ctime_ns: int | None = None  # None: recorded before the index kept it (or by a reader that could not add it)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and building the ~40 rows a
# search ranks cost more than ranking them (2.3 us a row against 0.3). Treat it as read-only all the same.
@dataclass(slots=True, unsafe_hash=True)
class ChunkRow:
    """A stored chunk with its id (the usearch key)."""

    id: int
    path: str
    language: str
    kind: str
    name: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    text: str
    doc: str
    hash: str
    # The notebook cell it is in and its lines there (Chunk.cell*); 0 outside notebooks.
    cell: int = 0
    cell_start_line: int = 0
    cell_end_line: int = 0
    # Where the doc comment sits (Chunk.doc_*); read only where a Chunk is rebuilt for embedding (pending_chunks).
    doc_start_line: int = 0
    doc_end_line: int = 0
    doc_start_byte: int = 0
    doc_end_byte: int = 0


@dataclass(frozen=True, slots=True)
class Space:
    """How the database file's pages are used. Deleting rows (files removed, a model's vectors dropped) frees pages
    that later writes reuse, but the file keeps them: only a VACUUM gives them back to the disk (``compaction.py``)."""

    page_size: int
    pages: int
    free_pages: int

    @property
    def file_bytes(self) -> int:
        return self.pages * self.page_size

    @property
    def free_bytes(self) -> int:
        """What a VACUUM gives back at least: SQLite's freelist. Pages that deletes left part-filled are repacked
        too (interleaved rows of two models, half of them deleted: 5.6 MiB free pages, 124 MiB given back)."""
        return self.free_pages * self.page_size

    @property
    def live_bytes(self) -> int:
        """What the file holds in use: the most a VACUUM leaves (it writes that much twice: copy and log)."""
        return (self.pages - self.free_pages) * self.page_size


class CorruptStoreError(NeedleError):
    """The SQLite file is damaged beyond what SQLite itself can recover."""


class StoreUnavailableError(IndexWriteError):
    """The database cannot be opened or written now (disk full, read-only, I/O error); the file itself is fine."""


class ForeignDatabaseError(NeedleError):
    """The file is a database, but not one of Needle's (or one of another schema): never touched."""


class UnfinishedDatabaseError(ForeignDatabaseError):
    """The file holds no Needle tables yet: empty, or a writer is between creating it and writing them."""


# Only these mean the file itself is damaged. "disk I/O error", "database or disk is full", "attempt to write a
# readonly database", "unable to open database file" say nothing about the file: moving it aside for them threw
# away intact indexes (a full disk re-embedded everything and left one more .corrupt-* copy per run).
_CORRUPTION_MARKERS = ("malformed", "not a database", "file is encrypted")


def is_corruption(exc: BaseException) -> bool:
    """Whether a SQLite error says the database file is damaged (as opposed to the disk or the folder)."""
    text = str(exc).lower()
    return any(marker in text for marker in _CORRUPTION_MARKERS)


def unavailable_error(path: Path, exc: BaseException) -> StoreUnavailableError:
    """A one-line error for a database that cannot be used right now, naming the likely cause."""
    text = str(exc)
    low = text.lower()
    errno_ = getattr(exc, "errno", None)
    # SQLite says only "disk I/O error" when it cannot grow its shared-memory file: ask the file system.
    free, read_only = _disk_state(path.parent)
    if "full" in low or errno_ == 28 or free == 0:
        cause = "the disk is full; free some space and run again"
    elif "readonly" in low or "read-only" in low or errno_ in (1, 13, 30) or read_only:
        cause = "the index folder is read-only"
    elif (limit := file_size_limit()) is not None:
        # SQLite says only "disk I/O error" for EFBIG too.
        cause = f"a file reached the size limit for files (ulimit -f: {limit} bytes); raise it and run again"
    else:
        cause = "the disk or folder refused it"
    return StoreUnavailableError(f"cannot use the index database {path}: {cause} ({text}); nothing was changed")


def file_size_limit() -> int | None:
    """This process's limit on the size of a file it writes (`ulimit -f`), in bytes; None when there is none."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _full_with_nothing_in_the_log(path: Path) -> bool:
    """Whether the disk under ``path`` has no room left and its write-ahead log holds nothing the file lacks."""
    if not path.exists() or _disk_state(path.parent)[0] != 0:
        return False
    try:
        return path.with_name(path.name + "-wal").stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def folder_read_only(folder: Path) -> bool:
    """Whether nothing may be written in ``folder`` (a read-only mount, or a folder this user may not write)."""
    return _disk_state(folder)[1]


def _disk_state(folder: Path) -> tuple[int | None, bool]:
    """(bytes free to us, whether the file system or folder is read-only); (None, False) when unknown."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None, False
    read_only = bool(st.f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    return st.f_bavail * st.f_frsize, read_only


def _immutable_connection(path: Path) -> sqlite3.Connection:
    """A connection to an index in a folder nobody may write: SQLite cannot make the WAL's shared-memory file
    there, so the file is read as immutable, which is right only when no log holds changes it lacks. A copy taken
    with its log and the log's index (``-shm``) is read with both, neither written."""
    wal = path.with_name(path.name + "-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    if pending and not path.with_name(path.name + "-shm").exists():
        raise StoreUnavailableError(
            f"cannot read the index database {path}: the index folder is read-only and its write-ahead log "
            f"({wal.name}) holds changes not yet in the database (it was copied while being written); copy it "
            "again once `needle index` has finished, or make the folder writable")
    mode = "ro" if pending else "ro&immutable=1"
    return sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode={mode}", uri=True, check_same_thread=False,
                           isolation_level=None)


class Store:
    """One SQLite database per index. Writers use one transaction per batch; readers never wait (WAL)."""

    def __init__(self, path: Path, *, create: bool = True):
        self.path = path
        if not create and not path.exists():
            raise NeedleError(f"no index database at {path}")
        # An index on a read-only mount (or a copy the user may not write) is read as it is, never written.
        self.read_only = path.exists() and (folder_read_only(path.parent) or not os.access(path, os.W_OK))
        # Read as it is because the disk is full: it cannot be updated now, and says so as a full disk.
        self.full_disk = False
        try:
            self._open(create and not self.read_only)
        except StoreUnavailableError:
            if self.read_only or not _full_with_nothing_in_the_log(path):
                raise
            # Opening a WAL database makes its shared-memory file (32 KiB), which a full disk refuses: every search,
            # status and train of an index the disk filled up under failed. With nothing in the log the file alone
            # is the whole index, read as immutable as on a read-only mount (another process writing would hold
            # that shared-memory file already, and this open would not have needed to make it).
            self.read_only = self.full_disk = True
            self._open(False)

    def _open(self, create: bool) -> None:
        path = self.path
        conn = None
        try:
            if self.read_only:
                conn = _immutable_connection(path)
            else:
                conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                       isolation_level=None)
            self.conn = conn
            self._check_ours()  # before the WAL switch, which already writes to the file
            if not self.read_only:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA foreign_keys=OFF")
            if create:
                self._ensure_schema()
            elif "meta" not in self._table_names() or self.get_meta("schema_version") is None:
                raise UnfinishedDatabaseError(f"{path} is not a Needle index (empty or made by another program)")
            elif self.get_meta("schema_version") != SCHEMA_VERSION:
                raise self._schema_error()
            # A reader takes an index made before chunks knew their cell as it is (a writer adds the columns).
            have = {row[1] for row in conn.execute("PRAGMA table_info(chunks)")}
            self._row_columns = _ROW_COLUMNS if set(_CELL_COLUMNS) <= have else _ROW_COLUMNS_BEFORE_CELLS
            if not create:  # a writer's _ensure_schema decided it (adding the columns where it could)
                skipped = {row[1] for row in conn.execute("PRAGMA table_info(skipped)")}
                self._skip_stats = {"size", "mtime_ns"} <= skipped
                self._file_ctimes = "ctime_ns" in {row[1] for row in conn.execute("PRAGMA table_info(files)")}
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if is_corruption(exc):
                raise CorruptStoreError(f"index database {path} is damaged: {exc}") from exc
            raise unavailable_error(path, exc) from None
        except NeedleError:
            if conn is not None:
                conn.close()
            raise

    def _check_ours(self) -> None:
        """Refuse a database another program made: its tables are not ours to add to, rename or move."""
        tables = self._table_names()
        if tables and "meta" not in tables:
            shown = ", ".join(sorted(tables)[:5])
            raise ForeignDatabaseError(
                f"{self.path} is a database Needle did not make (tables: {shown}); it is left untouched: "
                "choose another index folder")

    def _table_names(self) -> set[str]:
        # Plain SQL, not sqlite_utils: opening an index to search must not import it (see ``db``).
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when this is the last one)."""
        self.conn.close()

    @property
    def db(self):
        """A sqlite_utils view of the connection, made on first use: sqlite_utils loads its plugins' entry
        points (~0.15 s, measured), which a one-shot search on an existing index must not pay."""
        db = self.__dict__.get("_db")
        if db is None:
            import sqlite_utils

            db = self.__dict__["_db"] = sqlite_utils.Database(self.conn)
        return db

    # -- schema and metadata -------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        # A write transaction only to create the schema: every one-shot reader (`needle search`) opens an existing
        # index this way, and a reader must not write (nor queue behind the live writer: the language server).
        with self.transaction() if "meta" not in self._table_names() else contextlib.nullcontext():
            if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
                db = self.db
                db["meta"].create({"key": str, "value": str}, pk="key")
                db["files"].create(
                    {"path": str, "size": int, "mtime_ns": int, "hash": str, "language": str, "indexed_at": float,
                     "ctime_ns": int},
                    pk="path",
                )
                # AUTOINCREMENT: a chunk id is never reused, so a stale vector can't point at a newer chunk.
                self.conn.execute(
                    "CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, "
                    "language TEXT, kind TEXT, name TEXT, start_line INTEGER, end_line INTEGER, "
                    "start_byte INTEGER, end_byte INTEGER, text TEXT, doc TEXT, hash TEXT NOT NULL"
                    + "".join(f", {c} INTEGER" for c in (*_DOC_SPAN_COLUMNS, *_CELL_COLUMNS)) + ")"
                )
                db["chunks"].create_index(["path"])
                db["chunks"].create_index(["hash"])
                db["embeddings"].create({"model": str, "hash": str, "vector": bytes}, pk=("model", "hash"))
                db["skipped"].create({"path": str, "reason": str, "size": int, "mtime_ns": int}, pk="path")
                self.conn.execute(
                    "CREATE VIRTUAL TABLE chunks_fts USING fts5(name, path, body, tokenize='unicode61')"
                )
                self._set_meta_many({"schema_version": SCHEMA_VERSION, "generation": "0"})
        if self.get_meta("schema_version") != SCHEMA_VERSION:
            # Another Needle version's index is intact, just not ours to read: say so, move nothing.
            raise self._schema_error()
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(chunks)")}
        missing = [c for c in (*_DOC_SPAN_COLUMNS, *_CELL_COLUMNS) if c not in have]
        if missing:
            # Indexes made before chunks knew their doc span (or cell): adding nullable columns is cheap and older
            # Needles (which name their columns) still read and write the file; CHUNKER_VERSION 3 (16) re-chunks
            # to fill them.
            with self.transaction():
                for column in missing:
                    self.conn.execute(f"ALTER TABLE chunks ADD COLUMN {column} INTEGER")
        self._file_ctimes = "ctime_ns" in {row[1] for row in self.conn.execute("PRAGMA table_info(files)")}
        if not self._file_ctimes:
            # Indexes made before files kept their ctime: a nullable column, added by the first writer; a file
            # recorded without one is judged by size and mtime until it is read again.
            with contextlib.suppress(sqlite3.OperationalError, StoreUnavailableError), self.transaction():
                self.conn.execute("ALTER TABLE files ADD COLUMN ctime_ns INTEGER")
                self._file_ctimes = True
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(skipped)")}
        self._skip_stats = {"size", "mtime_ns"} <= have
        if not self._skip_stats:
            # Indexes made before skipped files kept their size and mtime: nullable columns, added by the first
            # writer (a reader of a read-only index reads on without them; the files are then read again).
            with contextlib.suppress(sqlite3.OperationalError, StoreUnavailableError), self.transaction():
                for column in ("size", "mtime_ns"):
                    if column not in have:
                        self.conn.execute(f"ALTER TABLE skipped ADD COLUMN {column} INTEGER")
                self._skip_stats = True

    def _schema_error(self) -> ForeignDatabaseError:
        return ForeignDatabaseError(
            f"index at {self.path} has schema {self.get_meta('schema_version')}, this Needle reads "
            f"{SCHEMA_VERSION}; use the Needle that built it, or delete {self.path.parent} to rebuild"
        )

    def integrity_ok(self) -> bool:
        """SQLite's own quick check of every page (cost grows with the file; run once per writer).

        False only when the file is damaged; a disk or permission failure raises StoreUnavailableError.
        """
        try:
            return self.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                return False
            raise unavailable_error(self.path, exc) from None

    def salvage_embeddings(self, damaged: Path) -> int:
        """Copy every embedding still readable from a damaged database file; returns how many."""
        rows: list[tuple[str, str, bytes]] = []
        try:
            src = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
            try:
                for row in src.execute("SELECT model, hash, vector FROM embeddings"):
                    rows.append(row)
            finally:
                src.close()
        except sqlite3.DatabaseError:
            pass  # keep what was read before the damaged page
        if rows:
            with self.transaction():
                self.conn.executemany(
                    "INSERT OR IGNORE INTO embeddings(model, hash, vector) VALUES (?, ?, ?)", rows)
        return len(rows)

    def transaction(self) -> _Transaction:
        """``with store.transaction():`` — BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        return _Transaction(self.conn)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._set_meta_many({key: value})

    def _set_meta_many(self, items: dict[str, str]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(items.items()))

    @property
    def generation(self) -> int:
        """Bumped in every transaction that changes the set of chunks; the usearch file records the one it saw."""
        return int(self.get_meta("generation", "0") or 0)

    # -- files -----------------------------------------------------------------------------------
    def file_records(self, under: Iterable[str] | None = None) -> dict[str, FileRecord]:
        """Every file's record, or only those of ``under``'s paths and of the files inside them (folders)."""
        sql = f"SELECT path, size, mtime_ns, hash, language, {self._ctime_column} FROM files"
        if under is None:
            return {r[0]: FileRecord(*r) for r in self.conn.execute(sql)}
        found: dict[str, FileRecord] = {}
        for path in dict.fromkeys(under):
            # "0" sorts right after "/": the range holds exactly the paths below the folder `path`.
            rows = self.conn.execute(f"{sql} WHERE path = ? OR (path >= ? AND path < ?)",
                                     (path, path + "/", path + "0"))
            found.update((r[0], FileRecord(*r)) for r in rows)
        return found

    def file_record(self, path: str) -> FileRecord | None:
        row = self.conn.execute(
            f"SELECT path, size, mtime_ns, hash, language, {self._ctime_column} FROM files WHERE path = ?", (path,)
        ).fetchone()
        return FileRecord(*row) if row else None

    @property
    def _ctime_column(self) -> str:
        return "ctime_ns" if self._file_ctimes else "NULL"

    def touch_files(self, records: Iterable[FileRecord]) -> None:
        """Record a new size/mtime/ctime for files whose content hash did not change."""
        if self._file_ctimes:
            self.conn.executemany("UPDATE files SET size = ?, mtime_ns = ?, ctime_ns = ? WHERE path = ?",
                                  [(r.size, r.mtime_ns, r.ctime_ns, r.path) for r in records])
        else:
            self.conn.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?",
                                  [(r.size, r.mtime_ns, r.path) for r in records])

    def replace_skipped(self, skipped: Sequence[tuple[str, str] | tuple[str, str, int, int]],
                        only: Iterable[str] | None = None) -> None:
        """Remember skipped files by reason, with the size and mtime of those skipped for what they hold (see
        ``content_skips``); ``only`` limits the replacement to those paths (watcher updates)."""
        if only is None:
            self.conn.execute("DELETE FROM skipped")
        else:
            self.conn.executemany("DELETE FROM skipped WHERE path = ?", [(p,) for p in only])
        rows = [(*row, None, None)[:4] for row in skipped]
        if self._skip_stats:
            self.conn.executemany("INSERT OR REPLACE INTO skipped(path, reason, size, mtime_ns) VALUES (?, ?, ?, ?)",
                                  rows)
        else:
            self.conn.executemany("INSERT OR REPLACE INTO skipped(path, reason) VALUES (?, ?)",
                                  [row[:2] for row in rows])

    def content_skips(self) -> dict[str, tuple[str, int, int]]:
        """Files skipped for what they hold (minified, generated, binary, a secret): path -> (reason, size,
        mtime_ns) as they were when read."""
        if not self._skip_stats:
            return {}
        rows = self.conn.execute("SELECT path, reason, size, mtime_ns FROM skipped WHERE size IS NOT NULL")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    # -- chunks ---------------------------------------------------------------------------------
    def replace_files(
        self, removed: Iterable[str], files: Sequence[FileRecord], chunks: dict[str, list[Chunk]]
    ) -> tuple[list[int], list[tuple[int, str]]]:
        """Drop every chunk of ``removed`` and of ``files``, then store ``files`` with their new ``chunks``.

        Call inside ``transaction()``. Returns (ids of removed chunks, [(new chunk id, content hash)]).
        """
        paths = list(dict.fromkeys([*removed, *(f.path for f in files)]))
        removed_ids: list[int] = []
        for i in range(0, len(paths), 500):
            part = paths[i : i + 500]
            marks = ",".join("?" * len(part))
            removed_ids += [r[0] for r in self.conn.execute(f"SELECT id FROM chunks WHERE path IN ({marks})", part)]
            self.conn.execute(f"DELETE FROM chunks WHERE path IN ({marks})", part)
            self.conn.execute(f"DELETE FROM files WHERE path IN ({marks})", part)
        for i in range(0, len(removed_ids), 500):
            part = removed_ids[i : i + 500]
            self.conn.execute(f"DELETE FROM chunks_fts WHERE rowid IN ({','.join('?' * len(part))})", part)
        now = time.time()
        if self._file_ctimes:
            self.conn.executemany(
                "INSERT INTO files(path, size, mtime_ns, hash, language, indexed_at, ctime_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(f.path, f.size, f.mtime_ns, f.hash, f.language, now, f.ctime_ns) for f in files],
            )
        else:
            self.conn.executemany(
                "INSERT INTO files(path, size, mtime_ns, hash, language, indexed_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(f.path, f.size, f.mtime_ns, f.hash, f.language, now) for f in files],
            )
        added: list[tuple[int, str]] = []
        for f in files:
            for c in chunks.get(f.path, ()):
                h = c.content_hash
                text = redact_secrets(c.text)  # tokens never reach the stored text, FTS or snippets
                cur = self.conn.execute(
                    "INSERT INTO chunks(path, language, kind, name, start_line, end_line, start_byte, end_byte, "
                    "text, doc, hash, doc_start_line, doc_end_line, doc_start_byte, doc_end_byte, cell, "
                    "cell_start_line, cell_end_line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (c.path, c.language, c.kind, c.name, c.start_line, c.end_line, c.start_byte, c.end_byte,
                     text, redact_secrets(c.doc), h, c.doc_start_line, c.doc_end_line, c.doc_start_byte,
                     c.doc_end_byte, c.cell, c.cell_start_line, c.cell_end_line),
                )
                cid = int(cur.lastrowid)
                self.conn.execute(
                    "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?, ?, ?, ?)",
                    (cid, split_identifier(c.name), " ".join(split_identifier(c.path).split("/")), fts_body(text, redact_secrets(c.leading_doc))),
                )
                added.append((cid, h))
        if removed_ids or added:
            self.set_meta("generation", str(self.generation + 1))
        self.set_meta("last_update", str(now))
        return removed_ids, added

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            rows = self.conn.execute(
                f"SELECT {self._row_columns} FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
            out.update({r[0]: ChunkRow(*r) for r in rows})
        return out

    def skipped_reason(self, path: str) -> str | None:
        """Why the last walk skipped ``path`` (``minified``, ``too large``, ...), or None."""
        row = self.conn.execute("SELECT reason FROM skipped WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def chunks_in_file(self, path: str) -> list[ChunkRow]:
        rows = self.conn.execute(f"SELECT {self._row_columns} FROM chunks WHERE path = ? ORDER BY start_line", (path,))
        return [ChunkRow(*r) for r in rows]

    def chunk_filter_rows(self) -> list[tuple[int, str, str, str]]:
        """(id, path, language, kind) of every chunk, for filtered searches."""
        return self.conn.execute("SELECT id, path, language, kind FROM chunks").fetchall()

    def definition_names(self) -> list[tuple[int, str]]:
        """(id, name) of every named function, method and class chunk."""
        return self.conn.execute(
            "SELECT id, name FROM chunks WHERE kind IN ('function', 'method', 'class') AND coalesce(name, '') != ''"
        ).fetchall()

    def counts(self) -> tuple[int, int]:
        files = self.conn.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(files), int(chunks)

    def language_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT coalesce(language, 'text'), count(*) FROM files GROUP BY 1 ORDER BY 2 DESC")
        return dict(rows.fetchall())

    # -- embeddings -----------------------------------------------------------------------------
    def missing_embeddings(self, model: str, hashes: Iterable[str]) -> list[str]:
        """Which content hashes have no cached vector for ``model`` yet (order kept, duplicates dropped)."""
        wanted = list(dict.fromkeys(hashes))
        have: set[str] = set()
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            rows = self.conn.execute(
                f"SELECT hash FROM embeddings WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                [model, *part],
            )
            have.update(r[0] for r in rows)
        return [h for h in wanted if h not in have]

    def put_embeddings(self, model: str, hashes: Sequence[str], vectors: np.ndarray, *,
                       transaction: bool = True) -> None:
        """Cache vectors (in their own transaction unless ``transaction`` is False: the caller holds one)."""
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(model, h, vecs[i].tobytes()) for i, h in enumerate(hashes)]
        sql = "INSERT OR REPLACE INTO embeddings(model, hash, vector) VALUES (?, ?, ?)"
        if not transaction:
            self.conn.executemany(sql, rows)
            return
        with self.transaction():
            self.conn.executemany(sql, rows)

    def has_chunks_without_doc_spans(self) -> bool:
        """Whether chunks here were written by a Needle from before chunks recorded their doc span (NULL; ours are 0
        without a doc), which recorded no chunker version either. A scan of the table: for rare checks only."""
        return self.conn.execute("SELECT 1 FROM chunks WHERE doc_start_line IS NULL LIMIT 1").fetchone() is not None

    def drop_vectors_except(self, models: Sequence[str]) -> int:
        """Delete the cached vectors of every model but ``models`` (inside the caller's transaction); how many."""
        marks = ",".join("?" * len(models))
        return self.conn.execute(f"DELETE FROM embeddings WHERE model NOT IN ({marks})", list(models)).rowcount

    def drop_old_vectors(self, keep: int) -> int:
        """Keep at most ``keep`` vectors of code the index no longer holds (what a reverted edit, a restored folder
        or a branch switched back finds again without the encoder), dropping the oldest written first; the number
        left. Without a bound every edit left its old vector behind for ever."""
        unused = "SELECT e.rowid FROM embeddings e WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.hash = e.hash)"
        count = self.conn.execute(f"SELECT count(*) FROM ({unused})").fetchone()[0]
        if count <= keep:
            return count
        with self.transaction():
            self.conn.execute(f"DELETE FROM embeddings WHERE rowid IN ({unused} ORDER BY e.rowid LIMIT ?)",
                              (count - keep,))
        return keep

    def pending_chunks(self, model: str, limit: int, among: Sequence[str] | None = None) -> list[ChunkRow]:
        """Up to ``limit`` chunks (one per content hash) whose vector for ``model`` is not cached yet, looking
        only at chunks with the content hashes ``among`` when given. Definitions come before line windows (module
        code, text files): they are what searches are for, so a big first index answers by meaning sooner."""
        sql = ("SELECT c.id, c.path, c.language, c.kind, c.name, c.start_line, c.end_line, c.start_byte, "
               "c.end_byte, c.text, c.doc, c.hash, coalesce(c.cell, 0), coalesce(c.cell_start_line, 0), "
               "coalesce(c.cell_end_line, 0), coalesce(c.doc_start_line, 0), coalesce(c.doc_end_line, 0), "
               "coalesce(c.doc_start_byte, 0), coalesce(c.doc_end_byte, 0) "
               "FROM chunks c LEFT JOIN embeddings e ON e.model = ? AND "
               "e.hash = c.hash WHERE e.hash IS NULL")
        if among is None:
            rows = self.conn.execute(f"{sql} GROUP BY c.hash ORDER BY c.kind IN {_WINDOW_KINDS}, min(c.id) LIMIT ?",
                                     (model, limit))
            return [ChunkRow(*r) for r in rows]
        out: dict[str, ChunkRow] = {}
        unique = list(dict.fromkeys(among))
        # Two passes, definitions then windows: a checkout's thousands of changed files span many windows.
        for kinds in (f"AND c.kind NOT IN {_WINDOW_KINDS}", f"AND c.kind IN {_WINDOW_KINDS}"):
            for i in range(0, len(unique), 500):
                if len(out) >= limit:
                    return list(out.values())[:limit]
                part = unique[i : i + 500]
                query = f"{sql} {kinds} AND c.hash IN ({','.join('?' * len(part))})"
                for r in self.conn.execute(query, [model, *part]):
                    out.setdefault(r[11], ChunkRow(*r))
        return list(out.values())[:limit]

    def pending_texts(self, model: str) -> int:
        """How many texts (distinct content hashes) lack a vector for ``model``: what embedding them costs."""
        return int(self.conn.execute(
            "SELECT count(DISTINCT c.hash) FROM chunks c LEFT JOIN embeddings e ON e.model = ? AND e.hash = c.hash "
            "WHERE e.hash IS NULL", (model,)).fetchone()[0])

    def embedded_counts(self, model: str) -> tuple[int, int]:
        """(chunks with a cached vector for ``model``, all chunks)."""
        total = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        done = self.conn.execute(
            "SELECT count(*) FROM chunks c JOIN embeddings e ON e.model = ? AND e.hash = c.hash", (model,)
        ).fetchone()[0]
        return int(done), int(total)

    def unembedded_ids(self, model: str, ids: Sequence[int]) -> set[int]:
        """Which of the chunk ``ids`` have no cached vector for ``model``."""
        out: set[int] = set()
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            out.update(r[0] for r in self.conn.execute(
                f"SELECT c.id FROM chunks c LEFT JOIN embeddings e ON e.model = ? AND e.hash = c.hash "
                f"WHERE e.hash IS NULL AND c.id IN ({','.join('?' * len(part))})", [model, *part]))
        return out

    def chunk_ids_for_hashes(self, hashes: Sequence[str]) -> list[tuple[int, str]]:
        """(chunk id, hash) of every chunk whose content hash is in ``hashes``."""
        out: list[tuple[int, str]] = []
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            out += self.conn.execute(
                f"SELECT id, hash FROM chunks WHERE hash IN ({','.join('?' * len(part))})", part).fetchall()
        return out

    def cached_subset(self, model: str, pairs: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
        """The (chunk id, hash) pairs whose vector for ``model`` is cached."""
        have = set(pairs and self._cached_hashes(model, [h for _, h in pairs]))
        return [(cid, h) for cid, h in pairs if h in have]

    def _cached_hashes(self, model: str, hashes: Sequence[str]) -> set[str]:
        missing = set(self.missing_embeddings(model, hashes))
        return {h for h in hashes if h not in missing}

    def vectors_for(self, model: str, hashes: Sequence[str], dim: int) -> np.ndarray:
        """Cached vectors for content hashes (each must be cached), in order."""
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            rows = self.conn.execute(
                f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                [model, *part],
            )
            found.update(rows.fetchall())
        out = np.empty((len(hashes), dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            out[i] = np.frombuffer(found[h], dtype=np.float32)
        return out

    def embedded_chunk_ids(self, model: str) -> set[int]:
        """Ids of the chunks that have a cached vector for ``model`` (what a full vector index holds)."""
        sql = "SELECT c.id FROM chunks c JOIN embeddings e ON e.model = ? AND e.hash = c.hash"
        return {row[0] for row in self.conn.execute(sql, (model,))}

    def chunk_vectors(self, model: str, dim: int, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, vectors) for all chunks, or for ``ids``; chunks without a cached vector are left out."""
        sql = (
            "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.model = ? AND e.hash = c.hash"
        )
        if ids is None:
            rows = self.conn.execute(sql, (model,)).fetchall()
        else:
            # CROSS JOIN keeps chunks the outer loop (ids by primary key, then each vector by its key): left to
            # itself the planner walks every embedding of the model for each batch, 0.7 s per 500 ids at 20k
            # chunks, which made a filtered search there take 5 s (3 ms a batch this way).
            by_id = sql.replace(" JOIN ", " CROSS JOIN ")
            rows = []
            for i in range(0, len(ids), 500):
                part = list(ids[i : i + 500])
                rows += self.conn.execute(f"{by_id} WHERE c.id IN ({','.join('?' * len(part))})",
                                          [model, *part]).fetchall()
        keys = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return keys, vecs

    # -- lexical search --------------------------------------------------------------------------
    def fts_search(self, query: str, limit: int) -> list[int]:
        """Chunk ids ranked by BM25 over name, path and identifier-split text."""
        match = fts_match(query)
        if not match:
            return []
        rows = self.conn.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts, 4.0, 2.0, 1.0) LIMIT ?",
            (match, limit),
        )
        return [r[0] for r in rows]

    def name_candidates(self, query: str, limit: int) -> list[int]:
        """Chunk ids whose name holds every word of ``query`` (identifiers split), for name lookups."""
        words = list(dict.fromkeys(w for w in split_identifier(" ".join(_WORD.findall(query))).lower().split()))
        if not words:
            return []
        match = "name : (" + " AND ".join(f'"{w}"' for w in words) + ")"
        rows = self.conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?", (match, limit))
        return [r[0] for r in rows]

    def disk_size(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())

    def space(self) -> Space:
        """The file's pages, in use and free (three reads of the header: cheap enough after every update)."""
        page_size, pages, free = (self.conn.execute(f"PRAGMA {name}").fetchone()[0]
                                  for name in ("page_size", "page_count", "freelist_count"))
        return Space(int(page_size), int(pages), int(free))

    def vacuum(self, busy_ms: int) -> None:
        """Rewrite the file without its free pages (VACUUM: one transaction, so a process killed in it leaves the
        index as it was), then copy the log back into the file so that it shrinks now. The writer's only.

        In WAL mode readers keep reading their snapshot meanwhile. ``busy_ms`` bounds the wait for SQLite's write
        lock, should another connection hold it (raises sqlite3.OperationalError "database is locked"), and the
        checkpoint's wait for readers on an older snapshot (then the file shrinks at a later checkpoint).
        """
        self.conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        try:
            self.conn.execute("VACUUM")
            # The log now holds a copy of every page (journal_size_limit cuts it back only at the next write):
            # without this the folder was no smaller until then.
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                if self.conn.in_transaction:  # a COMMIT the disk refused leaves it open: the next BEGIN would fail
                    self.conn.execute("ROLLBACK")
                raise
        # SQLite rolls the transaction back itself after some errors (SQLITE_FULL: a full disk); a ROLLBACK then
        # failed with "cannot rollback - no transaction is active", and that was the error the user read.
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def fts_body(text: str, doc: str = "") -> str:
    """Text, doc comment and the parts of camelCase identifiers (unicode61 already splits snake_case)."""
    text = f"{doc}\n{text}" if doc else text
    extra = {split_identifier(w) for w in _WORD.findall(text) if _COMPOUND.search(w)}
    pairs = cjk.index_terms(text)
    return text + ("\n" + " ".join(sorted(extra)) if extra else "") + ("\n" + pairs if pairs else "")


def query_terms(query: str) -> list[str]:
    """Lower-cased search terms of a query, identifiers split, stopwords dropped. Words in any script: an accented,
    Cyrillic or Greek word is a term as it is (``unicode61`` folds its case and accents on both sides)."""
    words = split_identifier(" ".join(_QUERY_WORD.findall(query))).lower().split()
    return list(dict.fromkeys(w for w in words if (len(w) > 1 or w.isdigit() or cjk.has_cjk(w))
                              and w not in _STOPWORDS))


def fts_match(query: str) -> str:
    """The FTS5 query for ``query``: any of its terms (Chinese, Japanese and Korean ones by their pairs of
    characters, as ``fts_body`` indexes them); empty when it has none."""
    clauses: list[str] = []
    for term in query_terms(query):
        clauses.extend(cjk.query_clauses(term) if cjk.has_cjk(term) else [f'"{term}"'])
    return " OR ".join(dict.fromkeys(clauses))
