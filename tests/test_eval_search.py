"""The evaluation's ``hybrid`` is ``needle search``'s first stage (``--no-rerank``): the same candidates ranked by
training's product_search and by a real index give the same results, query for query (words, identifiers, a query
about tests)."""

from __future__ import annotations

import numpy as np
import pytest

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.index import Index
from codeneedle.indexer.languages import language_for_path
from codeneedle.training.evaluate import Benchmark, evaluate_benchmark, position_of
from codeneedle.training.product_search import GroupSearch
from tests.conftest import copy_fixture

pytestmark = pytest.mark.slow  # builds a real index, then the same search twice over

QUERIES = [  # rankrepo holds stubs, a test file, a README and same-named definitions: every ranking rule acts
    "slugify",
    "turn a title into a url slug",
    "test slugify",
    "CaseInsensitiveDict",
    "split an array into groups",
    "chunk",
    "send a json response",
    "send a request with merged headers",
]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    repo = copy_fixture("rankrepo", tmp_path_factory.mktemp("evalsearch") / "rankrepo")
    index = Index.open(repo)
    index.update()
    chunks = []
    for path in sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()
                       and ".needle" not in p.parts):
        chunks += chunk_source(path, (repo / path).read_bytes(), language_for_path(path))
    store = index.reader()
    vectors = np.stack([np.frombuffer(store.conn.execute(
        "SELECT vector FROM embeddings WHERE model = ? AND hash = ?", (index.model_id, c.content_hash)).fetchone()[0],
        dtype=np.float32) for c in chunks])
    yield index, chunks, vectors
    index.close()


def test_group_search_ranks_exactly_as_the_index_searches(indexed):
    index, chunks, vectors = indexed
    with GroupSearch(chunks, vectors, index.model_id) as search:
        for query in QUERIES:
            # One query vector for both: the comparison is of the rankings, not of two encoder calls.
            qvec = index.encoder.encode_queries([query])[0]
            expected = [(r.path, r.start_line, r.name) for r in index.search(query, k=10, qvec=qvec, rerank=False)]
            got = [(chunks[i].path, chunks[i].start_line, chunks[i].name) for i in search.hybrid(query, qvec)][:10]
            assert got == expected, query
            rows = index.reader().chunks_by_ids(index.reader().fts_search(query, 50))
            expected_lexical = [(r.path, r.start_line, r.name) for r in rows.values()]
            assert sorted((chunks[i].path, chunks[i].start_line, chunks[i].name) for i in search.lexical(query)) \
                == sorted(expected_lexical), query


def test_evaluation_reports_the_product_rankings(indexed):
    index, chunks, vectors = indexed
    target = next(i for i, c in enumerate(chunks) if c.name == "Session.request")
    bench = Benchmark("rank", [("g", "Session.request", target), ("g", "no such words zzz", 0)],
                      {"g": [f"{c.path}\n{c.text}" for c in chunks]}, {"g": chunks})
    result = evaluate_benchmark(bench, index.encoder, methods=("bm25", "dense", "hybrid"))
    assert result["overall"]["hybrid"]["r@1"] == 0.5  # the first query's target is first, the second finds nothing
    assert result["overall"]["bm25"]["r@10"] == 0.5 and result["overall"]["bm25"]["queries"] == 2
    assert position_of([4, 2, 9], 9) == 3 and position_of([4, 2], 9) is None
