"""The query tower: trained by `needle train --query-tower` against frozen code vectors, it changes how queries are
embedded and nothing else (code vectors, model id and indexes stay as they were)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

from codeneedle.indexer import encoder as encoder_module
from codeneedle.indexer.encoder import Encoder
from codeneedle.indexer.index import Index
from codeneedle.indexer.models import resolve_model
from codeneedle.indexer.settings import IndexSettings
from tests.conftest import run_needle, run_needle_together
from tests.test_training_rerank import FUNCTIONS, records

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tower(tmp_path_factory):
    """A tower trained for a few dozen steps on the toolbox pairs, against the untuned base model's code vectors."""
    work = tmp_path_factory.mktemp("tower")
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    proc = run_needle("train", "--query-tower", "--data", str(data), "--base", "minilm", "--out", str(work / "t"),
                      "--steps", "30", "--batch-size", "8", "--lr", "1e-4", "--json")
    assert proc.returncode == 0, proc.stderr
    return work / "t", json.loads(proc.stdout)


def tower_for_another_model(folder, dest):
    """A copy of the tower that says it was trained against another model's code vectors."""
    shutil.copytree(folder, dest)
    record = json.loads((dest / "query_tower.json").read_text())
    record["code_model"] = "needle-code-v3@000000000000+int8+t128"
    (dest / "query_tower.json").write_text(json.dumps(record))
    return dest


def encoder(monkeypatch, tower_dir=None) -> Encoder:
    if tower_dir is None:
        monkeypatch.setenv("NEEDLE_QUERY_TOWER", "off")
    else:
        monkeypatch.setenv("NEEDLE_QUERY_TOWER", str(tower_dir))
    return Encoder.load("minilm")


def test_the_tower_holds_only_the_layers_it_retrained(tower):
    folder, summary = tower
    tensors = load_file(str(folder / "model.safetensors"))
    assert tensors and all(k.startswith("encoder.layer.") for k in tensors)  # word embeddings stay shared
    assert all(v.dtype == np.float16 for v in tensors.values())
    record = json.loads((folder / "query_tower.json").read_text())
    assert record["code_model"] == Encoder.load("minilm").model_id == summary["code_model"]
    assert record["steps"] == 30 and record["pairs"] == len(FUNCTIONS)


def test_queries_go_through_the_tower_and_code_does_not(tower, monkeypatch):
    folder, _ = tower
    shared, towered = encoder(monkeypatch), encoder(monkeypatch, folder)
    assert towered.query_tower == folder and shared.query_tower is None
    assert towered.model_id == shared.model_id  # the index's vectors stay valid: nothing is re-embedded
    query = ["Flatten a list of lists"]
    assert not np.allclose(towered.encode_queries(query), shared.encode_queries(query), atol=1e-4)
    code = [records()[0]["code"]]
    assert np.allclose(towered.encode(code), shared.encode(code), atol=1e-6)


def test_the_tower_learned_its_pairs(tower, monkeypatch):
    folder, summary = tower
    assert summary["loss_last"] < summary["loss_first"]
    recs = records()
    queries = [r["query"] for r in recs]

    def gold_margin(enc: Encoder) -> float:
        """How far each query's own code is ahead of the best other one (cosine), on average."""
        codes = enc.encode([r["code"] for r in recs])
        sims = enc.encode_queries(queries) @ codes.T
        return float(np.mean([sims[i, i] - np.delete(sims[i], i).max() for i in range(len(recs))]))

    # Memorising 11 pairs is easy; what this checks is that search-time queries see what training changed.
    assert gold_margin(encoder(monkeypatch, folder)) > gold_margin(encoder(monkeypatch)) + 0.02


def test_a_run_continues_from_a_tower_where_it_left_off(tower, tmp_path):
    folder, first = tower
    data = folder.parent / "train.jsonl"

    def run(out: str, *more: str) -> tuple[str, ...]:
        return ("train", "--query-tower", "--data", str(data), "--base", "minilm", "--out", str(tmp_path / out),
                "--steps", "5", "--batch-size", "8", "--lr", "1e-6", "--threads", "1", "--json", *more)

    procs = run_needle_together(run("fresh"), run("t2", "--from-tower", str(folder)))
    assert all(p.returncode == 0 for p in procs), [p.stderr for p in procs]
    fresh, continued = (json.loads(p.stdout) for p in procs)
    # From the tower's weights, not the shared ones: the loss starts near where the first run ended.
    assert continued["loss_first"] < fresh["loss_first"] / 2
    assert continued["loss_first"] < first["loss_first"]
    record = json.loads((tmp_path / "t2" / "query_tower.json").read_text())
    assert record["init"] == {"tower": str(folder), "steps": 30, "total_steps": 30, "same_order": True}
    assert not (tmp_path / "t2" / "cache").exists()  # the first run's code vectors were reused, not re-embedded


