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
# How often a run waiting for texts another run claimed looks for their vectors.
CLAIM_POLL_SECONDS = 0.2


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
                 row.doc_end_byte, row.cell, row.cell_start_line, row.cell_end_line)


@dataclass
class EmbedOutcome:
    """What ``embed_pending`` did: texts the encoder read, texts whose vectors came from the machine's shared cache
    (``shared_cache``), and whether every pending chunk has its vector (False: cancelled)."""

    embedded: int = 0
    reused: int = 0
    finished: bool = True


def embed_pending(index: IndexWriter, *, cancel: threading.Event | None = None,
                  on_progress: Callable[[int, int, int], None] | None = None,
                  among: list[str] | None = None) -> EmbedOutcome:
    """Give every chunk lacking a vector for the index's model one: from the machine's shared cache when this
    exact text was embedded before (another clone, a rebuilt index), else from the encoder (``index.embed``). Texts
    another run at work on the same code has claimed are left to it, and its vectors taken once it stores them.

    ``among``: content hashes known to hold every chunk that may lack one (a watcher's few files), so the
    whole index need not be scanned. ``on_progress(done, to_do, reused)`` is called as batches finish; ``done``
    counts the ``reused`` vectors too, which took no encoder time (a rate over ``done`` alone would leap).
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
    report = on_progress or (lambda a, b, c: None)
    report(0, pending_total, 0)
    shared = SharedCache.open(index.model_id, _dim(store)) if pending_total else None

    def step(done: int) -> None:
        nonlocal pending_total
        # Rows in one window may share a hash with chunks added later; the count can overshoot slightly.
        pending_total = max(pending_total, done)
        report(done, pending_total, outcome.reused)

    try:
        while True:
            rows = store.pending_chunks(index.model_id, WINDOW, among)
            if not rows:
                return outcome
            # By length (little padding per batch), definitions first as the store gave them (searches are for them).
            rows.sort(key=lambda r: (r.kind in WINDOW_KINDS, len(r.text)))
            texts = [embed_text(chunk_of(r)) for r in rows]
            todo = [_Text(r, t, text_key(t) if shared is not None else "") for r, t in zip(rows, texts, strict=True)]
            if shared is not None:
                # What another index already embedded is committed first, in one go: it must not pass through the
                # groups below, whose size follows the encoder's rate (a group of reused vectors takes no time, and
                # a group sized by it would hold the encoder for minutes between commits and cancel checks).
                todo = _take_shared(index, shared, todo, outcome)
                step(outcome.embedded + outcome.reused)
            waiting: list[_Text] = []  # claimed by another run at work on the same code
            while todo or waiting:
                if cancel is not None and cancel.is_set():
                    outcome.finished = False
                    return outcome
                if not todo:
                    todo, waiting = _after_others(index, shared, waiting, outcome, cancel), []
                    step(outcome.embedded + outcome.reused)
                    continue
                part, todo = todo[:group], todo[group:]
                if shared is not None:
                    # Another index of the same code may have stored these since the window was looked up.
                    part = _take_shared(index, shared, part, outcome)
                    taken = shared.claim([t.key for t in part])
                    waiting += [t for t in part if t.key in taken]
                    part = [t for t in part if t.key not in taken]
                if not part:
                    step(outcome.embedded + outcome.reused)
                    continue
                base = outcome.embedded + outcome.reused
                began = time.perf_counter()
                vectors = index.embed([t.text for t in part],
                                      lambda n, b=base: report(b + n, max(pending_total, b + n), outcome.reused))
                elapsed = time.perf_counter() - began
                if shared is not None:
                    shared.put([t.key for t in part], vectors)
                index.add_embeddings([t.row.hash for t in part], vectors)
                outcome.embedded += len(part)
                step(outcome.embedded + outcome.reused)
                # Size the next group so it takes about COMMIT_SECONDS at the rate just seen.
                rate = len(part) / max(elapsed, 1e-3)
                group = int(min(MAX_GROUP, max(MIN_GROUP, rate * COMMIT_SECONDS)))
    finally:
        if shared is not None:
            shared.close()


@dataclass(frozen=True, slots=True)
class _Text:
    """A pending chunk, the text the encoder reads of it, and that text's key in the shared cache."""

    row: ChunkRow
    text: str
    key: str


def _take_shared(index: IndexWriter, shared: SharedCache, texts: list[_Text], outcome: EmbedOutcome) -> list[_Text]:
    """Commit the vectors ``shared`` holds for ``texts``; returns those still without one."""
    found = shared.get([t.key for t in texts])
    if not found:
        return texts
    hit = [t for t in texts if t.key in found]
    index.add_embeddings([t.row.hash for t in hit], np.stack([found[t.key] for t in hit]))
    outcome.reused += len(hit)
    return [t for t in texts if t.key not in found]


def _after_others(index: IndexWriter, shared: SharedCache | None, waiting: list[_Text], outcome: EmbedOutcome,
                  cancel: threading.Event | None) -> list[_Text]:
    """Wait while other runs embed ``waiting``, taking their vectors as they are stored; returns what none of them
    is at work on any longer (stopped, killed, stalled past CLAIM_SECONDS), for this run to embed."""
    while waiting and shared is not None:
        waiting = _take_shared(index, shared, waiting, outcome)
        if not waiting or (cancel is not None and cancel.is_set()):
            return waiting
        if not shared.claimed_by_others([t.key for t in waiting]):
            return waiting
        time.sleep(CLAIM_POLL_SECONDS)
    return waiting


def _dim(store) -> int:
    try:
        return int(store.get_meta("dim") or 0)
    except ValueError:
        return 0
