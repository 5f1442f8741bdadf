"""The query adapter: `needle train --repo DIR --adapter` fits what a user opened into a small query-side map,
saved beside the index; every search through that index uses it at once, nothing is re-embedded, an adapter
fitted for another model is ignored, and `--remove-adapter` undoes it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

from codeneedle.indexer.feedback import Shown, record_open
from codeneedle.indexer.index import Index
from codeneedle.indexer.query_adapter import (
    ADAPTER_NAME,
    MIN_EVENTS,
    REFIT_EVERY,
    QueryAdapter,
    load_adapter,
    refit_due,
)
from codeneedle.indexer.settings import IndexSettings
from tests.conftest import run_needle

pytestmark = pytest.mark.slow  # CLI subprocesses

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "base64.py")
QUERY = "decode base64 text"  # the shipped ranking puts base64.decodebytes first, base64.b64decode a little lower
WANTED = ("base64.py", "b64decode")
UNLOGGED = ("match a filename against a pattern", "remove common leading whitespace")


@pytest.fixture()
def repo(tmp_path) -> Path:
    root = tmp_path / "textutils"
    root.mkdir()
    for name in MODULES:
        shutil.copy(STDLIB / name, root / name)
    assert run_needle("index", str(root)).returncode == 0
    return root


def top(root: Path, query: str, n: int = 3) -> list[tuple[str, str]]:
    proc = run_needle("search", query, "--path", str(root), "--json", "--no-feedback")
    assert proc.returncode == 0, proc.stderr
    return [(r["path"], r["name"]) for r in json.loads(proc.stdout)["results"][:n]]


def embeddings(root: Path) -> list[tuple]:
    with sqlite3.connect(root / ".needle" / "index.db") as db:
        return db.execute("SELECT model, hash, vector FROM embeddings ORDER BY hash").fetchall()


def remembered_top(root: Path, query: str, *flags: str, env: dict | None = None, n: int = 3) -> list[tuple[str, str]]:
    """The results as a user sees them: what was opened for the same query before comes first (remembered.py)."""
    proc = run_needle("search", query, "--path", str(root), "--json", *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    return [(r["path"], r["name"]) for r in json.loads(proc.stdout)["results"][:n]]


def open_wanted(root: Path, query: str) -> None:
    """The user opens b64decode, wherever it is among the first five results they see."""
    n = remembered_top(root, query, n=5).index(WANTED) + 1
    proc = run_needle("search", query, "--path", str(root), "--open", str(n), env={"EDITOR": "", "VISUAL": ""})
    assert proc.returncode == 0, proc.stderr


def test_what_the_user_opened_comes_first_and_nothing_is_re_embedded(repo):
    before = top(repo, QUERY, 5)
    assert before[0] == ("base64.py", "decodebytes") and WANTED in before[1:]
    unlogged_before = [top(repo, q, 1) for q in UNLOGGED]
    vectors_before = embeddings(repo)
    for _ in range(3):
        open_wanted(repo, QUERY)  # the user wants b64decode, not decodebytes
    hints = []
    for query in ("encode bytes for a url", "wrap long paragraphs to a width"):
        proc = run_needle("search", query, "--path", str(repo), "--open", "1", env={"EDITOR": "", "VISUAL": ""})
        assert proc.returncode == 0
        hints.append("--adapter" in proc.stderr)
    assert hints == [False, True]  # the fifth open is enough to learn from, and the CLI says how

    proc = run_needle("train", "--repo", str(repo), "--adapter", "--json")
    assert proc.returncode == 0, proc.stderr
    fit = json.loads(proc.stdout)
    assert (fit["events"], fit["queries"], fit["pairs"], fit["unresolved"]) == (5, 3, 3, 0)
    assert fit["logged_mrr10_before"] < fit["logged_mrr10_after"] == 1.0
    assert Path(fit["adapter"]) == repo / ".needle" / ADAPTER_NAME

    assert top(repo, QUERY)[0] == ("base64.py", "b64decode")
    assert [top(repo, q, 1) for q in UNLOGGED] == unlogged_before  # what was never searched keeps its answer
    assert embeddings(repo) == vectors_before
    status = json.loads(run_needle("status", "--path", str(repo), "--json").stdout)["query_adapter"]
    assert status["in_use"] and status["events"] == 5 and status["scale"] == 1.0  # 3 queries: too few to check

    proc = run_needle("train", "--repo", str(repo), "--remove-adapter", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["removed"] is True
    assert top(repo, QUERY, 5) == before
    assert json.loads(run_needle("status", "--path", str(repo), "--json").stdout)["query_adapter"] is None


def test_the_same_query_again_puts_what_was_opened_for_it_first_without_any_fit(repo):
    before = top(repo, QUERY, 5)
    unlogged = [remembered_top(repo, q) for q in UNLOGGED]
    open_wanted(repo, QUERY)  # once: far too few events to fit anything
    assert remembered_top(repo, "  Decode BASE64   text ")[0] == WANTED  # case and spacing aside
    assert remembered_top(repo, QUERY)[1:] == [r for r in before if r != WANTED][:2]  # the rest keep their order
    assert [remembered_top(repo, q) for q in UNLOGGED] == unlogged  # other queries: as they were
    assert top(repo, QUERY, 5) == before  # --no-feedback: neither recorded nor used
    assert remembered_top(repo, QUERY, env={"NEEDLE_FEEDBACK": "off"}) == before[:3]
    assert WANTED not in remembered_top(repo, QUERY, "--glob", "textwrap.py")  # filters hold
    assert not (repo / ".needle" / ADAPTER_NAME).exists()


def test_a_running_index_picks_up_a_refit_and_ignores_an_adapter_for_another_model(repo):
    # a long-lived reader, as the language server holds one; feedback off, so the log's opens are not put first
    # by themselves (remembered.py) and what moves b64decode up is the adapter alone
    index = Index.open(repo, IndexSettings(feedback=False))
    try:
        plain = [(r.path, r.name) for r in index.search(QUERY, k=3)]
        assert plain[0] == ("base64.py", "decodebytes")
        for _ in range(5):
            record_open(index.index_dir, QUERY, Shown("base64.py", _line(index, "b64decode"), "b64decode"))
        assert run_needle("train", "--repo", str(repo), "--adapter").returncode == 0
        assert index.search(QUERY, k=1)[0].name == "b64decode"  # no restart: the next search reads the new file

        fitted = load_adapter(index.index_dir)
        QueryAdapter(fitted.u, fitted.v, "some-other-model@0", fitted.info).save(index.index_dir)
        assert [(r.path, r.name) for r in index.search(QUERY, k=3)] == plain
        assert index.status().query_adapter["in_use"] is False
        (index.index_dir / ADAPTER_NAME).write_bytes(b"not an npz file")  # damaged: searched without it
        assert [(r.path, r.name) for r in index.search(QUERY, k=3)] == plain
    finally:
        index.close()


def _line(index: Index, name: str) -> int:
    return next(r.start_line for r in index.reader().chunks_in_file("base64.py") if r.name == name)


def test_too_few_opened_results_is_a_clear_error_and_writes_nothing(repo):
    open_wanted(repo, QUERY)
    proc = run_needle("train", "--repo", str(repo), "--adapter")
    assert proc.returncode == 1
    assert "1 usable open events" in proc.stderr and "--open N" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (repo / ".needle" / ADAPTER_NAME).exists()
    missing = run_needle("train", "--repo", str(repo / "nowhere"), "--adapter")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_map_keeps_unit_length_and_is_the_identity_when_empty():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(4, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    identity = QueryAdapter(np.zeros((8, 2), np.float32), rng.normal(size=(2, 8)).astype(np.float32), "m", {})
    assert np.allclose(identity.apply(q), q, atol=1e-6)
    moved = QueryAdapter(rng.normal(size=(8, 2)).astype(np.float32), rng.normal(size=(2, 8)).astype(np.float32),
                         "m", {}).apply(q)
    assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5) and not np.allclose(moved, q)


def test_a_fit_is_due_after_the_first_opens_then_after_every_batch_of_new_ones(tmp_path):
    def opens(n: int) -> None:
        for i in range(n):
            record_open(tmp_path, f"query {i}", Shown("a.py", i + 1))

    opens(MIN_EVENTS - 1)
    assert not refit_due(tmp_path)
    opens(1)
    assert refit_due(tmp_path)
    later = time.time() + 5  # a fit tried after these events (it failed: no adapter was written)
    assert not refit_due(tmp_path, attempted=later)
    eye = np.zeros((4, 1), np.float32)
    # Fitted on all of them (an event's time is rounded to the second, hence the margins).
    QueryAdapter(eye, eye.T, "m", {"log_read_t": time.time() + 0.6}).save(tmp_path)
    time.sleep(1.2)
    opens(REFIT_EVERY - 1)
    assert not refit_due(tmp_path)
    opens(1)
    assert refit_due(tmp_path)


def _held_out_scale(queries: np.ndarray, targets: np.ndarray, codes: np.ndarray) -> tuple[float, dict]:
    import random

    import torch

    from codeneedle.training.query_adapter import AdapterConfig, _choose_scale

    rows = torch.arange(len(queries)).repeat(2)  # each query logged twice, as users repeat searches
    return _choose_scale(torch.tensor(queries), rows, torch.tensor(targets).repeat(2), torch.zeros(0, codes.shape[1]),
                         torch.tensor(codes), AdapterConfig(iters=150, threads=1), random.Random(0))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_the_held_out_check_keeps_a_map_that_carries_to_queries_it_never_saw():
    rng = np.random.default_rng(0)
    codes = _unit(rng.normal(size=(300, 32)))
    targets = rng.choice(300, size=48, replace=False)
    skew = np.eye(32) + 10.0 * rng.normal(size=(32, 3)) @ rng.normal(size=(3, 32)) / 32  # how this user's words drift
    scale, heldout = _held_out_scale(_unit(codes[targets] @ skew), targets, codes)
    assert scale >= 1.0 and heldout[scale] > heldout[0.0] + 0.3


def test_the_held_out_check_leaves_queries_alone_when_the_first_stage_already_finds_what_was_opened():
    rng = np.random.default_rng(1)
    codes = _unit(rng.normal(size=(300, 32)))
    targets = rng.choice(300, size=48, replace=False)
    queries = _unit(codes[targets] + 0.1 * rng.normal(size=(48, 32)))  # each query already nearest its answer
    scale, heldout = _held_out_scale(queries, targets, codes)
    assert scale == 0.0 and set(heldout) == {0.0, 0.25, 0.5, 1.0, 1.5} and heldout[0.0] == max(heldout.values())


_UNDER_A_SIZE_LIMIT = """
import resource, sys
from codeneedle.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))  # `ulimit -f`: EFBIG past it
sys.exit(main(sys.argv[2:]))
"""


def test_a_fit_or_an_open_the_disk_refuses_is_one_line_and_leaves_nothing_half_written(repo):
    """A full disk (here `ulimit -f`, which fails writes the same way) while saving the adapter was a traceback;
    an open logged on it left half a line, and the next open's event joined it and was lost with it."""
    import subprocess
    import sys

    from codeneedle.indexer.feedback import LOG_NAME, read_events

    for _ in range(5):
        open_wanted(repo, QUERY)
    index_dir = repo / ".needle"
    proc = subprocess.run([sys.executable, "-c", _UNDER_A_SIZE_LIMIT, "40000", "train", "--repo", str(repo),
                           "--adapter"], capture_output=True, text=True)  # the adapter: ~50 KB
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write the query adapter" in proc.stderr and "File too large" in proc.stderr, proc.stderr
    assert sorted(p.name for p in index_dir.iterdir() if "adapter" in p.name) == []

    log = index_dir / LOG_NAME
    size = log.stat().st_size
    with sqlite3.connect(index_dir / "index.db") as held:  # its shared-memory file made: the search need not grow it
        held.execute("SELECT count(*) FROM chunks").fetchone()
        proc = subprocess.run([sys.executable, "-c", _UNDER_A_SIZE_LIMIT, str(size + 20), "search", QUERY, "--path",
                               str(repo), "--open", "1"], capture_output=True, text=True,
                              env={**os.environ, "EDITOR": ""})
    assert proc.returncode == 0 and "cannot record the open" in proc.stderr, proc.stderr
    assert log.stat().st_size == size + 20  # half an event
    open_wanted(repo, QUERY)
    assert len(read_events(index_dir)) == 6  # the five before and the one after
