"""The evaluation's lexical and hybrid rankings are the product's: ``needle search``'s first stage over a
benchmark group.

One group's candidate chunks go into a real index store (SQLite, FTS5, secrets redacted as the indexer does)
and a real usearch vector index holding the encoder's vectors; a query then takes the path ``Index.search``
takes: :func:`codeneedle.indexer.search.dense_ranking` and :func:`~codeneedle.indexer.search.lexical_ranking`
for a pool of ``max(5k, 50)``, then :func:`~codeneedle.indexer.search.rank` (weighted RRF plus the ranking
rules). What it leaves out changes no order: the display scores (``scores.absolute_scores``) and the stand-ins
for chunks not embedded yet (every candidate here has its vector).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.search import Filters, dense_ranking, lexical_ranking, rank
from codeneedle.indexer.store import FileRecord, Store
from codeneedle.indexer.vectors import VectorIndex

RESULTS = 10  # what a search page shows; the metrics stop at rank 10 too


class GroupSearch:
    """``needle search`` over one group of candidates; rankings are candidate positions, best first."""

    def __init__(self, chunks: list[Chunk], vectors: np.ndarray | None = None, model_id: str = "eval"):
        self._dir = tempfile.TemporaryDirectory(prefix="needle-eval-")
        self.store = Store(Path(self._dir.name) / "index.db")
        self.model_id = model_id
        by_path: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            by_path.setdefault(c.path, []).append(i)
        records = [FileRecord(p, 0, 0, "", chunks[ix[0]].language) for p, ix in by_path.items()]
        order = [i for ix in by_path.values() for i in ix]
        with self.store.transaction():
            _, added = self.store.replace_files([], records, {p: [chunks[i] for i in ix] for p, ix in by_path.items()})
        self.position = {cid: order[n] for n, (cid, _h) in enumerate(added)}
        self.ids = np.empty(len(chunks), dtype=np.uint64)  # candidate position -> chunk id
        for cid, pos in self.position.items():
            self.ids[pos] = cid
        self.vectors = None
        if vectors is not None:
            self.vectors = VectorIndex.build(vectors.shape[1], self.ids, np.asarray(vectors, dtype=np.float32), 0)

    def close(self) -> None:
        self.store.close()
        self._dir.cleanup()

    def __enter__(self) -> GroupSearch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lexical(self, query: str, k: int = RESULTS) -> list[int]:
        """The FTS5 BM25 ranking ``needle search`` fuses (name, path, identifier-split text)."""
        return [self.position[cid] for cid in lexical_ranking(self.store, query, max(k * 5, 50), Filters())]

    def hybrid(self, query: str, qvec: np.ndarray, k: int = RESULTS) -> list[int]:
        """What ``needle search`` ranks for ``query`` whose vector is ``qvec``."""
        if self.vectors is None:
            raise ValueError("hybrid search needs the candidates' vectors")
        pool = max(k * 5, 50)
        dense = dense_ranking(self.store, self.vectors, self.model_id, qvec, pool, Filters())
        lexical = lexical_ranking(self.store, query, pool, Filters())
        return [self.position[cid] for cid, _ in rank(self.store, dense, lexical, query)]
