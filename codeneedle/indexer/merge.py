"""Ranked lists from several indexes (shards, workspace folders) merged into one, each keeping its order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def merge_ranked(lists: Sequence[Sequence[T]], k: int, score: Callable[[T], float]) -> list[T]:
    """The first ``k`` of several ranked lists merged by their heads: each list keeps its own order.

    Each shard's order is its ranking rules' (code before its tests, a definition before its class summary);
    sorting the union by score would undo them, since a demoted chunk often has the higher cosine. The best
    head goes next, by score as results show it (4 places); ties go to the earlier list.
    """
    keyed = [[(-round(float(score(item)), 4), n, rank, item) for rank, item in enumerate(items)]
             for n, items in enumerate(lists)]
    return [item for _s, _n, _r, item in itertools.islice(heapq.merge(*keyed), max(k, 0))]