def test_a_continuation_onto_more_data_embeds_only_the_new_code(tower, tmp_path):
    folder, _ = tower
    earlier = tmp_path / "earlier"
    shutil.copytree(folder, earlier)
    (cache,) = (earlier / "cache").glob("codes-*.npy")
    np.save(cache, np.full(np.load(cache).shape, 0.5, dtype=np.float16))  # marks the earlier stage's vectors
    old = records()
    new = [dict(r, code=r["code"] + "\n    # revised", query="Revised: " + r["query"]) for r in old[:8]]
    data = tmp_path / "more.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in old + new))
    proc = run_needle("train", "--query-tower", "--data", str(data), "--base", "minilm", "--out", str(tmp_path / "t"),
                      "--from-tower", str(earlier), "--steps", "2", "--batch-size", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    (vectors,) = [np.load(f) for f in (tmp_path / "t" / "cache").glob("codes-*.npy")]
    assert vectors.shape[0] == len(old) + len(new)
    assert (vectors[: len(old)] == 0.5).all()  # read from the earlier stage, not embedded again
    assert not (vectors[len(old):] == 0.5).any() and np.allclose(np.linalg.norm(vectors[len(old):], axis=1), 1, atol=0.01)
    record = json.loads((tmp_path / "t" / "query_tower.json").read_text())
    assert record["init"]["same_order"] is False  # other data: its order starts afresh, it is not the earlier one's


def test_a_stage_is_blended_with_the_stage_it_continued_without_training_again(tower, tmp_path):
    folder, _ = tower
    data = folder.parent / "train.jsonl"
    stage = run_needle("train", "--query-tower", "--data", str(data), "--base", "minilm", "--out", str(tmp_path / "s2"),
                       "--from-tower", str(folder), "--steps", "5", "--batch-size", "8", "--lr", "1e-4", "--json")
    assert stage.returncode == 0, stage.stderr

    def reexport(source, out):
        return run_needle("train", "--query-tower", "--reexport", str(source), "--wise-alpha", "0.5",
                          "--out", str(out), "--base", "minilm", "--json")

    proc = reexport(tmp_path / "s2", tmp_path / "mix")
    assert proc.returncode == 0, proc.stderr
    earlier, later = load_file(str(folder / "model.safetensors")), load_file(str(tmp_path / "s2" / "model.safetensors"))
    mix = load_file(str(tmp_path / "mix" / "model.safetensors"))
    assert set(mix) == set(later)
    for name in mix:  # halfway between the stage and the one it continued, not the shared layers
        halfway = (earlier[name].astype(np.float32) + later[name].astype(np.float32)) / 2
        assert np.allclose(mix[name].astype(np.float32), halfway, atol=1e-3), name
    assert any(not np.array_equal(earlier[n], later[n]) for n in mix)
    record = json.loads((tmp_path / "mix" / "query_tower.json").read_text())
    assert record["config"]["alpha"] == 0.5 and record["reexported_from"] == str(tmp_path / "s2")
    again = reexport(tmp_path / "mix", tmp_path / "mix2")  # a blend is not blended again
    assert again.returncode != 0 and "already blended" in again.stderr and not (tmp_path / "mix2").exists()


def test_a_continuation_draws_the_batches_a_single_longer_run_would_have():
    from itertools import islice

    from codeneedle.training.query_tower import batches

    single = list(islice(batches(10, 3, seed=7), 8))  # 3 batches a pass: the order is reshuffled twice
    first_pass = [i for b in single[:3] for i in b]
    assert len(set(first_pass)) == 9  # a pass draws each record once
    assert list(islice(batches(10, 3, seed=7, skip=4), 4)) == single[4:]
    assert list(islice(batches(10, 3, seed=7, skip=6), 2)) == single[6:]


def test_a_run_refuses_to_continue_from_a_tower_of_another_model(tower, tmp_path):
    folder, _ = tower
    other = tower_for_another_model(folder, tmp_path / "other")
    proc = run_needle("train", "--query-tower", "--data", str(folder.parent / "train.jsonl"), "--base", "minilm",
                      "--out", str(tmp_path / "t3"), "--from-tower", str(other), "--steps", "2", "--batch-size", "8",
                      "--json")
    assert proc.returncode != 0 and "not a query tower trained against" in proc.stderr


def test_a_tower_trained_for_another_model_is_not_used(tower, monkeypatch, tmp_path):
    folder, _ = tower
    other = tower_for_another_model(folder, tmp_path / "other")
    assert encoder(monkeypatch, other).query_tower is None
    # a folder with no tower at all is an error (test_a_query_tower_path_that_holds_none_is_an_error_...)


def test_an_installed_tower_serves_searches_over_an_index_built_without_it(tower, monkeypatch, tmp_path):
    folder = tmp_path / "tower"
    shutil.copytree(tower[0], folder)
    model = tmp_path / "model"
    shutil.copytree(resolve_model("minilm")[1], model)
    repo = tmp_path / "repo"
    (repo / "toolbox").mkdir(parents=True)
    (repo / "toolbox" / "util.py").write_text("\n\n".join(code for _q, code in FUNCTIONS.values()) + "\n")
    monkeypatch.setenv("NEEDLE_QUERY_TOWER", "")
    settings = IndexSettings(model=str(model), index_dir=tmp_path / "index")
    with Index.open(repo, settings) as index:
        assert index.update().chunks_embedded == len(FUNCTIONS)
        before = [h.name for h in index.search("Flatten a list of lists", k=3)]
    install = ("train", "--query-tower", "--out", str(folder), "--base", str(model), "--install", "--json")
    refused = run_needle(*install)  # trained against "minilm@...", and this folder's model is "model@..."
    assert refused.returncode != 0 and "code vectors" in refused.stderr and not (model / "query").exists()
    record = json.loads((folder / "query_tower.json").read_text())
    record["code_model"] = Encoder.load(str(model)).model_id  # the copy is the same weights under another name
    (folder / "query_tower.json").write_text(json.dumps(record))
    proc = run_needle("train", "--query-tower", "--data", str(tmp_path / "none.jsonl"), "--json")
    assert proc.returncode != 0 and "no training pairs" in proc.stderr
    installed = run_needle(*install)
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)["installed"] == str(model / "query")
    monkeypatch.setattr(encoder_module, "_SHARED", {})  # as a new process finds it: the model is loaded once
    with Index.open(repo, settings) as index:
        assert index.encoder.query_tower == model / "query"
        assert index.update().chunks_embedded == 0  # the code vectors are still the model's
        hits = index.search("Flatten a list of lists", k=3)
    assert hits[0].name == "flatten" and before[0] == "flatten"


