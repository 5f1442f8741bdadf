"""The library API every front door uses: open an index over a repository, update it, search it."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import numpy as np

from codeneedle.errors import (
    IndexLockedError,
    IndexLostError,
    IndexMissingError,
    IndexReadOnlyError,
    IndexStartingError,
    IndexWriteError,
    NeedleError,
    PathOutsideRootError,
)
from codeneedle.indexer import cjk, compaction, late_interaction, shared_cache, sticky
from codeneedle.indexer.chunks import BLOCK, CHUNKER_VERSION, CLASS, TEXT, Chunk
from codeneedle.indexer.dbheader import checkpoint_unfinished, read_header
from codeneedle.indexer.declarations import implementations_first
from codeneedle.indexer.embedding import chunk_of
from codeneedle.indexer.encoder import Encoder, bulk_identity, embed_text, query_identity, query_tower_of
from codeneedle.indexer.feedback import enabled as feedback_enabled
from codeneedle.indexer.filters import (
    check_query,
    kind_filter,
    path_allowed,
    path_within,
    split_globs,
    within_paths,
)
from codeneedle.indexer.indexdir import (
    check_index_dir,
    indexed_only_when_asked,
    make_index_dir,
    write_gitignore,
)
from codeneedle.indexer.lock import WriterLock
from codeneedle.indexer.models import resolve_model
from codeneedle.indexer.progress import is_partial, mark_state, stand_in_for_missing_vectors
from codeneedle.indexer.query_adapter import AdapterFile
from codeneedle.indexer.remembered import RememberedOpens, put_first
from codeneedle.indexer.rerank import Reranker, depth_setting, rerank, reranker_dir, shared_reranker
from codeneedle.indexer.scores import absolute_scores
from codeneedle.indexer.search import (
    Filters,
    Hit,
    SearchResult,
    candidate_pool,
    dense_ranking,
    foreign_script,
    language_filter,
    lexical_ranking,
    rank,
    ranked_rows,
    result_from_row,
)
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.store import (
    ChunkRow,
    CorruptStoreError,
    Store,
    UnfinishedDatabaseError,
    file_size_limit,
    folder_read_only,
    is_corruption,
    unavailable_error,
)
from codeneedle.indexer.vectors import SIDECAR_SUFFIX, VectorIndex
from codeneedle.indexer.writer import IndexWriter

log = logging.getLogger("codeneedle")

DB_NAME = "index.db"
# A reader finding index.db without its tables looks again this often before calling it foreign.
CREATION_RETRIES, CREATION_RETRY_S = 10, 0.1
MAX_QUERY_CHARS = 4096  # the language server's and the MCP server's cap, too
VECTORS_NAME = "vectors.usearch"
# A second stage that failed is tried again after this long; meanwhile searches keep the first stage's order.
SECOND_STAGE_RETRY_S = 300.0
T = TypeVar("T")


@dataclass(frozen=True)
class IndexStatus:
    """What `needle status` and `needle.status` report."""

    root: str
    index_dir: str
    model: str
    files: int
    chunks: int
    size_bytes: int
    last_update: str | None
    skipped: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    state: str = "ready"  # ready | indexing (a writer is at work) | partial (an indexing run was interrupted)
    chunks_embedded: int = 0
    # The saved query adapter (query_adapter.py): what it was fitted on, and whether searches use it (an adapter
    # fitted for another model is not); None when there is none.
    query_adapter: dict | None = None
    # The query tower queries go through (encoder.query_tower_of); None: the encoder's shared weights.
    query_tower: str | None = None
    # The second stage searches use by default (rerank.reranker_dir), and how deep; None: the first stage alone.
    reranker: str | None = None
    rerank_depth: int = 0
    # The machine's shared vectors (shared_cache.usage): path, bytes, bound; None when turned off.
    shared_cache: dict | None = None
    # Why the next full update reads every file again (Index.rebuild_due: what an upgrade leaves); None: it need not.
    rebuild_due: str | None = None
    # The model the stored vectors are of when it is not this process's (Completeness.other_model); else None.
    other_model: str | None = None
    # Of size_bytes, the database's free pages (deleted rows left them): what `needle index --compact` gives back at
    # least (store.Space.free_bytes).
    reclaimable_bytes: int = 0


class Index:
    """A repository's index: SQLite store + usearch vectors + the encoder, behind one small API.

    One process may write (``update``, inside ``writing()``) while any number of threads and processes read
    (``search``).
    """

    def __init__(self, root: Path, settings: IndexSettings, *, notify: Callable[[str], None] | None = None,
                 create: bool = True):
        self.root = root
        self.settings = settings
        self.index_dir = settings.index_dir_for(root)
        self.notify = notify or (lambda msg: log.warning("%s", msg))
        # Told instead of ``notify`` when an update finds the index lost (a live index shows it to people).
        self.on_lost: Callable[[str], None] | None = None
        # Set by a live index after the user cancelled its full update, until they ask for one again: updates embed
        # only their own new chunks, not the backlog, and a full rescan (the watcher's) reads only files already
        # indexed, so the files the cancel left unread stay so.
        self.hold_backlog = False
        self._writer = WriterLock(self.index_dir)
        self._writing_depth = 0  # nested writing() blocks in this process (any thread)
        self._writing_lock = threading.Lock()
        self._unsaved_settings: Callable[[], object] | None = None  # stores them once we are the writer
        self._encoder: Encoder | None = None
        self._embedder = None
        self._encoder_lock = threading.Lock()
        self._vectors: VectorIndex | None = None
        self._vectors_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[tuple[threading.Thread, Store]] = []  # each thread's read connection
        self._readers_lock = threading.Lock()
        self._lexical_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="needle-lexical")
        # The second stage's model loads here while the first stage runs: on its own thread, so a slow first load
        # (an ONNX graph being built) never holds the BM25 threads every search needs.
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="needle-load")
        self._loading = None
        self._loading_lock = threading.Lock()
        self._second_stage_down: dict[str, float] = {}  # "late" | "rerank" -> when it last failed
        self._adapter_file = AdapterFile(self.index_dir)
        self._remembered = RememberedOpens(self.index_dir)
        self._checked = False
        self._room_said = False  # a compaction skipped for lack of disk space is said once, not after every update
        self.store = self._open_store(create)
        self._identity = self._db_identity()
        self._header_checked_size = -1  # the size at which lost() last found the header consistent
        self._shm = self._shm_identity()  # the shared-memory file our connections map
        # An existing index keeps the model it was built with unless a model is asked for explicitly.
        self.model_name, self.model_dir = resolve_model(settings.model or self._stored_model_name())
        self.model_id = bulk_identity(self.model_name, self.model_dir)
        if self.store.read_only and self.stored_model not in (None, self.model_id):
            # Its vectors are another model's and it cannot be embedded again: a search would be keywords only.
            stored = self.stored_model
            self.store.close()
            raise NeedleError(f"the index {self.index_dir} is read-only and was built with {stored}: it cannot be "
                              f"embedded again with {self.model_name}; search it with the model it was built with")

    def _stored_model_name(self, *, trusted: bool = True) -> str | None:
        """The model the index's record names, as a name or folder that resolves; ``trusted`` False: also one
        :meth:`_untrusted_model` keeps from loading unasked (it still loads when named)."""
        name = self.store.get_meta("model_name")
        path = self.store.get_meta("model_path")
        # A model `needle train --repo` adapted lives in the index's own models/ folder, but the path stored is
        # absolute: an index moved or copied with its repository finds it there, rather than being rebuilt with
        # the default model (or reading another copy's folder).
        own = str(self.index_dir / "models" / name) if name and "/" not in name else None
        for candidate in (own, name, path):
            try:
                if candidate:
                    _, folder = resolve_model(candidate)
            except NeedleError:
                continue
            if candidate and trusted and self._untrusted_model(folder):
                continue
            if candidate:
                return candidate
        return None

    def _untrusted_model(self, folder: Path) -> bool:
        """Whether the model an index's record names is one Needle will not load unasked: a folder inside the
        repository (a ``.needle/`` or a model that came with a clone) that does not load as plain data. A crafted
        index named one whose ``pytorch_model.bin`` transformers unpickled; a model asked for by name
        (``--model``, the ``model`` setting) is loaded as before, and so is one ``needle train --repo`` made."""
        from codeneedle.indexer.models import reads_as_data

        real_root = self.root.resolve()
        inside = folder == real_root or folder.is_relative_to(real_root) or folder.is_relative_to(
            self.index_dir.resolve())
        if not inside or reads_as_data(folder):
            return False
        self.notify(f"the index names the model in {folder}, which lies inside the repository and is no plain BERT "
                    "model in safetensors: not loaded (name it with --model or the model setting to use it)")
        return True

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, root: str | Path, settings: IndexSettings | None = None, *, create: bool = True,
        notify: Callable[[str], None] | None = None, explicit: Iterable[str] | None = None,
        asked: bool = False,
    ) -> Index:
        """Open (or, with ``create``, start) the index of the repository at ``root``.

        Index-defining settings not named in ``explicit`` come from the index's stored ones (``sticky.py``; None
        means an editor's configuration, as the language server's live index opens it: a command line names what
        it gave, () for nothing). A new
        index of the home folder or of ``/`` is started only when ``asked`` (``needle index``, ``needle watch``):
        an editor opened on the home folder, or a search typed there, would otherwise index all of it.
        """
        root_path = Path(root).expanduser()
        if not root_path.exists():
            raise NeedleError(f"path does not exist: {root}")
        if not root_path.is_dir():
            raise NeedleError(f"not a folder: {root}")
        root_path = root_path.resolve()
        if not os.access(root_path, os.R_OK | os.X_OK):
            raise NeedleError(f"folder is not readable: {root_path}")
        settings = settings or IndexSettings()
        index_dir = settings.index_dir_for(root_path)
        check_index_dir(root_path, index_dir)
        exists = (index_dir / DB_NAME).exists()
        if not create and not exists:
            raise IndexMissingError(f"no index at {index_dir}; run `needle index {root_path}` first")
        if not asked and (what := indexed_only_when_asked(root_path, index_dir)):
            raise NeedleError(f"{root_path} is {what}, which is indexed only when asked: open or name a project "
                              f"folder, or build its index once with `needle index {root_path}`")
        made = not index_dir.exists()
        try:
            make_index_dir(index_dir)
        except OSError as exc:
            why = "a file of that name is in the way" if index_dir.is_file() else exc.strerror
            raise NeedleError(f"cannot create index folder {index_dir}: {why}; choose another one (--index-dir, or "
                              "the indexDir setting in an editor)") from None
        read_only = exists and folder_read_only(index_dir)  # an index shared read-only is read as it is
        try:
            if not read_only:
                write_gitignore(index_dir)
        except NeedleError:
            if made:  # leave nothing behind: a folder without its ignore file would be committed
                with contextlib.suppress(OSError):
                    index_dir.rmdir()
            raise
        # Beside the live writer (the language server, a watcher) the settings file is the writer's: a one-shot
        # reader stores nothing, and a process that becomes the writer later stores its settings then.
        explicit = None if explicit is None else tuple(explicit)  # read twice (below)
        other_writer = create and WriterLock(index_dir).taken_elsewhere()
        settings = sticky.resolve(index_dir, settings, explicit, notify, save=create and not read_only,
                                  other_writer=other_writer)
        index = cls(root_path, settings, notify=notify, create=create)
        if other_writer:
            index._unsaved_settings = lambda: sticky.resolve(index_dir, settings, explicit)
        return index

    def _open_store(self, create: bool = True) -> Store:
        if not create:
            # A reader never repairs: it reports, and the next writer (`needle index`) recovers.
            try:
                return Store(self.index_dir / DB_NAME, create=False)
            except CorruptStoreError as exc:
                raise CorruptStoreError(f"{exc}; run `needle index {self.root}` to repair it") from None
            except UnfinishedDatabaseError:
                return self._store_being_created()
        try:
            return Store(self.index_dir / DB_NAME)
        except CorruptStoreError as exc:
            return self._recover_store(str(exc))

    def _store_being_created(self) -> Store:
        """A reader that found index.db without its tables: another process may be between creating the file and
        writing them (milliseconds), so look again a few times before calling it foreign."""
        path = self.index_dir / DB_NAME
        for _ in range(CREATION_RETRIES):
            time.sleep(CREATION_RETRY_S)
            try:
                return Store(path, create=False)
            except UnfinishedDatabaseError:
                continue
        # A probe of the lock (rare: only for such a file), not writer_alive's pid and /proc/locks reading, which
        # some kernels (gVisor) leave without flock entries.
        if WriterLock(self.index_dir).taken_elsewhere():
            raise IndexStartingError(f"the index of {self.root} is being created by another needle process; "
                                     "try again in a moment") from None
        return Store(path, create=False)  # still not ours: say so

    def _recover_store(self, reason: str) -> Store:
        """Move a damaged database aside, start a fresh one and carry over every embedding still readable.

        SQLite is the source of truth; when it is damaged the safe move is to rebuild files and chunks
        from the working tree, but encoder work is expensive, so salvage what can be read.
        """
        self._writer.acquire()
        path = self.index_dir / DB_NAME
        stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}"
        broken = path.with_name(f"{DB_NAME}.corrupt-{stamp}")
        old = getattr(self, "store", None)
        if old is not None:
            old.close()
        moved: list[tuple[Path, Path]] = []
        for p in list(self.index_dir.glob(DB_NAME + "*")):
            if ".corrupt-" not in p.name:
                dest = broken.with_name(broken.name + p.name[len(DB_NAME):])
                p.rename(dest)
                moved.append((dest, p))
        try:
            store = Store(path)
        except NeedleError:
            # No fresh index can be made (disk full, read-only): put the old file back, as it was.
            for dest, p in moved:
                with contextlib.suppress(OSError):
                    path.with_name(p.name).unlink(missing_ok=True)
                    dest.rename(p)
            raise
        (self.index_dir / VECTORS_NAME).unlink(missing_ok=True)
        saved = store.salvage_embeddings(broken)
        self.notify(f"{reason}; moved it to {broken.name}, starting a fresh index ({saved} embeddings salvaged)")
        self._drop_open_handles()
        self._identity = self._db_identity()
        self._header_checked_size = -1
        self._shm = self._shm_identity()
        return store

    # -- the database file going away under us ----------------------------------------------------
    def _drop_open_handles(self) -> None:
        """Forget the ANN index and close every reader: they belong to a database file that is gone."""
        with self._vectors_lock:
            self._vectors = None
        self._close_readers()
        self._local = threading.local()

    def _db_identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.index_dir / DB_NAME)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_size

    def _shm_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.index_dir / f"{DB_NAME}-shm")
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def lost(self) -> str | None:
        """Why the open database is no longer the file on disk (folder or file deleted, replaced, truncated).

        A stat, cheap enough for every search. A file smaller than it was is not enough to say so: the writer's
        compaction (``compaction.py``) shrinks it, and then the file is as long as its header says. Taken for a
        truncation, a reader beside it moved a healthy index aside and rebuilt it.
        """
        known = self._identity
        now = self._db_identity()
        if known is None:
            return None
        if now is None:
            self._lost_kind = "deleted"
            return f"the index {self.index_dir / DB_NAME} was deleted while in use"
        if now[:2] != known[:2]:
            self._lost_kind = "replaced"
            return f"the index {self.index_dir / DB_NAME} was replaced by another file while in use"
        # The header is read again only when the size moved: a merged search asks every shard on each query.
        if (now[2] == 0 < known[2]) or (now[2] != self._header_checked_size
                                        and stays_shorter_than_header(self.index_dir / DB_NAME, now[2])):
            self._lost_kind = "truncated"
            return f"the index {self.index_dir / DB_NAME} was truncated while in use ({now[2]} bytes, was {known[2]})"
        if self._shm is not None and self._shm_identity() != self._shm:
            # While a connection of ours is open nobody may remove the WAL-index (-shm) and the log (-wal): the
            # last connection to close does. When a process did all the same, our connections write into a
            # deleted log ("disk I/O error" on every later request, the writes lost): open them again and rescan.
            self._lost_kind = "log"
            return f"the write-ahead log of the index {self.index_dir / DB_NAME} was deleted while in use"
        self._identity = now
        self._header_checked_size = now[2]
        return None

    def _reopen_lost(self, reason: str) -> None:
        """Start over on a fresh (or another writer's) database after :meth:`lost` said why."""
        if not self.root.is_dir():
            # The project itself went (`rm -rf` of it, or moved away while watched): rebuilding would bring its
            # folder back, holding only an empty index.
            raise NeedleError(f"{self.root} was deleted or moved away; there is nothing to index there")
        (self.on_lost or (lambda why: self.notify(f"{why}; rebuilding it")))(reason)
        kind = getattr(self, "_lost_kind", None)
        truncated = kind == "truncated"
        self._drop_open_handles()
        self._checked = False
        if truncated:
            # The same file, damaged in place: move it aside (salvaging embeddings) like any damaged file.
            self.store = self._recover_store(reason)
        else:
            self.store.close()
            if kind != "log" or not (self.index_dir / DB_NAME).exists():  # else only the log went, not our lock
                # Our lock is on a deleted file now: whoever made a new folder may hold the new lock.
                self._writer.release()
                make_index_dir(self.index_dir)
                write_gitignore(self.index_dir)
                self._writer = WriterLock(self.index_dir)
            self.store = Store(self.index_dir / DB_NAME)
        self._identity = self._db_identity()
        self._header_checked_size = -1
        self._shm = self._shm_identity()

    def close(self) -> None:
        """Release the writer lock and close connections."""
        self._writer.release()
        self._lexical_pool.shutdown(wait=True)
        self._loader.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        self._close_readers()

    def _close_readers(self) -> None:
        with self._readers_lock:
            for _thread, reader in self._readers:
                reader.close()
            self._readers.clear()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the single writer -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, wait: float = 0.0) -> Iterator[None]:
        """Be this index's single writer for the block: the one way in to the cross-process writer lock.

        Raises IndexLockedError (naming the holder's pid) when another process is the writer and still is after
        ``wait`` seconds of retrying (default: fail at once). Re-entrant in this process, from any thread: nested
        blocks (``update`` inside a long-lived writer's block) share the lock, which is released when the
        outermost block exits. A long-lived writer (``needle watch``, the language server: ``live.LiveIndex``)
        keeps one block open for its whole session (an ``ExitStack``).
        """
        if self.store.full_disk:
            raise IndexWriteError(f"disk full: the index in {self.index_dir} cannot be updated now; "
                                  "free some space and run again")
        if self.store.read_only:
            # Even where the lock file can be taken (another user's index.db in a shared folder), the database is
            # read as immutable: never written.
            raise IndexReadOnlyError(f"the index {self.index_dir / DB_NAME} is read-only for you: it can be "
                                     "searched as it is, not updated")
        deadline = time.monotonic() + wait
        while True:
            try:
                with self._writing_lock:
                    # Acquired on every entry, not only the outermost: after a lost index the lock is a new file.
                    self._writer.acquire()
                    self._writing_depth += 1
                    if self._unsaved_settings is not None:
                        self._unsaved_settings, store_settings = None, self._unsaved_settings
                        store_settings()
                break
            except IndexLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        try:
            yield
        finally:
            with self._writing_lock:
                self._writing_depth -= 1
                if self._writing_depth == 0:
                    self._writer.release()

    @property
    def is_writer(self) -> bool:
        """Whether this process holds the writer lock now (read-only: take it with ``writing()``)."""
        return self._writer.held

    # -- parts loaded on demand ------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded on first use (torch costs seconds; status and startup never pay it)."""
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = Encoder.shared(self.model_name, self.model_dir)
            return self._encoder

    @cached_property
    def query_tower(self) -> Path | None:
        """The query tower this index's queries go through (``encoder.query_tower_of``), found once, as the
        encoder finds it, without loading the encoder's weights (status asks it)."""
        return query_tower_of(self.model_dir, self.model_id)

    @cached_property
    def query_id(self) -> str:
        """What this index's query vectors are the product of (``encoder.query_identity``)."""
        return query_identity(self.model_id, self.query_tower)

    @property
    def embedder(self):
        """What turns chunk texts into vectors (``embedding.Embedder``): the local encoder unless one was set."""
        if self._embedder is None:
            from codeneedle.indexer.embedding import EncoderEmbedder

            self._embedder = EncoderEmbedder(self.encoder)
        return self._embedder

    @embedder.setter
    def embedder(self, value) -> None:
        self._embedder = value

    def reader(self) -> Store:
        """A per-thread read connection (WAL readers never wait on the writer)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.index_dir / DB_NAME, create=False)
            with self._readers_lock:
                # Threads come and go (the MCP server runs each call on a pooled thread that ends when idle):
                # the connections of ended threads are closed, or each would keep its file handles for good.
                for _thread, reader in [r for r in self._readers if not r[0].is_alive()]:
                    reader.close()
                self._readers = [r for r in self._readers if r[0].is_alive()]
                self._readers.append((threading.current_thread(), store))
        return store

    @property
    def stored_model(self) -> str | None:
        return self.store.get_meta("model_id")

    def vectors(self) -> VectorIndex:
        """The ANN index matching SQLite's current generation: loaded, or rebuilt from cached embeddings."""
        with self._vectors_lock:
            generation = self.reader().generation
            # The writer keeps its in-memory index current itself; readers follow the store's generation.
            if self._vectors is not None and (self._writer.held or self._vectors.generation == generation):
                return self._vectors
            path = self.index_dir / VECTORS_NAME
            dim = self._dim()
            if self._vectors is not None and self._vectors.dim == dim:
                # Another process committed (a watcher, the language server indexing): take in what changed. A
                # rebuild from SQLite on each of its commits made every search here take seconds while it indexed.
                self._catch_up(self._vectors, generation)
                return self._vectors
            loaded = VectorIndex.load(path, dim=dim, model_id=self.model_id, generation=generation)
            if loaded is None:
                keys, vecs = self.reader().chunk_vectors(self.model_id, dim)
                loaded = VectorIndex.build(dim, keys, vecs, generation)
                # A file of another model's vectors (the index awaits its rebuild with ours, or an older Needle
                # writes it) is neither stale nor damaged: saying so sent people looking for damage after an upgrade.
                if path.exists() and self._vectors is None and self.reader().get_meta("model_id") == self.model_id:
                    self.notify(f"vector file {path.name} was stale or damaged; rebuilt it from SQLite ({len(keys)} vectors)")
                if self._writer.held:
                    loaded.save(path, model_id=self.model_id)
            self._vectors = loaded
            return loaded

    def _catch_up(self, vectors: VectorIndex, generation: int) -> None:
        """Bring an index this process loaded up to the store: vectors of new chunks in, removed chunks out. Chunk
        ids are never reused (AUTOINCREMENT), so the ids alone say what changed."""
        store = self.reader()
        held = {int(k) for k in vectors.keys()}
        now = store.embedded_chunk_ids(self.model_id)
        vectors.remove(sorted(held - now))
        keys, vecs = store.chunk_vectors(self.model_id, vectors.dim, ids=sorted(now - held))
        vectors.add(keys, vecs)
        vectors.generation = generation

    def _dim(self) -> int:
        stored = self.reader().get_meta("dim")
        return int(stored) if stored else self.encoder.dim

    # -- writing ---------------------------------------------------------------------------------
    def update(self, paths: Iterable[str] | None = None, progress=None, cancel: threading.Event | None = None):
        """Bring the index up to date with the working tree (or only with ``paths``, relative to root).

        Runs inside ``writing()`` (IndexLockedError if another process is the writer); a long-lived writer's
        block keeps the lock afterwards, else it is released on return. Returns UpdateStats.
        """
        reason = self.lost()
        if reason is not None:
            self._reopen_lost(reason)
            paths, self.hold_backlog = None, False  # everything is to be indexed again
        with self.writing():
            try:
                stats = self._update(paths, progress, cancel)
            except BaseException:
                self._save_mirrored_vectors()
                raise
            if not stats.cancelled:
                self._compact_if_due(stats)
            return stats

    def compact(self, *, force: bool = False) -> compaction.Compaction | None:
        """Give the space deleted rows left in the database back to the disk (VACUUM), when an update left enough
        of it free (``compaction.due``) or ``force``; None when not due. Chunk ids stay, so the vector file stays
        valid. Runs inside ``writing()`` (IndexLockedError if another process is the writer)."""
        with self.writing():
            if not force and not compaction.due(self.store.space()):
                return None
            done = compaction.compact(self.store)
            # Our own file shrank: remember it as it is now (lost() reads a shrink against the file's header).
            self._identity = self._db_identity() or self._identity
            self._header_checked_size = -1
            return done

    def _compact_if_due(self, stats) -> None:
        """After an update: compact when due. A skip for lack of disk space is said once per process; one for a
        busy lock only logged (the next update tries again). Never fails the update it follows."""
        try:
            done = self.compact()
        except (NeedleError, OSError, sqlite3.Error) as exc:
            log.info("%s: compaction skipped: %s", self.index_dir, exc)
            return
        if done is None:
            return
        if done.skipped is None:
            stats.compacted_bytes = done.freed
            log.info("%s: %s", self.index_dir, done.message())
        elif done.no_room and not self._room_said:
            self._room_said = True
            self.notify(done.skipped)

    def _save_mirrored_vectors(self) -> None:
        """After an update stopped (its embedder failed: a Ray cluster lost; Ctrl-C): save the ANN index that mirrors
        what was committed. Left unsaved, the file on disk lags SQLite's generation, and the run that resumes said
        "vector file ... was stale or damaged" and rebuilt it whole. Best effort: the update's own error is what is
        raised."""
        try:
            with self._vectors_lock:
                vi = self._vectors
                if vi is not None and vi.generation == self.store.generation != vi.saved_generation:
                    vi.save(self.index_dir / VECTORS_NAME, model_id=self.model_id)
        except Exception:  # noqa: BLE001 - a store or disk that failed the update may fail this too
            pass

    def _update(self, paths: Iterable[str] | None, progress, cancel: threading.Event | None):
        from codeneedle.indexer.pipeline import run_update

        if not self._checked:
            # Writing on top of a damaged file would spread the damage: check once per writer session.
            if not self.store.integrity_ok():
                self.store = self._recover_store(f"index database {self.index_dir / DB_NAME} is damaged")
            self._checked = True
        switched = self._check_model()  # said so itself
        if paths is None and not self.hold_backlog and not switched and (why := self.rebuild_due()) is not None:
            # The pipeline re-reads every file for it (seconds to minutes on a big repository): say why.
            self.notify(f"{why}: reading every file again (code that did not change keeps its vectors)")
        if self._vectors is None and (self.index_dir / VECTORS_NAME).exists():
            # Load the ANN index before the first commit so commits mirror into it; loaded afterwards it
            # would look stale and be rebuilt whole.
            self.vectors()
        try:
            stats = run_update(self._pipeline_writer(), None if paths is None else list(paths), progress=progress,
                               cancel=cancel, backlog=not self.hold_backlog)
            # Our own commits and checkpoints grew the file. A file deleted during the update keeps the identity
            # we knew: None would make lost() miss the deletion and serve the deleted file for good.
            self._identity = self._db_identity() or self._identity
            return stats
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise self._disk_full() from None
            raise unavailable_error(self.index_dir / DB_NAME, exc) from None
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise unavailable_error(self.index_dir / DB_NAME, exc) from None
            self.store = self._recover_store(f"index database is damaged ({exc})")
            raise NeedleError("the index database was damaged and has been reset; run the update again") from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._disk_full() from None
            if exc.errno == errno.EFBIG:
                raise IndexWriteError(f"cannot write the index in {self.index_dir}: a file reached the size limit "
                                      f"for files (ulimit -f: {file_size_limit()} bytes); raise it and run again "
                                      "(work already stored is kept)") from None
            if exc.filename is not None and str(self.index_dir) in str(exc.filename) or exc.errno in (
                    errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT):
                # The index folder went read-only or away (deleted under us: the next call rebuilds it).
                raise NeedleError(f"cannot write the index in {self.index_dir}: {exc.strerror or exc}") from None
            raise

    def _disk_full(self) -> IndexWriteError:
        return IndexWriteError(f"disk full while writing the index in {self.index_dir}; free some space and run "
                               "again (work already stored is kept)")

    def _check_model(self) -> bool:
        """Switch the index to this process's model if it holds another's vectors; whether it did."""
        stored = self.stored_model
        if stored == self.model_id:
            return False
        if stored is not None:
            self.notify(f"index was built with model {stored}; rebuilding it with {self.model_id}")
        # The vectors of a model this Needle can no longer load (retired by an upgrade, or an adapted model since
        # deleted) are never read again, and no bound removed them: after an upgrade from needle-code-v2 a 6,005-chunk
        # index kept all 5,999 of its vectors beside v3's. Those of one it can load stay, for switching back.
        keep = [self.model_id, *([stored] if stored is not None and self._can_embed_with(stored) else [])]
        dim = self.encoder.dim  # loads the encoder, before searches have to wait for the lock
        # One hold of the vectors lock over the switch and the old file's removal: a search between the two read the
        # new model's id beside the old model's file and called it "stale or damaged".
        with self._vectors_lock:
            with self.store.transaction():
                self.store.drop_vectors_except(keep)
                # The chunks stay (they do not depend on the model) and answer keyword searches while each is embedded
                # again: thrown away, an editor's searches after an upgrade found nothing until every file was read
                # again. "indexing": the update embeds every chunk without this model's vector.
                if self.store.counts()[1]:
                    mark_state(self.store, "indexing")
                if self.store.has_chunks_without_doc_spans():
                    # A Needle from before chunker_version wrote them (a downgrade to one, then this upgrade: its
                    # model id is never ours, so the switch is where that shows) and left ours standing: read again.
                    self.store.conn.execute("DELETE FROM meta WHERE key = 'chunker_version'")
                self.store.set_meta("model_id", self.model_id)
                self.store.set_meta("model_name", self.model_name)
                self.store.set_meta("model_path", str(self.model_dir))
                self.store.set_meta("dim", str(dim))
            self._vectors = None
            # The old model's vectors mean nothing now; without the file nothing mistakes them for damage.
            vectors = self.index_dir / VECTORS_NAME
            for stale in (vectors, vectors.with_suffix(vectors.suffix + SIDECAR_SUFFIX)):
                stale.unlink(missing_ok=True)
        return True

    def rebuild_due(self) -> str | None:
        """Why the next full update re-reads or re-embeds the whole index (another Needle's chunker made its chunks,
        or its vectors are another model's: what an upgrade leaves), else None."""
        store = self.reader()
        stored = store.get_meta("model_id")
        if stored is None:
            return None  # a new index: its first build is no rebuild
        if stored != self.model_id:
            return f"index was built with model {stored}"
        chunker = store.get_meta("chunker_version")
        if chunker != CHUNKER_VERSION and store.counts()[0]:
            return f"index was made by another version of Needle (chunker {chunker or 'unrecorded'}, now {CHUNKER_VERSION})"
        return None

    def _can_embed_with(self, model_id: str) -> bool:
        """Whether the model the index records (``model_id``) is one this Needle can still load and embed with."""
        # Untrusted too: one kept from loading unasked loads when named (`--model`), and its vectors were dropped.
        name = self._stored_model_name(trusted=False)
        try:
            return name is not None and bulk_identity(*resolve_model(name)) == model_id
        except (NeedleError, OSError):
            return False

    def _pipeline_writer(self) -> IndexWriter:
        """The narrow view of this index an update works through (the pipeline never sees ``Index``)."""
        return IndexWriter(
            root=self.root, settings=self.settings, store=self.store, model_id=self.model_id,
            # The encoder loads on the first text to embed: an update that embeds nothing never pays for it.
            embed=lambda texts, on_done=None: self.embedder.embed(texts, on_done=on_done),
            commit=self._commit, add_embeddings=self._add_embeddings, save_vectors=self.save_vectors,
        )

    def _commit(self, removed: list[str], files: list, chunks: dict, touch: list) -> tuple[int, int]:
        """Swap files and their chunks in one transaction and mirror it into the ANN index.

        Both happen under the vectors lock, so a search that rebuilds the ANN index concurrently sees the
        store either before or after this commit, never half of it. Returns (chunks removed, chunks added).
        """
        with self._vectors_lock:
            with self.store.transaction():
                self.store.touch_files(touch)
                removed_ids, added = self.store.replace_files(removed, files, chunks)
                generation = self.store.generation
            vi = self._vectors
            if vi is not None:
                vi.remove(removed_ids)
                # Lexical first: chunks whose vector is not cached yet join the ANN index in add_embeddings.
                cached = self.store.cached_subset(self.model_id, added)
                if cached:
                    keys = np.array([cid for cid, _ in cached], dtype=np.uint64)
                    vi.add(keys, self.store.vectors_for(self.model_id, [h for _, h in cached], vi.dim))
                vi.generation = generation
        return len(removed_ids), len(added)

    def _add_embeddings(self, hashes: list[str], vectors: np.ndarray) -> int:
        """Cache vectors and make every chunk with those hashes searchable by meaning, in one transaction.

        The single writer's path for embeddings (whoever computed them). Returns how many chunks gained a vector.
        """
        with self._vectors_lock:
            with self.store.transaction():
                self.store.put_embeddings(self.model_id, hashes, vectors, transaction=False)
                pairs = self.store.chunk_ids_for_hashes(hashes)
                if pairs:  # readers in other processes rebuild their ANN view when the generation moves
                    self.store.set_meta("generation", str(self.store.generation + 1))
                generation = self.store.generation
            vi = self._vectors
            if vi is not None:
                if pairs:
                    row = {h: i for i, h in enumerate(hashes)}
                    keys = np.array([cid for cid, _ in pairs], dtype=np.uint64)
                    vi.remove([int(k) for k in keys])
                    vi.add(keys, np.ascontiguousarray(vectors[[row[h] for _, h in pairs]], dtype=np.float32))
                vi.generation = generation
        return len(pairs)

    def mark_held(self) -> None:
        """Record that the rest of a cancelled update waits (``hold_backlog``): other processes then read the index
        as partial, not as being indexed, though this one stays its writer."""
        from codeneedle.indexer.progress import STATE_KEY

        with self.writing(), self.store.transaction():
            if self.store.get_meta(STATE_KEY) != "ready":
                mark_state(self.store, "held")

    def completeness(self):
        """How far the index is: ``progress.Completeness`` (partial while indexing or after an interrupted run)."""
        from codeneedle.indexer.progress import completeness

        return completeness(self)

    def save_vectors(self) -> None:
        """Persist the ANN index (atomically) if it is current."""
        with self._vectors_lock:
            vi = self._vectors
        if vi is not None and vi.generation == self.store.generation:
            # An update that changed nothing leaves the file as it is (a one-shot search refreshes first).
            if vi.saved_generation != vi.generation or not (self.index_dir / VECTORS_NAME).exists():
                vi.save(self.index_dir / VECTORS_NAME, model_id=self.model_id)
        else:
            self.vectors()

    # -- reading ---------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, lang=None, glob: str | None = None,
               exclude: str | list[str] | tuple[str, ...] | None = None, *,
               qvec: np.ndarray | None = None, rerank: bool | None = None, kind=None,
               within: str | Sequence[str] | None = None) -> list[SearchResult]:
        """Hybrid search: dense top-k fused with BM25, the ranking rules, then the re-ranker; ``lang`` like
        "python,go", ``glob`` like "src/**/*.py" (``!dist/**`` or ``exclude`` leave paths out), ``kind`` like
        "function,method" (``filters.kind_filter``), ``within`` like "src/server" or ["a.py", "lib"] (folders or files
        relative to the root). Scores are query-chunk cosines (``scores.py``). ``qvec``: the
        query's vector, when a multi-index search has already encoded it with this model. ``rerank``: None follows
        the settings (``IndexSettings.rerank``).

        A blank query, k < 1, an unknown language or kind, or a bad glob raise NeedleError.
        """
        return [hit.result() for hit in self.hits(query, k, lang, glob, exclude, qvec=qvec, rerank=rerank, kind=kind,
                                                  within=within)]

    def hits(self, query: str, k: int = 10, lang=None, glob: str | None = None,
             exclude: str | list[str] | tuple[str, ...] | None = None, *,
             qvec: np.ndarray | None = None, rerank: bool | None = None, kind=None,
             within: str | Sequence[str] | None = None) -> list[Hit]:
        """:meth:`search` before its results are built: a merged search builds them only for its winners."""
        filters = self._request(query, k, lang, glob, exclude, kind, within)
        reranker, late = self._second_stage_for(query, rerank)
        with self._reading():
            return self._hits(query, k, filters, qvec, reranker, late)

    def prepare(self, query: str, rerank: bool | None = None) -> Future[np.ndarray]:
        """Start what a search for ``query`` will need that does not depend on the index's contents: the query's
        vector (the future; pass it as :meth:`search`'s ``qvec``) and the second stage's model. A one-shot search
        does this while it refreshes the index."""
        self._preload_second_stage(*self._second_stage_for(query, rerank))
        return self._lexical_pool.submit(lambda: self.encoder.encode_queries([query])[0])

    def _second_stage_for(self, query: str, rerank: bool | None) -> tuple[Reranker | None, bool]:
        """(the cross-encoder or None, whether late interaction runs instead) for ``query``."""
        # Late interaction for a typed question, the cross-encoder for any other query (late_interaction.py);
        # NEEDLE_RERANKER=off or --no-rerank leave the first stage alone for both.
        folder = reranker_dir() if (self.settings.rerank if rerank is None else rerank) else None
        if folder is not None and foreign_script(query) is not None:
            # Both second stages read the query with the encoder's English: over a ranking the keywords made, they
            # moved the words' own match down ("订单 总额" went to late interaction as a typed question: first to
            # third), and gained nothing on bench/non_english.py's dev half (0.955 / 0.968 recalled either way).
            folder = None
        late = folder is not None and late_interaction.applies(self.encoder, query)
        reranker = (self._second_stage("rerank", lambda: shared_reranker(folder), None)
                    if folder is not None and not late else None)
        return reranker, late

    def reranker(self) -> Reranker | None:
        """The second stage (``rerank.py``), shared by every index of the process; None where none is installed."""
        folder = reranker_dir()
        return shared_reranker(folder) if folder is not None else None

    def glob_note(self, glob: str | Sequence[str] | None) -> str | None:
        """Why a search filtered by ``glob`` may have found nothing: no indexed file matches its include glob."""
        include, _ = split_globs(glob)
        if include is None:
            return None
        with self._reading():
            paths = self.reader().file_records()
        if any(path_allowed(path, include, ()) for path in paths):
            return None
        return (f"no indexed file matches the glob {include!r} (globs match paths relative to the repository root "
                f"{self.root}, e.g. 'src/**/*.py')")

    def within_note(self, within: str | Sequence[str] | None) -> str | None:
        """Why a search narrowed to ``within`` may have found nothing: no indexed file is there."""
        narrowed = within_paths(within)
        if not narrowed:
            return None
        with self._reading():
            paths = self.reader().file_records()
        if any(path_within(path, narrowed) for path in paths):
            return None
        return f"no indexed file under {', '.join(narrowed)} in {self.root} (ignored, or not a file Needle indexes)"

    def _request(self, query: str, k: int, lang, glob: str | None, exclude, kind=None, within=None) -> Filters:
        """The filters of a valid search request; NeedleError says what is wrong with an invalid one."""
        check_query(query, k)
        check_query_length(query)
        return Filters(language_filter(lang), *split_globs(glob, exclude), kinds=kind_filter(kind),
                       within=within_paths(within))

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads of a database that was deleted or damaged under us say so instead of answering nothing."""
        reason = self.lost()
        if reason is not None:
            # Never answer [] from a deleted or damaged file as if nothing matched: say it.
            raise IndexLostError(f"{reason}; it is being rebuilt, search again in a moment")
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise unavailable_error(self.index_dir / DB_NAME, exc) from None
            self._checked = False  # the next update checks the file, moves it aside and rebuilds
            raise IndexLostError(f"the index database {self.index_dir / DB_NAME} is damaged ({exc}); it is being "
                                 "rebuilt, search again in a moment") from None

    def _hits(self, query: str, k: int, filters: Filters, qvec: np.ndarray | None,
              reranker: Reranker | None = None, late: bool = False) -> list[Hit]:
        store = self.reader()
        if store.get_meta("model_id") is None:
            return []
        pool = candidate_pool(k)
        self._preload_second_stage(reranker, late)
        if qvec is None:
            # BM25 needs no query vector: run it while the encoder works (both release the GIL).
            lexical_future = self._lexical_pool.submit(lambda: lexical_ranking(self.reader(), query, pool, filters))
            qvec = self.encoder.encode_queries([query])[0]
            lexical = lexical_future.result()
        else:  # nothing to overlap with: a hand-off to another thread would only wait for the GIL
            lexical = lexical_ranking(store, query, pool, filters)
        vectors = self.vectors()
        adapter = self._adapter_file.for_model(self.query_id, vectors.dim)
        # The adapter (what this repository's opened results taught) moves the query for the dense ranking
        # only; displayed scores stay plain cosines, so the "no good match" line means the same with or without.
        dense_q = adapter.apply(qvec) if adapter is not None else qvec
        dense = dense_ranking(store, vectors, self.model_id, dense_q, pool, filters)
        if is_partial(self):
            dense = stand_in_for_missing_vectors(store, self.model_id, dense, lexical)
        rows: dict = {}
        ranked = rank(store, dense, lexical, query, filters, rows_seen=rows)
        depth = late_interaction.DEPTH if late else depth_setting(reranker) if reranker is not None else 0
        found = ranked_rows(store, ranked, max(k, depth), known=rows)
        if late:
            found = self._second_stage("late", lambda: late_interaction.late_rerank(self.encoder, query, found, depth),
                                       found)[:k]
        elif reranker is not None:
            found = self._second_stage("rerank", lambda: rerank(reranker, query, found, depth), found)[:k]
        found = implementations_first(store, found, filters.allows)[:k]
        if self.settings.feedback and feedback_enabled():
            remembered = self._remembered.for_query(query)
            if remembered:  # the same words again: what the user opened for them comes first
                found = put_first(store, found, remembered, filters)[:k]
        # Displayed scores are absolute cosines (scores.py), not the ranking's relative ones.
        rows = {cid: row for cid, _, row in found}

        def embed_missing(ids: list[int]) -> np.ndarray:
            return self.encoder.encode_few([embed_text(chunk_of(rows[cid])) for cid in ids])

        cosines = absolute_scores(store, self.model_id, vectors.dim, qvec, [cid for cid, _, _ in found],
                                  embed_missing)
        return [Hit(score, row, cjk.holds(query, row.name, row.doc, row.text))
                for (_cid, _, row), score in zip(found, cosines, strict=True)]

    def _preload_second_stage(self, reranker: Reranker | None, late: bool) -> None:
        if late or reranker is not None:
            self._preload(self.encoder.bulk if late else reranker.model)

    def _preload(self, load: Callable[[], object]) -> None:
        """Start loading the second stage's model (a one-shot search loads it while the first stage runs); a
        loader returns at once once its model is loaded."""
        with self._loading_lock:
            if self._loading is None or self._loading.done():
                self._loading = self._loader.submit(load)

    def _second_stage(self, kind: str, run: Callable[[], T], fallback: T) -> T:
        """``run()``, or ``fallback`` (the first stage's order) when the optional second stage cannot run: its
        model cannot be built or read (an unwritable cache, a damaged folder). A search never fails for it; the
        reason is said once, and it is tried again after ``SECOND_STAGE_RETRY_S``."""
        failed = self._second_stage_down.get(kind)
        if failed is not None and time.monotonic() - failed < SECOND_STAGE_RETRY_S:
            return fallback
        try:
            result = run()
        except Exception as exc:  # noqa: BLE001 - whatever its model raises, the first stage's answer stands
            if failed is None:
                what = "late interaction" if kind == "late" else "the re-ranker"
                self.notify(f"{what} cannot run ({type(exc).__name__}: {exc}); results keep the first stage's order")
            self._second_stage_down[kind] = time.monotonic()
            return fallback
        self._second_stage_down.pop(kind, None)
        return result

    def similar(self, path: str, line: int, k: int = 10, text: str | None = None, cell: int = 0) -> list[SearchResult]:
        """Code most like the chunk that holds ``line`` (1-based) of ``path``; the chunk itself excluded.

        ``text``: the file as an editor holds it, unsaved edits and all (a function being written is what one
        most wants code like): its chunk is cut from ``text`` and embedded now, and its saved version is left out
        as the chunk itself is. ``cell``: in a notebook, the number of the cell (1-based, as ``SearchResult.cell``)
        ``line`` is a line of, and ``text`` that cell's source."""
        rel = self.relative(path)
        store, vi = self.reader(), self.vectors()
        saved = store.chunks_in_file(rel)
        where = f"{rel} cell {cell} line {line}" if cell else f"{rel}:{line}"
        if text is not None:
            vec, exclude = self._unsaved_target(rel, line, text, saved, cell)
        else:
            rows = [r for r in saved if _holds(r, line, cell)]
            if not rows:
                raise NeedleError(f"no indexed code at {where}{self._why_nothing_at(rel, line, saved, cell)}")
            target = _innermost(rows, cell)
            keys, vecs = store.chunk_vectors(self.model_id, vi.dim, ids=[target.id])
            # A chunk the index has not embedded yet (a file saved a moment ago) is embedded here, as it would be.
            vec = vecs[0] if len(keys) else self.encoder.encode_few([embed_text(chunk_of(target))])[0]
            exclude = frozenset({target.id})
        ranked = dense_ranking(store, vi, self.model_id, vec, k, Filters(), exclude=exclude)
        rows_by_id = store.chunks_by_ids([cid for cid, _ in ranked])
        return [result_from_row(rows_by_id[cid], s) for cid, s in ranked if cid in rows_by_id]

    def _why_nothing_at(self, rel: str, line: int, saved: list[ChunkRow], cell: int) -> str:
        """What ``similar`` can be asked instead when no chunk holds ``line`` of ``rel``: the file is not indexed
        (and why), or the indexed code nearest that line (a blank line or a comment between definitions)."""
        if not saved:
            if (self.root / rel).is_dir():
                return ": that is a folder, not a file"
            if not (self.root / rel).is_file():
                return f": no such file in {self.root}"
            reason = self.reader().skipped_reason(rel)
            if reason:
                return f": {rel} is not indexed (skipped: {reason})"
            done = self.completeness()
            if done.state == "indexing":  # the walk may not have reached it yet
                return f": {rel} is not indexed yet: indexing is still running; ask again shortly"
            if done.partial:
                return f": {rel} is not indexed yet: the index is {done.message()}"
            return f": {rel} is not indexed (ignored, or not a file Needle indexes)"
        if cell:
            saved = [r for r in saved if r.cell == cell]
            if not saved:
                return f": the notebook has no indexed cell {cell}"
        first = lambda r: r.cell_start_line if cell else r.start_line  # noqa: E731
        last = lambda r: r.cell_end_line if cell else r.end_line  # noqa: E731
        near = min(saved, key=lambda r: (max(first(r) - line, line - last(r)), last(r) - first(r)))
        return f"; the nearest indexed code is {near.name or near.kind} at lines {first(near)}-{last(near)}"

    def _unsaved_target(self, rel: str, line: int, text: str, saved: list[ChunkRow],
                        cell: int = 0) -> tuple[np.ndarray, frozenset[int]]:
        """The vector of the chunk of ``text`` (the file, or notebook cell ``cell``'s source) that holds ``line``,
        and the ids of its saved versions."""
        # tree-sitter and the walker's reader: only for unsaved text
        from codeneedle.indexer.chunker import chunk_notebook_cell, chunk_source
        from codeneedle.indexer.formats import size_cap
        from codeneedle.indexer.languages import language_for_source
        from codeneedle.indexer.walker import SourceFile, read_source

        data = text.encode("utf-8", "surrogatepass")
        if len(data) > size_cap(rel, self.settings.max_file_bytes):
            raise NeedleError(f"{rel} is larger than maxFileBytes ({self.settings.max_file_bytes} bytes)")
        if cell:
            # The saved notebook says how the cell reads (its language, its type, the headings above it).
            notebook = read_source(SourceFile(rel, self.root / rel, 0, 0, str(self.root)), self.settings.max_file_bytes)
            found = chunk_notebook_cell(rel, notebook if isinstance(notebook, bytes) else b"", cell, text)
        else:
            found = chunk_source(rel, data, language_for_source(rel, data))
        chunks = [c for c in found if _holds(c, line, cell)]
        if not chunks:
            raise NeedleError(f"no code at {f'{rel} cell {cell} line {line}' if cell else f'{rel}:{line}'}")
        target = _innermost(chunks, cell)
        vec = self.encoder.encode_few([embed_text(target)])[0]
        # Windows of a file share its name, so only those over the same lines are the target's saved version.
        windows = target.kind in (BLOCK, TEXT)
        exclude = frozenset(r.id for r in saved if r.kind == target.kind and r.name == target.name
                            and (not windows or _overlap(r, target, cell)))
        return vec, exclude

    def relative(self, path: str | Path) -> str:
        """A path (absolute, or relative to root) as root-relative POSIX; refuses anything outside the root."""
        p = Path(path)
        full = (p if p.is_absolute() else self.root / p).resolve()
        try:
            return full.relative_to(self.root).as_posix()
        except ValueError:
            raise PathOutsideRootError(f"{path} is outside the indexed folder {self.root}") from None

    def status(self, state: str | None = None) -> IndexStatus:
        """What the index holds; ``state`` is the caller's view (server), else read from the index itself."""
        store = self.reader()
        files, chunks = store.counts()
        done = self.completeness()
        if state in (None, "ready", "indexing"):
            state = done.state
        last = store.get_meta("last_update")
        return IndexStatus(
            root=str(self.root),
            index_dir=str(self.index_dir),
            model=store.get_meta("model_id") or self.model_id,
            files=files,
            chunks=chunks,
            size_bytes=store.disk_size() + _size(self.index_dir / VECTORS_NAME),
            reclaimable_bytes=store.space().free_bytes,
            last_update=datetime.fromtimestamp(float(last), UTC).isoformat(timespec="seconds") if last else None,
            skipped=json.loads(store.get_meta("skipped_counts") or "{}"),
            languages=store.language_counts(),
            state=state,
            chunks_embedded=done.chunks_embedded if done.partial else chunks,
            query_adapter=self._adapter_status(),
            query_tower=str(self.query_tower) if self.query_tower else None,
            **self._reranker_status(),
            shared_cache=shared_cache.usage(),
            rebuild_due=self.rebuild_due(),
            other_model=done.other_model,
        )

    def _reranker_status(self) -> dict:
        reranker = self.reranker() if self.settings.rerank else None
        if reranker is None:
            return {}
        return {"reranker": str(reranker.folder), "rerank_depth": depth_setting(reranker)}

    def _adapter_status(self) -> dict | None:
        saved = self._adapter_file.current()
        if saved is None:
            return None
        in_use = self._adapter_file.for_model(self.query_id, self.vectors().dim) is not None
        return {**saved.info, "model": saved.model_id, "in_use": in_use}


def _shorter_than_header(db: Path, size: int) -> bool:
    """Whether the file is shorter than its own SQLite header says (pages x page size): it was truncated.

    The header's page count is trusted only when SQLite marks it valid (bytes 92-95 equal the change counter at
    24-27); a file shorter than the 100-byte header but not empty is truncated too.
    """
    if size == 0:
        return False  # a fresh file SQLite has not written yet
    # Never open() + close() the file here: that drops this process's SQLite locks on it (dbheader.py).
    head = read_header(db)
    if head is None:
        return False
    if len(head) < 100:
        return True
    if head[:16] != b"SQLite format 3\0" or head[92:96] != head[24:28]:
        return False
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if size >= int.from_bytes(head[28:32], "big") * page_size:
        return False
    # A checkpoint the disk filled under (ENOSPC once page 1 was written) leaves the file short for good, while the
    # log holds every page: taken for a truncation, the whole index was moved aside and rebuilt from nothing.
    return not checkpoint_unfinished(db)


def check_query_length(query: str) -> None:
    """Every door gets the same cap (an unbounded 10 MB query once took 300 s and 2.4 GB); checked before the
    query is encoded."""
    if len(query) > MAX_QUERY_CHARS:
        raise NeedleError(f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})")


