"""Staged curriculum: which batches a run sees and which negatives each stage mines.

Easy first (random batches, in-batch negatives only), then harder: batches drawn from few repositories (in-batch
negatives from the same codebase), BM25-hard negatives, and finally model-hard negatives mined with the
encoder as it is at that point of training.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

NEGATIVE_KINDS = ("none", "random", "bm25", "model")
BATCHINGS = ("random", "repo")


@dataclass(frozen=True, slots=True)
class Stage:
    """One phase of training: a share of the steps, a negative miner and a batching rule."""

    name: str
    fraction: float
    negatives: str = "none"
    batching: str = "random"

    def __post_init__(self) -> None:
        if self.negatives not in NEGATIVE_KINDS or self.batching not in BATCHINGS:
            raise ValueError(f"bad stage {self}")


CURRICULA: dict[str, tuple[Stage, ...]] = {
    "none": (Stage("in-batch", 1.0),),
    "random": (Stage("random", 1.0, "random"),),
    "bm25": (Stage("bm25", 1.0, "bm25", "repo"),),
    "model": (Stage("model", 1.0, "model", "repo"),),
    "staged": (Stage("easy", 0.4), Stage("bm25", 0.3, "bm25", "repo"), Stage("model", 0.3, "model", "repo")),
}


def stage_steps(stages: Sequence[Stage], total_steps: int) -> list[int]:
    """Split ``total_steps`` over the stages by their fractions (the last stage takes the rounding)."""
    total = sum(s.fraction for s in stages)
    counts = [int(total_steps * s.fraction / total) for s in stages]
    counts[-1] = total_steps - sum(counts[:-1])
    return counts


class PairStream:
    """An endless, seeded, epoch-by-epoch shuffle of record indices (no repeats inside an epoch)."""

    def __init__(self, n: int, seed: int):
        self.n = n
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def take(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if not self.order:
                self.order = list(range(self.n))
                self.rng.shuffle(self.order)
            out.append(self.order.pop())
        return out


def make_batches(
    stream: PairStream,
    n_batches: int,
    batch_size: int,
    batching: str,
    repos: Sequence[str],
    lengths: Sequence[int],
    seed: int,
    repos_per_batch: int = 2,
) -> list[list[int]]:
    """``n_batches`` batches of record indices.

    ``random``: length-bucketed (16 batches' worth sorted by code length, then cut) so padding stays small.
    ``repo``: each batch is drawn from ``repos_per_batch`` repositories, so in-batch negatives come from the
    same codebases (a within-repository search is what a user runs).
    """
    rng = random.Random(seed)
    if n_batches <= 0:
        return []
    pool = stream.take(n_batches * batch_size)
    batches: list[list[int]] = []
    if batching == "random":
        for start in range(0, len(pool), 16 * batch_size):
            mega = sorted(pool[start:start + 16 * batch_size], key=lambda i: lengths[i])
            batches += unique_batches(mega, batch_size)
    else:
        by_repo: dict[str, list[int]] = defaultdict(list)
        for i in pool:
            by_repo[repos[i]].append(i)
        run = max(1, batch_size // repos_per_batch)
        runs = [ids[j:j + run] for ids in by_repo.values() for j in range(0, len(ids), run)]
        rng.shuffle(runs)
        ordered = [i for r in sorted(runs, key=len, reverse=True) for i in r]  # full runs first
        batches = unique_batches(ordered, batch_size)
        rng.shuffle(batches)
    return [b for b in batches if len(b) > 1][:n_batches]


def unique_batches(order: Sequence[int], batch_size: int) -> list[list[int]]:
    """Cut ``order`` into batches in which no record appears twice: a repeat (a small repository seen in two
    epochs of the stream) waits for the next batch. Drawn up front without this, the first 500 batches of the
    GPU run held 1,129 duplicate slots."""
    batches: list[list[int]] = []
    current: list[int] = []
    members: set[int] = set()
    waiting: list[int] = []

    def emit_full() -> None:
        nonlocal current, members, waiting
        while len(current) == batch_size:
            batches.append(current)
            current, members, still = [], set(), []
            for w in waiting:
                if w in members or len(current) == batch_size:
                    still.append(w)
                else:
                    current.append(w)
                    members.add(w)
            waiting = still

    for i in order:
        if i in members:
            waiting.append(i)
            continue
        current.append(i)
        members.add(i)
        emit_full()
    leftover = current + waiting
    while leftover:  # the tail: whatever is left, still without repeats
        seen: set[int] = set()
        batch = [i for i in leftover if not (i in seen or seen.add(i))][:batch_size]
        batches.append(batch)
        for i in batch:
            leftover.remove(i)
    return batches