def test_a_query_adapter_fitted_before_the_tower_is_not_applied_through_it(tower, monkeypatch, tmp_path):
    """An adapter maps query vectors; the tower makes different ones, so an adapter belongs to one of the two."""
    from codeneedle.indexer.query_adapter import QueryAdapter

    folder, _ = tower
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "util.py").write_text(records()[0]["code"].split("\n", 1)[1] + "\n")
    settings = IndexSettings(model="minilm", index_dir=tmp_path / "index")
    monkeypatch.setenv("NEEDLE_QUERY_TOWER", "off")
    with Index.open(repo, settings) as index:
        index.update()
        dim = index.vectors().dim
        rng = np.random.default_rng(0)
        QueryAdapter(rng.normal(size=(dim, 4)).astype(np.float32), rng.normal(size=(4, dim)).astype(np.float32),
                     index.query_id, {}).save(index.index_dir)
        assert index.query_id == index.model_id
        assert index.status().query_adapter["in_use"] and index.status().query_tower is None
    monkeypatch.setenv("NEEDLE_QUERY_TOWER", str(folder))
    with Index.open(repo, settings) as index:
        assert index.query_id.startswith(index.model_id + "+q")
        assert not index.status().query_adapter["in_use"] and index.status().query_tower == str(folder)


def test_the_shipped_model_serves_queries_through_the_tower_it_ships(monkeypatch):
    # A retrained model must ship a tower trained against its own code vectors, or searches silently lose it.
    monkeypatch.delenv("NEEDLE_QUERY_TOWER", raising=False)
    shipped = Encoder.load()
    assert shipped.query_tower == shipped.folder / "query"
    record = json.loads((shipped.query_tower / "query_tower.json").read_text())
    assert record["code_model"].partition("+")[0] == shipped.model_id.partition("+")[0]
    assert record["steps"] > 0 and record["loss_last"] < record["loss_first"]


def test_a_query_tower_path_that_holds_none_is_an_error_not_a_silent_fallback(monkeypatch, tmp_path):
    from codeneedle.errors import ModelNotFoundError

    monkeypatch.setenv("NEEDLE_QUERY_TOWER", str(tmp_path / "no-such-tower"))
    with pytest.raises(ModelNotFoundError, match="no query tower there"):
        Encoder.load()
