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


def test_below_the_exact_search_limit_the_graph_is_small_and_past_it_it_is_built_in_full(monkeypatch, tmp_path):
    """Exact search never walks the graph, so a small one is built cheaply; past the limit a saved file's graph is
    walked, so the file gets the full graph, and it still finds the true neighbours."""
    import codeneedle.indexer.vectors as V

    monkeypatch.setattr(V, "EXACT_SEARCH_LIMIT", 300)
    vectors = unit_vectors(400)
    keys = np.arange(len(vectors), dtype=np.uint64)
    vi = VectorIndex.build(384, keys[:250], vectors[:250], generation=1)
    assert vi._index.connectivity < V.FULL_CONNECTIVITY
    vi.add(keys[250:], vectors[250:])
    assert int(vi.search(vectors[7], 1)[0][0]) == 7  # past the limit, before a save: exact over the small graph
    vi.save(tmp_path / "v.usearch", model_id="m")
    assert vi._index.connectivity >= V.FULL_CONNECTIVITY and len(vi) == 400
    loaded = VectorIndex.load(tmp_path / "v.usearch", dim=384, model_id="m", generation=1)
    assert loaded._index.connectivity >= V.FULL_CONNECTIVITY and len(loaded) == 400
    for index in (vi, loaded):
        assert set(index.keys().tolist()) == set(keys.tolist())
        assert int(index.search(vectors[7], 1)[0][0]) == 7


def test_an_index_past_the_limit_is_rebuilt_and_grown_without_the_full_graph_until_it_is_saved(monkeypatch):
    """A reader rebuilding a stale file from SQLite (every one-shot `needle search` while a first build of a big
    repository runs: the file is saved at its end) and a writer committing cached vectors must not pay for the full
    graph: 14.6 s per search at 52,745 vectors on 2 cores. Their searches are exact until the writer saves."""
    import codeneedle.indexer.vectors as V

    monkeypatch.setattr(V, "EXACT_SEARCH_LIMIT", 300)
    vectors, queries = unit_vectors(700), unit_vectors(20, seed=1)
    keys = np.arange(len(vectors), dtype=np.uint64)
    vi = VectorIndex.build(384, keys[:500], vectors[:500], generation=1)
    vi.add(keys[500:], vectors[500:])
    assert vi._index.connectivity < V.FULL_CONNECTIVITY and len(vi) == 700
    rounded = vectors.astype(np.float16).astype(np.float32)
    for q in queries:
        truth = keys[np.argsort(-(rounded @ q), kind="stable")[:20]]
        assert set(vi.search(q, 20)[0].tolist()) == set(truth.tolist())


def test_a_full_graph_below_the_limit_takes_many_new_vectors_into_a_small_one():
    """An index file written with the full graph (by an older Needle) is rebuilt small before a large batch of
    additions, the cheaper way; nothing is lost and searches are exact."""
    import codeneedle.indexer.vectors as V

    vectors = unit_vectors(1_000)
    keys = np.arange(len(vectors), dtype=np.uint64)
    vi = VectorIndex(384, generation=1, full_graph=True)
    vi.add(keys[:100], vectors[:100])
    assert vi._index.connectivity >= V.FULL_CONNECTIVITY  # a handful: inserted as they are
    vi.add(keys[100:], vectors[100:])
    assert vi._index.connectivity < V.FULL_CONNECTIVITY and len(vi) == 1_000
    for i in (3, 500, 999):
        assert int(vi.search(vectors[i], 1)[0][0]) == i


_SAVE_UNDER_A_SIZE_LIMIT = """
import resource, sys
from pathlib import Path
import numpy as np
from codeneedle.indexer.vectors import VectorIndex

vectors = np.random.default_rng(0).normal(size=(2000, 384)).astype(np.float32)
index = VectorIndex.build(384, np.arange(2000, dtype=np.uint64), vectors, generation=1)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))  # `ulimit -f`: EFBIG past it
try:
    index.save(Path(sys.argv[1]) / "vectors.usearch", model_id="m")
except OSError as exc:
    print("save failed:", exc.strerror)
"""


def test_a_save_the_disk_refuses_leaves_no_temp_file_and_one_a_killed_writer_left_goes(tmp_path):
    """Each failed save on a full disk left its part-written temp file (0.5-1 MB on a 9 MB index), taking the
    space the next run needed; one a killed writer left (SIGKILL) stayed for good."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _SAVE_UNDER_A_SIZE_LIMIT, str(tmp_path)], capture_output=True,
                          text=True)
    assert "save failed: File too large" in proc.stdout, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".vectors.usearch.{dead}.tmp").write_bytes(b"\0" * 4096)
    VectorIndex.build(384, np.arange(5, dtype=np.uint64), unit_vectors(5), generation=1).save(
        tmp_path / "vectors.usearch", model_id="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.usearch", "vectors.usearch.json"]
