"""Training the re-ranker: negatives mined by the first stage inside one repository, a loss that falls, and a
folder the search path loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codeneedle.indexer.encoder import Encoder
from codeneedle.indexer.rerank import Reranker, RerankSettings, is_reranker
from codeneedle.training.rerank import RerankConfig, mine_groups, pick_records
from tests.conftest import run_needle

FUNCTIONS = {
    "slugify": ("Turn a title into a URL slug", "def slugify(title):\n    return '-'.join(title.lower().split())"),
    "chunk": ("Split a list into groups of n", "def chunk(xs, n):\n    return [xs[i:i + n] for i in range(0, len(xs), n)]"),
    "parse_cookie": ("Parse a cookie header into a dict",
                     "def parse_cookie(h):\n    return dict(p.split('=', 1) for p in h.split('; '))"),
    "read_json": ("Load a JSON file", "def read_json(path):\n    with open(path) as f:\n        return json.load(f)"),
    "write_json": ("Save data as a JSON file",
                   "def write_json(path, data):\n    with open(path, 'w') as f:\n        json.dump(data, f)"),
    "mean": ("Average of the numbers", "def mean(xs):\n    return sum(xs) / len(xs)"),
    "clamp": ("Limit a value to a range", "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))"),
    "is_even": ("Whether a number is even", "def is_even(n):\n    return n % 2 == 0"),
    "flatten": ("Flatten a list of lists", "def flatten(xss):\n    return [x for xs in xss for x in xs]"),
    "reverse_words": ("Reverse the order of words in a sentence",
                      "def reverse_words(s):\n    return ' '.join(reversed(s.split()))"),
    "retry": ("Call a function again until it succeeds",
              "def retry(fn, times):\n    for _ in range(times):\n        try:\n            return fn()\n"
              "        except Exception:\n            pass"),
}


def records(repo: str = "pypi:toolbox") -> list[dict]:
    return [{"repo": repo, "language": "python", "path": "toolbox/util.py", "name": name, "query": query,
             "code": f"toolbox/util.py {name.replace('_', ' ')}\n{code}"} for name, (query, code) in FUNCTIONS.items()]


@pytest.mark.slow
def test_negatives_are_the_first_stages_nearest_wrong_functions_of_the_same_repository():
    recs = records() + records("pypi:other")[:3]
    cfg = RerankConfig(data="", out="", group=4, mine_depth=5)
    groups = mine_groups(recs, Encoder.load("minilm"), cfg, log=lambda _m: None)
    # "pypi:other" has 3 functions: too few for a group of 4, so every group comes from "pypi:toolbox".
    assert len(groups) == len(FUNCTIONS)
    for g in groups:
        assert len(g.negatives) == 3 and g.positive not in g.negatives
        assert all(n.startswith("toolbox/util.py") for n in g.negatives)
    by_query = {g.query: g for g in groups}
    # The hardest negative comes first: for saving JSON, that is loading JSON.
    assert "read_json" in by_query["Save data as a JSON file"].negatives[0].replace(" ", "_")


def test_whole_repositories_are_drawn_until_the_query_budget():
    recs = records("a") + records("b") + records("c")
    picked = pick_records(recs, 15, seed=1)
    assert len(picked) == 15
    assert len({r["repo"] for r in picked}) == 2  # a whole repository, then part of the next


@pytest.mark.slow
def test_training_lowers_the_loss_and_writes_a_folder_search_loads(tiny_reranker):
    run = json.loads((tiny_reranker / "rerank_train.json").read_text())["run"]
    assert run["steps"] == 110 and run["groups"] == 11  # 11 groups, 2 a step, 20 passes
    assert run["final_loss"] < run["first_loss"] - 0.4  # it learns (chance: ln 4 = 1.39)
    assert is_reranker(tiny_reranker)
    assert json.loads((tiny_reranker / "config.json").read_text())["num_hidden_layers"] == 1
    scores = Reranker(tiny_reranker, precision="fp32").score("Load a JSON file",
                                                             [records()[3]["code"], records()[0]["code"]])
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


@pytest.mark.slow
def test_needle_train_reranker_trains_one_from_a_pairs_file(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    proc = run_needle("train", "--reranker", "--data", str(data), "--base", "minilm", "--out", str(tmp_path / "rr"),
                      "--steps", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 2 and summary["groups"] == len(FUNCTIONS)
    assert is_reranker(tmp_path / "rr") and "Apache License 2.0" in (tmp_path / "rr" / "README.md").read_text()
    assert "NEEDLE_RERANKER=" in summary["measure"]


@pytest.mark.slow
def test_needle_train_reranker_needs_pairs(tmp_path):
    proc = run_needle("train", "--reranker", "--data", str(tmp_path / "none.jsonl"))
    assert proc.returncode == 1 and "--reranker needs --data PAIRS.jsonl" in proc.stderr


def test_frozen_embeddings_keep_the_base_token_table_while_the_layer_learns(tiny_reranker):
    """``freeze_embeddings`` (the test re-ranker's setting): the token table is the base's, the layer is not."""
    from safetensors.numpy import load_file

    from codeneedle.indexer.models import resolve_model

    tuned = load_file(str(tiny_reranker / "model.safetensors"))
    base = load_file(str(resolve_model("minilm")[1] / "model.safetensors"))

    def weight(tensors: dict, suffix: str) -> np.ndarray:
        (key,) = [k for k in tensors if k.endswith(suffix)]
        return tensors[key].astype(np.float16)

    table = "embeddings.word_embeddings.weight"
    assert np.array_equal(weight(tuned, table), weight(base, table))
    query = "layer.0.attention.self.query.weight"
    assert not np.array_equal(weight(tuned, query), weight(base, query))


def nodoc_records(repo: str) -> list[dict]:
    """The pairs as mining writes them: each function's doc-less code (``nodoc``), and for one of them a second
    pair whose code keeps its doc comment (``full``), as the style mix makes."""
    recs = [{**r, "code_variant": "nodoc"} for r in records(repo)]
    slug = next(r for r in recs if r["name"] == "slugify")
    full = slug["code"].replace("def slugify(title):", 'def slugify(title):\n    """Make a slug."""')
    return recs + [{**slug, "query": "Make a URL-safe slug of a title", "code_variant": "full", "code": full}]


@pytest.mark.slow
def test_residual_groups_carry_the_first_stages_ranks_over_doc_less_code():
    from codeneedle.training.rerank import mine_ranked_groups

    recs = nodoc_records("pypi:toolbox") + nodoc_records("pypi:small")[:3]
    encoder = Encoder.load("minilm")
    vectors = encoder.encode([r["code"] for r in recs])
    cfg = RerankConfig(data="", out="", group=4, mine_depth=5, min_pool=5, per_repo=100, residual=3.0)
    groups = mine_ranked_groups(recs, encoder, vectors, cfg, log=lambda _m: None)
    assert len(groups) == len(FUNCTIONS) + 1  # every query of the big repository; "pypi:small" is under min_pool
    texts = {r["code"] for r in recs if r["code_variant"] == "nodoc" and r["repo"] == "pypi:toolbox"}
    for g in groups:
        assert {g.positive, *g.negatives} <= texts  # doc-less candidates of its own repository only
        qv = encoder.encode_queries([g.query])[0]
        order = sorted(texts, key=lambda t: -float(vectors[[r["code"] for r in recs].index(t)] @ qv))
        assert list(g.ranks) == [order.index(t) for t in (g.positive, *g.negatives)]
    slug = [g for g in groups if g.query == "Make a URL-safe slug of a title"]
    assert slug and '"""' not in slug[0].positive  # the query of a documented pair still meets doc-less code
    capped = mine_ranked_groups(recs, encoder, vectors, RerankConfig(data="", out="", group=4, mine_depth=5,
                                                                     min_pool=5, per_repo=4), log=lambda _m: None)
    assert len(capped) == 4


@pytest.mark.slow
def test_a_residual_stage_continues_a_reranker_from_a_recipe_and_blends_as_it_trained(tmp_path, tiny_reranker):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in nodoc_records("pypi:toolbox")))
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"config": {"layers": 1, "group": 4, "mine_depth": 5, "min_pool": 5,
                                             "batch_queries": 2, "max_tokens": 64, "residual": 2.5}}))
    proc = run_needle("train", "--reranker", "--config", str(recipe), "--data", str(data), "--base",
                      str(tiny_reranker), "--out", str(tmp_path / "rr"), "--steps", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"] == 2
    out = tmp_path / "rr"
    assert RerankSettings.read(out).blend == 2.5  # search weighs the first stage as training did
    groups = [json.loads(line) for line in (tmp_path / "rr.groups.jsonl").read_text().splitlines()]
    assert len(groups) == len(FUNCTIONS) + 1 and all(len(g["ranks"]) == 4 for g in groups)
    recorded = json.loads((out / "rerank_train.json").read_text())["config"]
    assert recorded["residual"] == 2.5 and recorded["base"] == str(tiny_reranker)
    # Two small steps from the tiny re-ranker: its head was the starting point, not a fresh one.
    before, after = RerankSettings.read(tiny_reranker), RerankSettings.read(out)
    assert np.corrcoef(before.weight, after.weight)[0, 1] > 0.9
