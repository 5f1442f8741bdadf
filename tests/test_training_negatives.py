"""Each negative strategy, the curriculum's batching, and the evaluation metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codeneedle.training.curriculum import CURRICULA, PairStream, make_batches, stage_steps
from codeneedle.training.evaluate import metrics_from_ranks, rank_of
from codeneedle.training.negatives import (
    BM25,
    batch_hard_indices,
    batch_semi_hard_indices,
    bm25_negatives,
    model_hard_negatives,
    random_negatives,
    tokenize_code,
)

CODES = [
    "def read_config(path): return json.load(open(path))",
    "def write_config(path, cfg): json.dump(cfg, open(path, 'w'))",
    "def parse_date(text): return datetime.strptime(text, '%Y-%m-%d')",
    "def format_date(d): return d.strftime('%Y-%m-%d')",
    "def add(a, b): return a + b",
]
QUERIES = ["Read the config file.", "Write the config file.", "Parse a date string.", "Format a date.", "Add numbers."]


def test_tokenize_code_splits_identifiers() -> None:
    assert tokenize_code("getHTTPResponse_v2(x) + 42") == ["get", "http", "response", "42"]


def test_bm25_ranks_lexical_match_first() -> None:
    bm25 = BM25(CODES)
    assert int(np.argmax(bm25.scores("parse date"))) == 2
    assert not bm25.scores("zzz unknown").any()


def test_random_negatives_never_the_positive_and_stay_in_group() -> None:
    groups = ["a", "a", "a", "b", "b"]
    out = random_negatives([0, 1, 2, 3, 4], 5, k=1, seed=3, groups=groups)
    for pos, picks in enumerate(out):
        assert picks and pos not in picks
        assert all(groups[j] == groups[pos] for j in picks)


def test_bm25_negatives_are_lexically_close_but_not_positive() -> None:
    out = bm25_negatives(QUERIES, CODES, [0, 1, 2, 3, 4], k=1)
    assert out[0] == [1]  # "config" matches write_config; read_config is the positive
    assert out[2] == [3]  # "date" -> format_date
    assert all(i not in picks for i, picks in enumerate(out))


def test_model_hard_negatives_skip_near_duplicates_and_false_negatives() -> None:
    # candidate 1 is a near-duplicate of positive 0; candidate 2 is close to the query; candidate 3 is far
    cand = np.array([[1, 0, 0], [0.999, 0.045, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=np.float32)
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    q = np.array([[0.95, 0.31, 0]], dtype=np.float32)
    assert model_hard_negatives(q, cand, [0], k=1) == [[2]]
    assert model_hard_negatives(q, cand, [0], k=1, near_duplicate=1.01, false_negative_margin=0.1)[0] == [1]  # no dedupe: dup wins
    # a candidate scoring well above the positive is treated as an unlabelled positive
    q2 = np.array([[0.8, 0.6, 0]], dtype=np.float32)
    assert 2 not in model_hard_negatives(q2, cand, [0], k=3, false_negative_margin=0.0)[0]


def test_in_batch_strategies_reexported() -> None:
    q = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    c = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    for idx in (batch_hard_indices(q, c), batch_semi_hard_indices(q, c)):
        assert (idx != torch.arange(6)).all()


def test_curriculum_steps_and_batches() -> None:
    assert stage_steps(CURRICULA["staged"], 10) == [4, 3, 3]
    repos = ["r1"] * 40 + ["r2"] * 40 + ["r3"] * 40
    lengths = list(range(120))
    stream = PairStream(120, seed=1)
    random_b = make_batches(stream, 3, 8, "random", repos, lengths, seed=1)
    assert len(random_b) == 3 and all(len(b) == 8 for b in random_b)
    repo_b = make_batches(stream, 4, 8, "repo", repos, lengths, seed=1)
    assert len(repo_b) == 4
    assert all(len({repos[i] for i in b}) <= 3 for b in repo_b)
    assert sum(len({repos[i] for i in b}) for b in repo_b) / len(repo_b) < 2.6  # mostly 2 repos per batch
    # an epoch never repeats an index
    taken = PairStream(10, seed=2).take(10)
    assert sorted(taken) == list(range(10))


def test_metrics_and_ranks() -> None:
    m = metrics_from_ranks([1, 2, 11, None])
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 4)
    assert m["r@1"] == 0.25 and m["r@10"] == 0.5
    assert rank_of(np.array([0.1, 0.9, 0.5]), 2) == 2
    assert rank_of(np.array([0.5, 0.5, 0.1]), 1) == 2  # ties count against the target
