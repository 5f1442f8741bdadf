"""The usearch ANN file: vectors keyed by chunk id, saved atomically, always rebuildable from SQLite."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from codeneedle.indexer import native
from codeneedle.indexer.lock import process_alive

SIDECAR_SUFFIX = ".json"
# Half precision halves the index's memory (~75 MB per 100k chunks at 384 dims) at no measurable recall cost;
# the exact vectors stay in SQLite.
DTYPE = "f16"
# Up to this many vectors a search is exact (usearch's brute force: 0.6 ms at 10k, 3 ms at 50k on 2 cores): HNSW's
# graph depends on thread timing when it is built, and on small indexes it misses neighbours. Two builds of the
# same 359-chunk repository, byte-identical vectors: 35 of 80 queries got a different top 50 through HNSW (5 a
# different top 10); exact search gives both the same answer.
EXACT_SEARCH_LIMIT = 50_000
# Up to that limit the graph is never searched, so it is built as cheaply as usearch allows: 20k vectors in 0.3 s
# instead of 6.2 s, and 2k more in 0.05 s instead of 1.7 s (2 cores, 384 dims). A process that reads while another
# one indexes takes in each of its commits this way (Index._catch_up); before, every search there rebuilt the
# index (5 s at 20k). An index that grows past the limit gets the full graph once (``_full_graph``), when it is
# saved: searches over a small graph are exact whatever its size (brute force: ~3 ms at 50k), so only a walk of the
# saved file needs it. Built on every add or rebuild past the limit, it made a reader's one-shot search take 14.6 s
# at 52,745 vectors (the file is stale all through a first build, so each `needle search` rebuilt it), and a
# resumed run's commits of cached vectors stall 17 s mid-read.
SMALL_GRAPH = {"connectivity": 4, "expansion_add": 8}
FULL_CONNECTIVITY = 16  # usearch's default
SMALL_REGRAPH_ADDS = 256  # more vectors than this for a full graph below the limit: rebuild it small first
# usearch keeps the slot of a removed vector (reused by later adds, never given back): after half of a 332-file
# repository's files were deleted, its file stayed 2.26 MB for 1,334 of 2,745 vectors. A small graph whose file
# would be more than this many times its vectors' bytes (a fresh one: 1.07 times) is saved as a fresh copy.
SLACK_FACTOR = 2


class VectorIndex:
    """A cosine HNSW index over unit vectors; thread-safe for one writer and many searchers."""

    def __init__(self, dim: int, generation: int = -1, full_graph: bool = False):
        # onnxruntime's native module must be loaded before usearch's: the other order segfaults on import
        # (usearch 2.26.6 + onnxruntime 1.32.0, reproduced with `import usearch.compiled; import onnxruntime`),
        # and any process that searches may later embed. Costs ~0.15 s once per process.
        native.onnxruntime()

        self.dim = dim
        self.generation = generation
        self.saved_generation: int | None = None  # the generation the file on disk holds, when known
        self._index = self._new_index(full_graph)
        self._lock = threading.RLock()

    def _new_index(self, full_graph: bool):
        from usearch.index import Index

        return Index(ndim=self.dim, metric="cos", dtype=DTYPE, **({} if full_graph else SMALL_GRAPH))

    def __len__(self) -> int:
        return len(self._index)

    @classmethod
    def build(cls, dim: int, keys: np.ndarray, vectors: np.ndarray, generation: int) -> VectorIndex:
        """A fresh index holding ``vectors`` under ``keys``: the small graph (searched exactly) until it is saved."""
        vi = cls(dim, generation)
        vi.add(keys, vectors)
        return vi

    @classmethod
    def load(cls, path: Path, *, dim: int, model_id: str, generation: int) -> VectorIndex | None:
        """The saved index if it is intact and matches the store's generation and model, else None.

        The checksum is verified before usearch parses a byte: a damaged file must never reach native code.
        """
        try:
            side = json.loads(path.with_suffix(path.suffix + SIDECAR_SUFFIX).read_text())
            if (side.get("generation"), side.get("model_id"), side.get("dim"), side.get("dtype")) != (
                generation, model_id, dim, DTYPE):
                return None
            data = path.read_bytes()
            if len(data) != side.get("size") or _digest(data) != side.get("digest"):
                return None
            vi = cls(dim, generation)
            vi._index.load(bytearray(data))
            if len(vi._index) != side.get("count"):
                return None
            vi.saved_generation = generation  # a small graph past the limit (an older file) is searched exactly
            return vi
        except (OSError, ValueError, RuntimeError, KeyError, TypeError):
            return None

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            with self._lock:
                full = self._index.connectivity >= FULL_CONNECTIVITY
                if full and len(keys) > SMALL_REGRAPH_ADDS and len(self._index) + len(keys) <= EXACT_SEARCH_LIMIT:
                    # A full graph (from a file an older Needle wrote) below the limit: cheaper to start a small
                    # one than to insert many vectors into it.
                    self._index = self._copy(self._index, full_graph=False)
                self._index.add(np.asarray(keys, dtype=np.uint64), np.asarray(vectors, dtype=np.float32))

    def _full_graph(self) -> None:
        """Past the exact-search limit a saved file's graph is walked: a small one is rebuilt in full, once. The rebuild
        (tens of seconds at 50k vectors) holds no lock: meanwhile searches stay exact, over the small graph's
        vectors, and whatever is added or removed meanwhile is carried over before the swap."""
        with self._lock:
            if len(self._index) <= EXACT_SEARCH_LIMIT or self._index.connectivity >= FULL_CONNECTIVITY:
                return
            small = self._index
        full = self._copy(small, full_graph=True)
        with self._lock:
            if self._index is not small:
                return  # replaced meanwhile (another rebuild)
            before, now = np.asarray(full.keys, dtype=np.uint64), np.asarray(small.keys, dtype=np.uint64)
            added, gone = np.setdiff1d(now, before), np.setdiff1d(before, now)
            if len(added):
                full.add(added, np.asarray(small.get(added), dtype=np.float32))
            if len(gone):
                full.remove(gone)
            self._index = full

    def _copy(self, index, full_graph: bool):
        """A new usearch index holding ``index``'s vectors, with the small or the full graph."""
        keys = np.asarray(index.keys, dtype=np.uint64)
        copy = self._new_index(full_graph)
        if len(keys):
            copy.add(keys, np.asarray(index.get(keys), dtype=np.float32))
        return copy

    def keys(self) -> np.ndarray:
        """The keys (chunk ids) the index holds."""
        with self._lock:
            return np.asarray(self._index.keys, dtype=np.uint64)

    def remove(self, keys: list[int] | np.ndarray) -> None:
        if len(keys):
            with self._lock:
                self._index.remove(np.asarray(keys, dtype=np.uint64))

    def search(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, cosine similarities) of the nearest ``count`` vectors, best first."""
        with self._lock:
            size = len(self._index)
            if size == 0:
                return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32)
            # A small graph is never walked (it is being rebuilt in full when it holds more than the limit).
            exact = size <= EXACT_SEARCH_LIMIT or self._index.connectivity < FULL_CONNECTIVITY
            m = self._index.search(np.asarray(vector, dtype=np.float32), min(count, size), exact=exact)
            return np.asarray(m.keys), 1.0 - np.asarray(m.distances, dtype=np.float32)

    def save(self, path: Path, *, model_id: str) -> None:
        """Write to a temp file, fsync, rename over; the sidecar (checksum, generation) goes last, the same way.
        Past the exact-search limit the file holds the full graph, which a loader walks."""
        self._full_graph()
        with self._lock:
            index = self._index
            if (index.connectivity < FULL_CONNECTIVITY and len(index) <= EXACT_SEARCH_LIMIT
                    and index.serialized_length > SLACK_FACTOR * len(index) * self.dim * 2):  # f16: 2 bytes
                # The slots of removed vectors go (a copy of 20k vectors: 0.3 s); a full graph is not rebuilt here.
                self._index = self._copy(index, full_graph=False)
            data = bytes(self._index.save())
            count = len(self._index)
            generation = self.generation
        _atomic_write(path, data)
        side = {
            "generation": generation,
            "model_id": model_id,
            "dim": self.dim,
            "dtype": DTYPE,
            "count": count,
            "size": len(data),
            "digest": _digest(data),
        }
        _atomic_write(path.with_suffix(path.suffix + SIDECAR_SUFFIX), json.dumps(side).encode())
        self.saved_generation = generation


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    _remove_orphans(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Left behind, each failed save on a full disk kept its part of the file (a 9 MB index: 0.5-1 MB a run),
        # taking the space the next run needed.
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_orphans(path: Path) -> None:
    """Temp files of ``path`` that a process killed while writing left (SIGKILL, SIGXFSZ past ``ulimit -f``): only
    the index's writer saves, so one whose process is gone is never finished."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)

