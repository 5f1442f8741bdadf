"""Scores with an absolute meaning: the cosine between the query and each returned chunk.

Ranking (reciprocal rank fusion, boosts, re-ranking) orders results but its values are relative: the top hit
always scored about 1.0, so a nonsense query looked as good as a perfect one. This step runs after ranking,
on the final results only, and replaces each score by the dense cosine of query and chunk vectors, which
means the same thing for every query. Below :data:`GOOD_MATCH` nothing returned is a real match.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from codeneedle.indexer.store import Store
from codeneedle.indexer.types import SearchResult

# The line between "a match" and "the nearest of nothing", for needle-code-v3's cosines. Measured with
# scripts/score_threshold.py on this repository's codeneedle/ sources (2026-12-05): the top score of 60 real
# queries (doc comments' first sentences) had p5 0.54 / median 0.73; of 24 nonsense and off-topic queries
# ("zzqx blorf", "recipe for chocolate cake") p95 0.28 / median 0.22 (needle-code-v2: 0.55 / 0.74 and 0.29 / 0.22;
# needle-code-v1, 2026-12-04: 0.46 / 0.65 and 0.27 / 0.20). 0.35 sits between, towards the nonsense side because
# a user's own words match less well than a doc comment does.
GOOD_MATCH = 0.35
GOOD_MATCH_NOTE = "no good match: nothing scores above {threshold:.2f} (best {best:.2f}); these are the nearest"


def absolute_scores(store: Store, model_id: str, dim: int, qvec: np.ndarray, ids: Sequence[int],
                    embed_missing: Callable[[list[int]], np.ndarray] | None = None) -> list[float]:
    """cosine(query, chunk) for each chunk id in ``ids``, rounded for display.

    A chunk without a stored vector (a keyword hit while the index is still embedding) is embedded on the spot by
    ``embed_missing(ids) -> vectors``: shown as 0.000 it read as "no good match" during a first index build.
    Without ``embed_missing`` it scores 0.
    """
    if not ids:
        return []
    query = qvec.astype(np.float32)
    keys, vecs = store.chunk_vectors(model_id, dim, ids=list(ids))
    cosine = {int(k): float(s) for k, s in zip(keys, vecs @ query, strict=True)}
    absent = [cid for cid in dict.fromkeys(ids) if cid not in cosine]
    if absent and embed_missing is not None:
        cosine.update(zip(absent, map(float, embed_missing(absent) @ query), strict=True))
    return [round(max(cosine.get(cid, 0.0), 0.0), 4) for cid in ids]


def good_match(results: Sequence[SearchResult | dict]) -> bool:
    """Whether the best of ``results`` (absolute scores) is a real match, or one holds the query's Chinese,
    Japanese or Korean words as typed (the encoder reads those scripts poorly: a Chinese doc comment that says
    what was asked word for word scored 0.34)."""
    return best_score(results) >= GOOD_MATCH or any(
        r.get("verbatim", False) if isinstance(r, dict) else r.verbatim for r in results)


def best_score(results: Sequence[SearchResult | dict]) -> float:
    scores = [r["score"] if isinstance(r, dict) else r.score for r in results]
    return max(scores, default=0.0)


def no_match_note(results: Sequence[SearchResult | dict]) -> str | None:
    """The one-line "no good match" message for ``results``, or None when the best is a match."""
    if good_match(results):
        return None
    # Rounded down: a best of 0.3496 shown as "0.35" would read as reaching the line it missed.
    return GOOD_MATCH_NOTE.format(threshold=GOOD_MATCH, best=math.floor(best_score(results) * 100 + 1e-9) / 100)
