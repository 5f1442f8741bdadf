"""`needle train --repo` and `needle eval` as a user runs them, on real stdlib code and the real encoder."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from codeneedle.indexer.models import TUNED_MODEL
from codeneedle.indexer.query_adapter import QueryAdapter
from tests.conftest import run_needle

pytestmark = pytest.mark.slow  # `needle train` / `needle eval` subprocesses with the real encoder

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "base64.py")  # 36 documented functions between them


@pytest.fixture(scope="module")
def documented_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("adapt") / "textutils"
    repo.mkdir()
    for name in MODULES:
        shutil.copy(STDLIB / name, repo / name)
    return repo


def test_eval_on_a_repository_ranks_its_own_functions(documented_repo):
    proc = run_needle("eval", "--benchmark", str(documented_repo), "--model", "minilm", "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]["minilm"]
    assert set(results) == {"bm25", "dense", "hybrid"}
    assert results["dense"]["queries"] >= 16
    # 36 candidates: chance MRR@10 is about 0.1; a real encoder on real docstrings does far better.
    assert results["dense"]["mrr@10"] > 0.5
    assert results["dense"]["r@1"] <= results["dense"]["r@5"] <= results["dense"]["r@10"]


def test_eval_on_a_repository_in_a_language_documented_its_own_way(tmp_path):
    """Elixir documents with an `@doc` attribute, not a comment: each of the three makes a query."""
    repo = tmp_path / "shop"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "cart.ex").write_text('''defmodule Shop.Cart do
  @doc "Add a quantity of a product to the cart, merging with a line already there."
  def add(cart, sku, quantity) do
    Map.update(cart, sku, quantity, &(&1 + quantity))
  end

  @doc "Remove a product from the cart, whatever its quantity."
  def remove(cart, sku) do
    cart
    |> Map.delete(sku)
  end

  @doc """
  The total price of the cart in cents, from a price list by product code.
  """
  def total(cart, prices) do
    Enum.reduce(cart, 0, fn {sku, n}, acc -> acc + n * Map.fetch!(prices, sku) end)
  end
end
''')
    proc = run_needle("eval", "--benchmark", str(repo), "--model", "minilm", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"]["minilm"]["dense"]["queries"] == 3


def test_eval_prints_a_table_with_ratios_against_the_compared_model(documented_repo):
    proc = run_needle("eval", "--benchmark", str(documented_repo), "--compare", "minilm")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "MRR@10" in lines[1] and "vs minilm dense" in lines[1]
    minilm_row = next(line for line in lines if line.startswith("minilm dense"))
    assert minilm_row.rstrip().endswith("x1.00")
    assert any(line.startswith(f"{TUNED_MODEL} dense") for line in lines)


def test_adapting_to_a_repository_trains_and_reindexes_with_the_new_model(documented_repo):
    older = documented_repo / ".needle" / "models" / "adapted-20260101-000000"  # an earlier run's model
    older.mkdir(parents=True)
    (older / "model.safetensors").write_bytes(b"x" * 1024)
    assert run_needle("index", str(documented_repo)).returncode == 0
    rng = np.random.default_rng(0)  # a query adapter fitted for the index's model before this run
    QueryAdapter(rng.normal(size=(384, 2)).astype(np.float32), rng.normal(size=(2, 384)).astype(np.float32),
                 "needle-code-v3@0", {}).save(documented_repo / ".needle")
    proc = run_needle("train", "--repo", str(documented_repo), "--steps", "2", "--minutes", "3", "--batch-size", "4",
                      "--code-max-tokens", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "the query adapter was fitted for the model before" in proc.stderr  # searches no longer use it
    summary = json.loads(proc.stdout)
    model = Path(summary["model"])
    assert summary["steps"] == 2 and summary["reindexed_chunks"] > 0
    recipe = json.loads((model / "train_state.json").read_text())["config"]
    assert (recipe["batch_size"], recipe["code_max_tokens"]) == (4, 64)  # smaller steps for a slow machine
    assert model.parent == documented_repo / ".needle" / "models" and (model / "config.json").is_file()
    assert not older.exists()  # the index is on the new model: the earlier one would only take disk
    assert not (documented_repo / ".needle" / "training").exists() or not any((documented_repo / ".needle" / "training").iterdir())

    status = json.loads(run_needle("status", str(documented_repo), "--json").stdout)
    assert status["model"].startswith(model.name)
    # A later plain `needle index` keeps the adapted model instead of rebuilding with the default one.
    again = run_needle("index", "--json", str(documented_repo))
    assert again.returncode == 0 and json.loads(again.stdout)["chunks_embedded"] == 0
    hits = json.loads(run_needle("search", "--path", str(documented_repo), "--json", "--no-refresh",
                                 "split a shell command line into tokens").stdout)["results"]
    assert hits[0]["path"] == "shlex.py"

    # The repository moved (the index stores the model's absolute path): its index keeps its own adapted model.
    moved = shutil.copytree(documented_repo, documented_repo.parent / "moved")
    model.rename(model.with_name("elsewhere"))
    try:
        proc = run_needle("index", "--json", str(moved))
        assert proc.returncode == 0 and "rebuilding" not in proc.stderr, proc.stderr
        proc = run_needle("status", str(moved), "--json")
        assert proc.returncode == 0 and json.loads(proc.stdout)["model"].startswith(model.name), proc.stdout
    finally:
        model.with_name("elsewhere").rename(model)


def test_train_needs_something_to_train_on(tmp_path):
    proc = run_needle("train")
    assert proc.returncode == 1 and "--repo PATH" in proc.stderr
    proc = run_needle("train", "--repo", str(tmp_path))
    assert proc.returncode == 1 and "documented functions" in proc.stderr


def test_eval_without_cosqa_data_says_where_it_looked(tmp_path):
    proc = run_needle("eval", "--benchmark", "cosqa-dev", env={"NEEDLE_COSQA_DIR": str(tmp_path)})
    assert proc.returncode == 1 and "CoSQA data not found" in proc.stderr and "\n" == proc.stderr[-1]


def test_training_on_a_pairs_file_follows_the_shipped_recipe(tmp_path):
    from codeneedle.indexer.models import SHIPPED_MODELS_DIR, TUNED_MODEL
    from tests.test_training_train import write_pairs

    data = tmp_path / "pairs.jsonl"
    write_pairs(data)
    recipe = SHIPPED_MODELS_DIR / TUNED_MODEL / "train_state.json"
    proc = run_needle("train", "--data", str(data), "--config", str(recipe), "--steps", "2", "--base", "minilm",
                      "--out", str(tmp_path / "run"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 2 and Path(summary["model"]) == tmp_path / "run" / "model"
    saved = json.loads((tmp_path / "run" / "model" / "train_state.json").read_text())["config"]
    shipped = json.loads(recipe.read_text())["config"]
    assert saved["lr"] == shipped["lr"] and saved["code_max_tokens"] == shipped["code_max_tokens"]
    assert saved["train_data"] == str(data) and saved["steps"] == 2


def test_ctrl_c_while_adapting_changes_nothing(documented_repo, tmp_path):
    import signal
    import subprocess
    import time

    from tests.conftest import NEEDLE

    repo = shutil.copytree(documented_repo, tmp_path / "repo", ignore=shutil.ignore_patterns(".needle"))
    assert run_needle("index", "-q", str(repo)).returncode == 0
    before = json.loads(run_needle("status", str(repo), "--json").stdout)["model"]
    proc = subprocess.Popen([str(NEEDLE), "train", "--repo", str(repo), "--steps", "500", "--batch-size", "4",
                             "--code-max-tokens", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not list((repo / ".needle" / "training").glob("adapted-*/config.json")):  # the run has begun training
        assert proc.poll() is None and time.time() - t0 < 240, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    assert json.loads(run_needle("status", str(repo), "--json").stdout)["model"] == before
    assert not list((repo / ".needle").glob("models/adapted-*"))
