"""The semantic half of an update: embed every chunk that has no vector yet, committing every few seconds.

Chunks (and so keyword search) are committed first by the pipeline; this step fills in vectors behind them.
A kill loses at most the group being embedded (COMMIT_SECONDS of encoder work). The encoder sits behind one
seam, ``Embedder.embed(texts) -> (n, dim) float32``, so another engine (a Ray pool, a remote GPU) can replace it;
whatever computes the vectors, this module is the single writer that commits them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from codeneedle.indexer.chunks import WINDOW_KINDS, Chunk
from codeneedle.indexer.encoder import embed_text
from codeneedle.indexer.settings import seconds_from_env
from codeneedle.indexer.shared_cache import SharedCache, text_key

if TYPE_CHECKING:
    from codeneedle.indexer.encoder import Encoder
    from codeneedle.indexer.store import ChunkRow
    from codeneedle.indexer.writer import IndexWriter

# Target encoder work per commit: a kill loses at most about this much (the issue allows 5 s).
COMMIT_SECONDS = seconds_from_env("NEEDLE_COMMIT_SECONDS", 2.0)
# Pending chunks fetched at once and sorted by length: long runs of similar lengths waste little padding.
WINDOW = 4096
# The first group is small because the rate is unknown: 8 chunks are ~4 s even at the 2 chunks/s measured on
# an overloaded 2-core machine; later groups follow the measured rate.
FIRST_GROUP, MIN_GROUP, MAX_GROUP = 8, 4, 2048


class Embedder(Protocol):
    """Texts -> float32 (n, dim) unit vectors, in order. ``on_done(n)`` reports texts finished so far."""

    def embed(self, texts: list[str], on_done: Callable[[int], None] | None = None) -> np.ndarray: ...


class EncoderEmbedder:
    """The local encoder (ONNX Runtime on every core, or CUDA) as an Embedder."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder

    def embed(self, texts: list[str], on_done: Callable[[int], None] | None = None) -> np.ndarray:
        count = 0

        def step(n: int) -> None:  # the encoder reports each batch; the seam reports texts done so far
            nonlocal count
            count += n
            if on_done:
                on_done(count)

        return self.encoder.encode(texts, on_batch=step)


def chunk_of(row: ChunkRow) -> Chunk:
    return Chunk(row.path, row.language, row.kind, row.name, row.start_line, row.end_line, row.start_byte,
                 row.end_byte, row.text, row.doc, row.doc_start_line, row.doc_end_line, row.doc_start_byte,
                 row.doc_end_byte)


@dataclass
class EmbedOutcome:
    """What ``embed_pending`` did: texts the encoder read, texts whose vectors came from the machine's shared cache
    (``shared_cache``), and whether every pending chunk has its vector (False: cancelled)."""

    embedded: int = 0
    reused: int = 0
    finished: bool = True


def embed_pending(index: IndexWriter, *, cancel: threading.Event | None = None,
                  on_progress: Callable[[int, int], None] | None = None,
                  among: list[str] | None = None) -> EmbedOutcome:
    """Give every chunk lacking a vector for the index's model one: from the machine's shared cache when this
    exact text was embedded before (another clone, a rebuilt index), else from the encoder (``index.embed``).

    ``among``: content hashes known to hold every chunk that may lack one (a watcher's few files), so the
    whole index need not be scanned. ``on_progress(done, to_do)`` is called as batches finish.
    Stops early (finished False) on ``cancel``.
    """
    store = index.store
    if among is not None:
        among = store.missing_embeddings(index.model_id, among)
        pending_total = len(among)
    else:  # texts, not chunk rows: chunks that repeat one text (copies, vendored files) share one vector
        pending_total = store.pending_texts(index.model_id)
    outcome = EmbedOutcome()
    group = FIRST_GROUP
    report = on_progress or (lambda a, b: None)
    report(0, pending_total)
    shared = SharedCache.open(index.model_id, _dim(store)) if pending_total else None

    def step(done: int) -> None:
        nonlocal pending_total
        # Rows in one window may share a hash with chunks added later; the count can overshoot slightly.
        pending_total = max(pending_total, done)
        report(done, pending_total)

    try:
        while True:
            rows = store.pending_chunks(index.model_id, WINDOW, among)
            if not rows:
                return outcome
            # By length (little padding per batch), definitions first as the store gave them (searches are for them).
            rows.sort(key=lambda r: (r.kind in WINDOW_KINDS, len(r.text)))
            texts = [embed_text(chunk_of(r)) for r in rows]
            keys = [text_key(t) for t in texts] if shared is not None else []
            if shared is not None:
                # What another index already embedded is committed first, in one go: it must not pass through the
                # groups below, whose size follows the encoder's rate (a group of reused vectors takes no time, and
                # a group sized by it would hold the encoder for minutes between commits and cancel checks).
                rows, texts, keys = _take_shared(index, shared, rows, texts, keys, outcome)
                step(outcome.embedded + outcome.reused)
            start = 0
            while start < len(rows):
                if cancel is not None and cancel.is_set():
                    outcome.finished = False
                    return outcome
                part, part_texts, part_keys = (rows[start : start + group], texts[start : start + group],
                                               keys[start : start + group])
                start += len(part)
                base = outcome.embedded + outcome.reused
                began = time.perf_counter()
                vectors = index.embed(part_texts, lambda n, b=base: report(b + n, max(pending_total, b + n)))
                elapsed = time.perf_counter() - began
                if shared is not None:
                    shared.put(part_keys, vectors)
                index.add_embeddings([r.hash for r in part], vectors)
                outcome.embedded += len(part)
                step(outcome.embedded + outcome.reused)
                # Size the next group so it takes about COMMIT_SECONDS at the rate just seen.
                rate = len(part) / max(elapsed, 1e-3)
                group = int(min(MAX_GROUP, max(MIN_GROUP, rate * COMMIT_SECONDS)))
    finally:
        if shared is not None:
            shared.close()


def _take_shared(index: IndexWriter, shared: SharedCache, rows: list[ChunkRow], texts: list[str], keys: list[str],
                 outcome: EmbedOutcome) -> tuple[list[ChunkRow], list[str], list[str]]:
    """Commit the vectors ``shared`` holds for ``texts`` (cache ``keys``); returns the rows, texts and keys still
    without one."""
    found = shared.get(keys)
    if not found:
        return rows, texts, keys
    hit = [i for i, k in enumerate(keys) if k in found]
    index.add_embeddings([rows[i].hash for i in hit], np.stack([found[keys[i]] for i in hit]))
    outcome.reused += len(hit)
    rest = [i for i, k in enumerate(keys) if k not in found]
    return [rows[i] for i in rest], [texts[i] for i in rest], [keys[i] for i in rest]


def _dim(store) -> int:
    try:
        return int(store.get_meta("dim") or 0)
    except ValueError:
        return 0
