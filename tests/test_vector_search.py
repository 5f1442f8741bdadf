"""The vector index answers with the true nearest neighbours, the same way for every build of the same vectors."""

from __future__ import annotations

import numpy as np

from codeneedle.indexer.vectors import EXACT_SEARCH_LIMIT, VectorIndex


def unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_repository_sized_index_returns_the_exact_nearest_neighbours_in_every_build():
    vectors, queries = unit_vectors(2_000), unit_vectors(40, seed=1)
    keys = np.arange(10, 10 + len(vectors), dtype=np.uint64)
    builds = [VectorIndex.build(384, keys, vectors, generation=1) for _ in range(3)]
    for q in queries:
        # float16 storage: compare against brute force over the same rounded vectors
        truth = keys[np.argsort(-(vectors.astype(np.float16).astype(np.float32) @ q), kind="stable")[:50]]
        answers = [list(b.search(q, 50)[0]) for b in builds]
        assert answers[0] == answers[1] == answers[2]
        assert set(answers[0]) == set(truth.tolist())
    assert len(vectors) <= EXACT_SEARCH_LIMIT
