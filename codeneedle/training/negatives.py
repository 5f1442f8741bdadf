"""Negative selection: random, BM25-hard, model-hard (skipping near-duplicates), in-batch hard/semi-hard.

Every miner returns, for each query ``i``, indices into the candidate code list; the positive of query ``i``
is candidate ``positives[i]``. ``groups`` (e.g. the repository of each candidate) restricts negatives to the
query's own group, which is what retrieval inside one codebase looks like. The in-batch strategies live with
the losses (:mod:`codeneedle.training.losses`) and are re-exported here.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from codeneedle.training.losses import batch_hard_indices, batch_semi_hard_indices

__all__ = ["BM25", "tokenize_code", "random_negatives", "bm25_negatives", "model_hard_negatives",
           "batch_hard_indices", "batch_semi_hard_indices"]

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def tokenize_code(text: str) -> list[str]:
    """Lower-cased word pieces of identifiers and prose, 2+ characters: ``getHTTPResponse_v2`` -> get, http,
    response."""
    return [t.lower() for t in _WORD.findall(text) if len(t) > 1]


class BM25:
    """Okapi BM25 over a fixed corpus as a sparse matrix (fast enough for 10^5 documents in numpy/scipy)."""

    def __init__(self, docs: Sequence, k1: float = 1.2, b: float = 0.75, tokenizer=None):
        """``docs``: texts (split by :func:`tokenize_code`) or anything ``tokenizer`` turns into hashable terms
        (token id arrays in a ``--pack`` bundle)."""
        from scipy.sparse import csr_matrix

        self.tokenizer = tokenizer or tokenize_code
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for i, doc in enumerate(docs):
            counts: dict[int, int] = defaultdict(int)
            toks = self.tokenizer(doc)
            lengths[i] = len(toks)
            for t in toks:
                counts[vocab.setdefault(t, len(vocab))] += 1
            rows += [i] * len(counts)
            cols += list(counts)
            vals += list(counts.values())
        self.vocab = vocab
        n = max(1, len(docs))
        tf = csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(docs), len(vocab)))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab)).astype(np.float32)
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if len(docs) else 1.0
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        tf = tf.tocoo()
        w = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * self.idf[tf.col]
        self.matrix = csr_matrix((w, (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # (vocab, docs)

    def scores(self, query) -> np.ndarray:
        """BM25 score of every document for one query."""
        ids = [self.vocab[t] for t in self.tokenizer(query) if t in self.vocab]
        if not ids:
            return np.zeros(self.matrix.shape[1], dtype=np.float32)
        return np.asarray(self.matrix[ids].sum(axis=0)).ravel()


def _group_members(groups: Sequence[str] | None, n: int) -> tuple[list[str], dict[str, np.ndarray]]:
    g = list(groups) if groups is not None else [""] * n
    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(g):
        members[key].append(i)
    return g, {k: np.asarray(v) for k, v in members.items()}


def random_negatives(positives: Sequence[int], n_candidates: int, k: int = 1, seed: int = 0,
                     groups: Sequence[str] | None = None) -> list[list[int]]:
    """``k`` uniformly random candidates per query (from its group when ``groups`` is given), never its own."""
    rng = random.Random(seed)
    g, members = _group_members(groups, n_candidates)
    out = []
    for pos in positives:
        pool = members[g[pos]]
        picks: list[int] = []
        for _ in range(k * 4):
            if len(picks) == k or len(pool) < 2:
                break
            j = int(pool[rng.randrange(len(pool))])
            if j != pos and j not in picks:
                picks.append(j)
        out.append(picks)
    return out


def bm25_negatives(queries: Sequence[str], candidates: Sequence[str], positives: Sequence[int], k: int = 1,
                   groups: Sequence[str] | None = None, skip_top: int = 0) -> list[list[int]]:
    """The ``k`` lexically closest candidates to each query that are not its positive (nor textually equal
    to it), searched within the query's group."""
    g, members = _group_members(groups, len(candidates))
    by_group: dict[str, list[int]] = defaultdict(list)
    for qi, pos in enumerate(positives):
        by_group[g[pos]].append(qi)
    out: list[list[int]] = [[] for _ in queries]
    for key, qis in by_group.items():
        idx = members[key]
        bm25 = BM25([candidates[i] for i in idx])
        for qi in qis:
            s = bm25.scores(queries[qi])
            order = idx[np.argsort(-s, kind="stable")]
            picks = [int(j) for j in order if j != positives[qi]
                     and candidates[j] != candidates[positives[qi]]][skip_top:skip_top + k]
            out[qi] = picks
    return out


def model_hard_negatives(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    positives: Sequence[int],
    k: int = 1,
    groups: Sequence[str] | None = None,
    near_duplicate: float = 0.95,
    false_negative_margin: float = 0.0,
    skip_top: int = 0,
) -> list[list[int]]:
    """Nearest candidates under the current encoder, skipping likely false negatives.

    A candidate is skipped when it is a near-duplicate of the positive (code-code cosine >= ``near_duplicate``)
    or scores above the positive by more than ``false_negative_margin`` (such "negatives" are usually
    unlabelled positives). Embeddings must be unit-normalised.
    """
    g, members = _group_members(groups, len(cand_emb))
    out: list[list[int]] = []
    for qi, pos in enumerate(positives):
        idx = members[g[pos]]
        sims = cand_emb[idx] @ query_emb[qi]
        pos_sim = float(cand_emb[pos] @ query_emb[qi])
        dup = cand_emb[idx] @ cand_emb[pos] >= near_duplicate
        ok = (idx != pos) & ~dup & (sims <= pos_sim + false_negative_margin)
        order = np.argsort(-np.where(ok, sims, -math.inf), kind="stable")
        picks = [int(idx[j]) for j in order if ok[j]][skip_top:skip_top + k]
        out.append(picks)
    return out
