"""The training step's data path: records tokenized once, duplicate masks, per-repository BM25, batches without
repeats, the packed token file, bf16 autocast."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from codeneedle.training.curriculum import PairStream, make_batches
from codeneedle.training.records import (
    NegativeMiner,
    duplicate_mask,
    load_tokens,
    save_tokens,
    tokenize_records,
)
from codeneedle.training.train import TrainConfig, load_model, train_model
from tests.test_training_train import write_pairs

pytestmark = pytest.mark.slow  # training runs


@pytest.fixture(scope="module")
def tok():
    return load_model("minilm", "cpu")[0]


def records(n_repos: int = 3, per_repo: int = 6) -> list[dict]:
    words = "parse read write open close send fetch split join hash sort merge".split()
    out = []
    for r in range(n_repos):
        for i in range(per_repo):
            w = words[(r * per_repo + i) % len(words)]
            code = f"def {w}_{r}_{i}(x):\n    return {w}(x) + {i}"
            out.append({"repo": f"repo{r}", "query": f"{w} the input number {i}", "code": f"m.py {w}\n{code}",
                        "code_plain": code})
    return out


def test_duplicate_mask_marks_same_query_or_same_code_off_the_diagonal(tok):
    recs = records(1, 4)
    recs[2]["code_plain"] = " ".join(recs[0]["code_plain"].split())  # same code, other whitespace
    recs[3]["doc_query"] = recs[1]["query"].upper()  # same doc query, other case
    ts = tokenize_records(recs, tok, 32, 64)
    m = duplicate_mask(ts, [0, 1, 2, 3]).numpy()
    expected = np.zeros((4, 4), dtype=bool)
    expected[0, 2] = expected[2, 0] = expected[1, 3] = expected[3, 1] = True
    assert (m == expected).all()


def test_records_are_tokenized_once_per_run_not_per_step(tmp_path, monkeypatch):
    import codeneedle.training.train as train

    write_pairs(tmp_path / "pairs.jsonl")
    calls = []
    real = train.load_model

    def counting_load(base, device):
        t, model, folder = real(base, device)

        class Counting:
            def __getattr__(self, name):
                return getattr(t, name)

            def __call__(self, texts, **kw):
                calls.append(len(texts))
                return t(texts, **kw)

        return Counting(), model, folder

    monkeypatch.setattr(train, "load_model", counting_load)
    cfg = TrainConfig(train_data=str(tmp_path / "pairs.jsonl"), out_dir=str(tmp_path / "run"), steps=4, batch_size=3,
                      curriculum="none", code_max_tokens=64, query_max_tokens=32, checkpoint_every=100, threads=1,
                      device="cpu")
    train_model(cfg)
    assert calls == [6, 6]  # every query once, every code once; four steps add nothing


def test_bm25_indexes_are_built_once_per_repository(tok):
    recs = records(3, 6)
    recs[4]["code_plain"] = "def reparse(x):\n    return parse(parse(x))"  # lexically closest to query 0
    ts = tokenize_records(recs, tok, 32, 64)
    miner = NegativeMiner(ts)
    first = miner.bm25(list(range(0, 18, 2)))
    again = miner.bm25(list(range(1, 18, 2)))
    assert miner.bm25_builds == 3
    for q, neg in {**first, **again}.items():
        assert neg != q and ts.repo[neg] == ts.repo[q]
    assert first[0] == 4


def test_bm25_over_token_ids_when_the_text_is_not_shipped(tok, tmp_path):
    ts = tokenize_records(records(2, 6), tok, 32, 64)
    packed = load_tokens(save_tokens(ts, tmp_path / "p.tokens.xz"))
    assert packed.lexical is None
    miner = NegativeMiner(packed)
    negs = miner.bm25([0, 7])
    assert set(negs) == {0, 7} and all(packed.repo[n] == packed.repo[q] for q, n in negs.items())


def test_packed_tokens_round_trip_exactly(tok, tmp_path):
    recs = records(2, 5)
    recs[1]["negatives"] = ["def other():\n    return 1", "def third():\n    return 2"]
    ts = tokenize_records(recs, tok, 32, 64)
    back = load_tokens(save_tokens(ts, tmp_path / "t.tokens.xz"))
    assert len(back) == len(ts) and back.repo == ts.repo
    assert all((a == b).all() for a, b in zip(back.q, ts.q, strict=True))
    assert all((a == b).all() for a, b in zip(back.c, ts.c, strict=True))
    assert (back.qkey == ts.qkey).all() and (back.ckey == ts.ckey).all()
    assert sorted(back.extra_negs) == [1] and len(back.extra_negs[1]) == 2
    assert (back.extra_negs[1][1] == ts.extra_negs[1][1]).all()


@pytest.mark.parametrize("batching", ["random", "repo"])
def test_no_record_appears_twice_in_a_batch(batching):
    # a tiny repository beside a big one: drawn up front, several epochs of the small one land in one pool
    repos = ["tiny"] * 3 + ["big"] * 40
    stream = PairStream(len(repos), seed=3)
    batches = make_batches(stream, 60, 8, batching, repos, [1] * len(repos), seed=5)
    assert len(batches) >= 50
    for b in batches:
        assert len(b) == len(set(b)), b


def test_bf16_autocast_trains_on_cpu(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl")
    cfg = TrainConfig(train_data=str(tmp_path / "pairs.jsonl"), out_dir=str(tmp_path / "run"), steps=2, batch_size=3,
                      curriculum="none", code_max_tokens=64, query_max_tokens=32, checkpoint_every=100, threads=1,
                      device="cpu", precision="bf16")
    final = train_model(cfg)
    losses = json.loads((final / "train_state.json").read_text())["state"]["losses"]
    assert len(losses) == 2 and all(0 < v < 10 for v in losses)
    with pytest.raises(ValueError, match="precision"):
        train_model(TrainConfig(**{**cfg.__dict__, "precision": "fp8", "out_dir": str(tmp_path / "x")}))


def test_unique_batches_keeps_every_slot_filled_when_it_can():
    from codeneedle.training.curriculum import unique_batches

    order = [1, 1, 2, 2, 3, 3, 4, 4]
    batches = unique_batches(order, 4)
    assert sorted(map(sorted, batches)) == [[1, 2, 3, 4], [1, 2, 3, 4]]
    rng = random.Random(0)
    order = [rng.randrange(6) for _ in range(200)]
    batches = unique_batches(order, 5)
    assert sorted(i for b in batches for i in b) == sorted(order)  # nothing lost
    assert all(len(b) == len(set(b)) <= 5 for b in batches)
