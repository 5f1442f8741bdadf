"""The re-ranker (second stage): its pair input, its arithmetic on ONNX Runtime against the training forward pass,
and its place after the ranking rules, through the library and the CLI.

One ships (``needle-rerank-v1``), on by default; most tests train a small real one with our own training code (one
layer, a few dozen steps) and point ``$NEEDLE_RERANKER`` at it, as a user trying a candidate would, so what they
check does not hang on the shipped weights' judgement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codeneedle.indexer.chunks import FUNCTION, METHOD
from codeneedle.indexer.index import Index
from codeneedle.indexer.models import RERANK_MODEL
from codeneedle.indexer.rerank import (
    PairTokenizer,
    Reranker,
    RerankSettings,
    is_reranker,
    reorder,
    rerank_text,
    reranker_dir,
)
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.store import ChunkRow
from tests.conftest import run_needle


@pytest.fixture
def folder(tiny_reranker) -> Path:
    return tiny_reranker


@pytest.fixture
def candidate(folder, monkeypatch) -> Path:
    """The tiny re-ranker installed the way a user tries one: ``$NEEDLE_RERANKER``."""
    monkeypatch.setenv("NEEDLE_RERANKER", str(folder))
    return folder

CHUNK = '''def chunk(items, size):
    """Split a list into groups of ``size`` elements; the last group may be shorter."""
    return [items[i:i + size] for i in range(0, len(items), size)]'''
SLUGIFY = '''def slugify(title):
    """Lower-case a title and join its words with hyphens, for use in a URL."""
    return "-".join(title.lower().split())'''
PARSE_COOKIE = '''def parse_cookie(header):
    """Parse a Cookie header into a dict of names and values."""
    return dict(part.strip().split("=", 1) for part in header.split(";") if "=" in part)'''


def row(cid: int, name: str, text: str, path: str = "lib/util.py", kind: str = FUNCTION) -> ChunkRow:
    return ChunkRow(cid, path, "python", kind, name, 1, 3, 0, len(text), text, "", "")


def test_the_shipped_reranker_is_used_unless_turned_off(monkeypatch):
    monkeypatch.delenv("NEEDLE_RERANKER", raising=False)
    shipped = reranker_dir()
    assert shipped is not None and shipped.name == RERANK_MODEL and is_reranker(shipped)
    assert RerankSettings.read(shipped).blend == 3.0  # the weight its residual training used
    for off in ("off", "0", "none"):
        monkeypatch.setenv("NEEDLE_RERANKER", off)
        assert reranker_dir() is None


@pytest.mark.slow
def test_a_pair_is_cls_query_sep_code_sep_with_the_query_cut_to_its_budget(folder):
    tok = PairTokenizer(folder, query_tokens=4, max_tokens=16)
    [ids] = tok.ids("split a list into groups of equal size please", [CHUNK])
    assert len(ids) == 16
    assert ids[0] == tok.cls and ids[5] == tok.sep and ids[-1] == tok.sep  # 4 query tokens, then the code
    assert tok.sep not in ids[1:5]
    [short] = tok.ids("chunk", ["x = 1"])
    assert short[0] == tok.cls and short.count(tok.sep) == 2 and len(short) < 16


@pytest.mark.slow
def test_onnx_runtime_scores_as_the_training_forward_pass_does(folder):
    """The search path (ONNX graph, numpy pooling and head) computes what training optimised (transformers)."""
    import torch

    from codeneedle.training.rerank import Group, build_model, group_logits

    model, head = build_model(folder, _layers(folder))
    settings = Reranker(folder).settings
    with torch.no_grad():
        head.weight.copy_(torch.tensor([settings.weight]))
        head.bias.fill_(settings.bias)
        tok = PairTokenizer(folder, settings.query_tokens, settings.max_tokens)
        group = Group("split an array into groups", CHUNK, (SLUGIFY, PARSE_COOKIE))
        expected = group_logits(model.eval(), head, tok, [group])[0].numpy()
    got = Reranker(folder, precision="fp32").score(group.query, [group.positive, *group.negatives])
    np.testing.assert_allclose(got, expected, atol=2e-3, rtol=1e-3)


def _layers(folder: Path) -> int:
    return json.loads((folder / "config.json").read_text())["num_hidden_layers"]


def test_a_definition_the_query_names_stays_first_whatever_the_logits():
    named = row(1, "parse_cookie", PARSE_COOKIE)
    other = row(2, "chunk", CHUNK)
    found = [(1, 0.5, named), (2, 1.0, other)]
    order = reorder("parse_cookie", found, np.array([-5.0, 5.0]), blend=1.0)
    assert [cid for cid, _, _ in order] == [1, 2]
    # Without a name in the query the logits decide, and the first stage's evidence only weighs in.
    order = reorder("read the cookies a browser sent", found, np.array([-5.0, 5.0]), blend=1.0)
    assert [cid for cid, _, _ in order] == [2, 1]
    # When the logits nearly tie, the first stage's order holds; a large blend keeps it whatever they say.
    order = reorder("read the cookies a browser sent", found, np.array([0.0, 0.1]), blend=1.0)
    assert [cid for cid, _, _ in order] == [1, 2]
    order = reorder("read the cookies a browser sent", found, np.array([-5.0, 5.0]), blend=100.0)
    assert [cid for cid, _, _ in order] == [1, 2]
    tie = [(1, 1.0, named), (2, 0.5, other)]
    assert [c for c, _, _ in reorder("cookies", tie, np.array([0.0, 0.1]), blend=1.0)] == [1, 2]


def test_among_definitions_of_the_named_function_the_rules_order_holds():
    impl = row(1, "slugify", SLUGIFY)
    stub = row(2, "slugify", "def slugify(title: str) -> str: ...", path="strutils/slugify.pyi")
    order = reorder("slugify", [(1, 0.7, impl), (2, 1.0, stub)], np.array([-3.0, 3.0]), blend=1.0)
    assert [cid for cid, _, _ in order] == [1, 2]  # the implementation, as the rules put it, not the stub


def test_only_the_top_depth_candidates_move():
    rows = [row(i, f"f{i}", f"def f{i}(): return {i}") for i in range(5)]
    found = [(r.id, 1.0 - r.id / 10, r) for r in rows]
    order = reorder("anything", found, np.array([0.0, 3.0]), blend=0.0)
    assert [cid for cid, _, _ in order] == [1, 0, 2, 3, 4]


def test_a_test_the_re_ranker_slightly_prefers_still_ranks_below_its_subject():
    impl = row(1, "chunk", CHUNK)
    test = row(2, "test_chunk", "def test_chunk():\n    assert chunk([1, 2, 3], 2) == [[1, 2], [3]]",
               path="tests/test_util.py")
    other = row(3, "chunks", "def chunks(items, n):\n    return [items[i:i + n] for i in range(0, len(items), n)]")
    query, logits = "split a list into groups", np.array([0.0, 0.8])
    # The same logit margin lifts plain code over the first stage's pick, but not a test: it pays its demotion.
    assert [cid for cid, _, _ in reorder(query, [(1, 1.0, impl), (3, 0.9, other)], logits, blend=1.0)] == [3, 1]
    assert [cid for cid, _, _ in reorder(query, [(1, 1.0, impl), (2, 0.9, test)], logits, blend=1.0)] == [1, 2]


def cli_search(repo, query: str, *flags: str, env: dict | None = None) -> list[tuple[str, str]]:
    proc = run_needle("search", query, "--path", str(repo), "--json", "--no-refresh", *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    return [(r["path"], r["name"]) for r in json.loads(proc.stdout)["results"]]


@pytest.mark.slow
# Sentences as doc comments are written: typed questions take late interaction instead (test_late_interaction.py).
@pytest.mark.parametrize("query", ["Serialise a cookie into a Set-Cookie header.", "Split an array into groups."])
def test_the_cli_flags_choose_the_stage_the_library_runs(rankrepo, candidate, query):
    with Index.open(rankrepo, IndexSettings(), create=False) as index:
        first = [(r.path, r.name) for r in index.search(query, rerank=False)]
        both = [(r.path, r.name) for r in index.search(query, rerank=True)]
        default = [(r.path, r.name) for r in index.search(query)]
        deep_first = sorted((r.path, r.name) for r in index.search(query, k=20, rerank=False))
        deep_both = sorted((r.path, r.name) for r in index.search(query, k=20, rerank=True))
    assert deep_first == deep_both  # the same 20 candidates (the re-ranker's depth): only their order changes
    with Index.open(rankrepo, IndexSettings(rerank=False), create=False) as index:
        assert [(r.path, r.name) for r in index.search(query)] == first  # the setting turns it off
    assert default == both  # an installed re-ranker is used unless a setting or a flag turns it off
    env = {"NEEDLE_RERANKER": str(candidate)}
    assert cli_search(rankrepo, query, "--no-rerank", env=env) == first
    assert cli_search(rankrepo, query, env=env) == both
    assert cli_search(rankrepo, query, "--rerank", env=env) == both


@pytest.mark.slow
def test_a_missing_reranker_folder_is_a_clear_error(rankrepo, tmp_path):
    proc = run_needle("search", "cookie", "--path", str(rankrepo), "--no-refresh",
                      env={"NEEDLE_RERANKER": str(tmp_path / "nothing")})
    assert proc.returncode != 0
    assert "NEEDLE_RERANKER" in proc.stderr and "no re-ranker there" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_asking_for_the_reranker_when_it_is_turned_off_is_a_clear_error(rankrepo):
    off = {"NEEDLE_RERANKER": "off"}
    proc = run_needle("search", "cookie", "--path", str(rankrepo), "--no-refresh", "--rerank", env=off)
    assert proc.returncode == 1 and "no re-ranker is installed" in proc.stderr and "needle train --reranker" in proc.stderr
    assert cli_search(rankrepo, "cookie", env=off)  # without the flag: the first stage, no complaint
    # the language server says the same for `rerank: true`, as the CLI and `needle mcp --rerank` do
    from tests.lsp.rawclient import RawClient

    client = RawClient(env=off)
    try:
        client.initialize(rankrepo)
        refused = client.command("needle.search", {"query": "cookie", "rerank": True})["error"]
        assert refused["code"] == -32602 and "no re-ranker is installed" in refused["message"], refused
        assert "result" in client.command("needle.search", {"query": "cookie", "rerank": False})
    finally:
        assert client.close() == 0


@pytest.mark.slow
def test_the_shipped_reranker_reorders_the_cli_results_by_default(rankrepo, monkeypatch):
    """Out of the box ``needle search`` runs both stages: the first stage's top results, re-ordered (exact names
    still first)."""
    monkeypatch.delenv("NEEDLE_RERANKER", raising=False)
    query = "Parse the cookie header of a request."
    first = cli_search(rankrepo, query, "-k", "20", "--no-rerank")
    both = cli_search(rankrepo, query, "-k", "20")
    # its depth is 10: the first stage's top 10 come back re-ordered, and the rest as the first stage left them
    assert sorted(both[:10]) == sorted(first[:10]) and both[:10] != first[:10]
    assert both[10:] == first[10:]
    assert cli_search(rankrepo, query, "-k", "20", "--rerank") == both
    path, name = cli_search(rankrepo, "slugify")[0]
    assert name == "slugify" and not path.endswith(".pyi")


@pytest.mark.slow
def test_exact_names_keep_their_definition_first_with_the_reranker(rankrepo, candidate):
    for query, name in (("slugify", "slugify"), ("Session.request", "Session.request"), ("chunk", "chunk")):
        path, first = cli_search(rankrepo, query, "--rerank", env={"NEEDLE_RERANKER": str(candidate)})[0]
        assert first == name and not path.endswith((".pyi", ".d.ts")), (query, path, first)


def test_methods_and_functions_are_read_with_their_path_and_split_name():
    text = rerank_text(row(1, "Session.requestJson", "def requestJson(self): ...", path="httpkit/sessions.py",
                           kind=METHOD))
    assert text == "httpkit/sessions.py Session request Json\ndef requestJson(self): ..."
    # A comment above the definition is not in the chunk's text: the re-ranker reads it too.
    commented = ChunkRow(2, "lib/a.js", "javascript", FUNCTION, "add", 2, 2, 0, 9, "function add(a, b) {}",
                         "Add two numbers.", "")
    assert rerank_text(commented) == "lib/a.js add\nAdd two numbers.\nfunction add(a, b) {}"
