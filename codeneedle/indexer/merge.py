"""Ranked lists from several indexes (shards, workspace folders) merged into one, each keeping its order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")


class Scored(Protocol):
    score: float
    verbatim: bool


def head_score(result: Scored) -> float:
    """What a merge compares lists' heads by: the score, with a result that holds the query's Chinese, Japanese or
    Korean words as typed ahead of any that does not (each index ranked it first by those words whatever its cosine;
    merged by cosine alone, an unrelated 0.21 from another repository came before it, or pushed it out of k)."""
    return result.score + (1.0 if result.verbatim else 0.0)  # a cosine is at most 1


def merge_ranked(lists: Sequence[Sequence[T]], k: int, score: Callable[[T], float]) -> list[T]:
    """The first ``k`` of several ranked lists merged by their heads: each list keeps its own order.

    Each shard's order is its ranking rules' (code before its tests, a definition before its class summary);
    sorting the union by score would undo them, since a demoted chunk often has the higher cosine. The best
    head goes next, by score as results show it (4 places); ties go to the earlier list.
    """
    keyed = [[(-round(float(score(item)), 4), n, rank, item) for rank, item in enumerate(items)]
             for n, items in enumerate(lists)]
    return [item for _s, _n, _r, item in itertools.islice(heapq.merge(*keyed), max(k, 0))]


def inner_roots(roots: Sequence[Path]) -> list[tuple[str, ...]]:
    """For each root, the other repositories inside its folder, as root-relative POSIX prefixes (a repository
    vendored or cloned inside another: the outer one's walk indexes its files too). Every door that merges
    several repositories' results leaves those files to the inner repository (``held_by_inner``)."""
    roots = [Path(root).resolve() for root in roots]
    return [tuple(other.relative_to(root).as_posix() + "/" for other in roots
                  if other != root and other.is_relative_to(root))
            for root in roots]


def held_by_inner(path: str, inner: tuple[str, ...]) -> bool:
    # The inner repository's own index answers for those files: the outer one's copy would repeat each result.
    return path.startswith(inner)