def stays_shorter_than_header(db: Path, size: int, looks: int = 4, pause: float = 0.05) -> bool:
    """Whether the file is truncated: shorter than its header says, and still so, at the same size, a moment later.

    A checkpoint writes page 1 (and the page count in it) before the pages that grow the file: in that window a
    sound file looks truncated (seen 32 times in 40k looks during one update, and the language server then
    rebuilt a healthy index). A file that keeps growing is being written, not truncated.
    """
    for _ in range(looks):
        if not _shorter_than_header(db, size):
            return False
        time.sleep(pause)
        try:
            later = db.stat().st_size
        except OSError:
            return False  # gone: the next look reports the deletion
        if later == size:
            return _shorter_than_header(db, size)
        size = later
    return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _innermost(chunks: Sequence[T], cell: int = 0) -> T:
    """The innermost of the chunks around a line (of a notebook cell when ``cell``): a method rather than its class."""
    if cell:  # the cell's own lines: a source written as one string puts every line on one line of the file
        return min(chunks, key=lambda c: (c.cell_end_line - c.cell_start_line, c.kind == CLASS))
    return min(chunks, key=lambda c: (c.end_line - c.start_line, c.kind == CLASS))


def _holds(chunk: Chunk | ChunkRow, line: int, cell: int = 0) -> bool:
    """Whether ``chunk`` holds ``line`` of its file, or (``cell``) line ``line`` of that notebook cell."""
    if cell:
        return chunk.cell == cell and chunk.cell_start_line <= line <= chunk.cell_end_line
    return chunk.start_line <= line <= chunk.end_line


def _overlap(a: Chunk | ChunkRow, b: Chunk | ChunkRow, cell: int = 0) -> bool:
    """Whether two chunks share a line of the file, or (``cell``) of that notebook cell."""
    if cell:
        return a.cell == b.cell and a.cell_start_line <= b.cell_end_line and b.cell_start_line <= a.cell_end_line
    return a.start_line <= b.end_line and b.start_line <= a.end_line
