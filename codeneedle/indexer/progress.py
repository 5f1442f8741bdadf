"""How far an index is (complete, being indexed, or interrupted) and how fast indexing goes (rate, ETA)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from codeneedle.indexer.lock import process_alive

if TYPE_CHECKING:
    from codeneedle.indexer.store import Store

STATE_KEY = "index_state"


class Index(Protocol):
    """What these functions read of ``index.Index`` (named here: ``index`` imports this module)."""

    model_id: str
    index_dir: Path

    @property
    def is_writer(self) -> bool: ...

    def reader(self) -> Store: ...


def mark_state(store: Store, state: str) -> None:
    """Record "indexing" when an update starts changing chunks, "ready" once every chunk has its vector, "held"
    while the rest of a cancelled update waits for the next full one (partial, though a writer is alive)."""
    store.set_meta(STATE_KEY, state)


@dataclass(frozen=True)
class Completeness:
    """``state``: ready | indexing (a writer is at work) | partial (an indexing run stopped before the end)."""

    state: str
    chunks_embedded: int = 0
    chunks_total: int = 0
    # The model the stored vectors are of, when it is not this process's (an older Needle built the index, or one
    # still writes it): searches here match keywords only until the index is embedded again with ours.
    other_model: str | None = None

    @property
    def partial(self) -> bool:
        return self.state != "ready"

    def message(self) -> str:
        """One line for people: ``indexing (1200 of 5000 chunks embedded)``."""
        if not self.partial:
            return "ready"
        if self.other_model is not None:
            return (f"partial (its vectors are {self.other_model}'s, not this Needle's model: keyword matches only "
                    "until `needle index` embeds it again, once no other needle process writes it)")
        counts = f"{self.chunks_embedded} of {self.chunks_total} chunks embedded"
        if self.chunks_total and self.chunks_embedded >= self.chunks_total:
            # Stopped (or still) reading files: "46447 of 46447 chunks embedded" beside "partial" read as a
            # contradiction after a kill while a big folder was being read.
            counts = f"{counts}; files still to read"
        if self.state == "indexing":
            return f"indexing ({counts})"
        return f"partial ({counts}; indexing was interrupted: run `needle index` to finish)"

    def to_dict(self) -> dict:
        return {"state": self.state, "chunks_embedded": self.chunks_embedded, "chunks": self.chunks_total}


def completeness(index: Index) -> Completeness:
    """Read the index's own record; counts are only computed while it is partial (searches stay cheap)."""
    store = index.reader()
    state = store.get_meta(STATE_KEY)
    stored = store.get_meta("model_id")
    if stored not in (None, index.model_id):
        # Its vectors are another model's: "ready" presented keyword-only results as complete (a new Needle
        # searching while an older one's editor server writes the index, or `--no-refresh` after an upgrade).
        done, total = store.embedded_counts(index.model_id)
        return Completeness("partial", done, total, other_model=stored)
    if state == "ready":
        return Completeness("ready")
    done, total = store.embedded_counts(index.model_id)
    alive = state != "held" and writer_alive(index)
    if state is None and done == total and not (total == 0 and alive):
        return Completeness("ready")  # an index written before this record existed, complete (not one just begun)
    return Completeness("indexing" if alive else "partial", done, total)


def is_partial(index: Index) -> bool:
    """Cheap: one meta read while the index is ready (a search's hot path)."""
    state = index.reader().get_meta(STATE_KEY)
    return state != "ready" and (state is not None or completeness(index).partial)


def stand_in_for_missing_vectors(store: Store, model: str, dense: list[tuple[int, float]],
                                 lexical: list[int]) -> list[tuple[int, float]]:
    """While vectors are still being filled in, a keyword hit without one would lose to any embedded chunk
    (it gets no dense vote at all). Let the lexical ranking vote for it on the dense side too, at its lexical
    rank: once every chunk has its vector this never runs and the ranking is the usual one."""
    missing = store.unembedded_ids(model, lexical)
    if not missing:
        return dense
    out = list(dense)
    for rank, cid in enumerate(lexical):
        if cid in missing:
            out.insert(min(rank, len(out)), (cid, 0.0))
    return out


def progress_text(phase: str, files_done: int, files_total: int, embedded: int, to_embed: int, rate: float,
                  eta_s: float | None) -> tuple[str, int]:
    """(message, percentage) for a progress bar: files while reading them (0-5 %), then chunks (5-99 %)."""
    if phase == "embed":
        pct = 5 + int(94 * embedded / to_embed) if to_embed else 99
        return f"embedding {embedded}/{to_embed} chunks{embed_pace(rate, eta_s, embedded)}", min(pct, 99)
    if phase == "index":
        pct = int(5 * files_done / files_total) if files_total else 5
        return f"reading {files_done}/{files_total} files", pct
    return ("scanning files", 0) if phase == "scan" else ("saving", 99)


def embed_pace(rate: float, eta_s: float | None, embedded: int, sep: str = ", ") -> str:
    """``, 98.1/s, ETA 5:55`` beside an embedding count (``sep`` before each part). No rate yet, or every vector
    so far came from the cache: nothing, or before the first one ``loading the encoder``: on a machine's first run
    that is seconds of building its ONNX graph, which looked hung at "0/N" unsaid."""
    if rate > 0:
        return f"{sep}{rate:.1f}/s" + (f"{sep}ETA {format_eta(eta_s)}" if eta_s is not None else "")
    return f"{sep}loading the encoder" if embedded == 0 else ""


def format_eta(seconds: float) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def writer_alive(index: Index) -> bool:
    """Whether some process (this one included) is the index's writer now; probing the lock itself could make
    a starting writer fail, so the recorded pid is checked instead."""
    if index.is_writer:
        return True
    try:
        pid = int((index.index_dir / "writer.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    return process_alive(pid) and _holds_lock(index)


def _holds_lock(index: Index) -> bool:
    # The pid is alive, but it may have finished writing long ago (a pid file outlives the lock). /proc/locks
    # lists flock()s by inode without touching them; elsewhere the pid's liveness has to do.
    lock = index.index_dir / "writer.lock"
    try:
        inode = lock.stat().st_ino
        table = open("/proc/locks").read().splitlines()  # noqa: SIM115 - a one-off read
    except OSError:
        return True
    if not any("FLOCK" in line for line in table):
        return True  # a kernel that lists no flock at all (gVisor): the pid's liveness has to do
    for line in table:
        fields = line.split()
        dev_inode = next((f for f in fields if f.count(":") == 2), "")
        if "FLOCK" in fields and dev_inode.rsplit(":", 1)[-1] == str(inode):
            return True
    return False


class RateMeter:
    """Chunks per second over the recent past (a 60 s window), and the ETA it implies.

    Not shorter: ``embedding.embed_pending`` takes pending chunks 4,096 at a time and embeds each window short ones
    first, so the pace falls and rises in a sawtooth (~40 s a window at ~100 chunks/s on 2 cores). Over 20 s the
    ETA followed it: indexing 52,745 chunks of site-packages, the predicted end swung between -36 % and +22 % of the
    time really left (median error 14 %); over 60 s, within 26 % (median 8 %)."""

    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self.samples: list[tuple[float, int]] = []

    def update(self, done: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.window_s:
            self.samples.pop(0)

    @property
    def rate(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, remaining: int) -> float | None:
        """Seconds left at the current rate; None until there is a rate."""
        rate = self.rate
        return remaining / rate if rate > 0 else None
