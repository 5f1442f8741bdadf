"""kill -9 at any moment of indexing leaves an index the next run opens cleanly, and no embedding is redone."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import NEEDLE, copy_fixture, run_needle

pytestmark = pytest.mark.slow  # SIGKILL of indexing subprocesses

FUNCTION = '''
def compute_{name}_{i}(values):
    """Return the {name} of values, number {i}."""
    total = 0
    for v in values:
        total += v * {i}
    return total / max(len(values), 1)
'''


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory):
    repo = copy_fixture("minirepo", tmp_path_factory.mktemp("crash") / "repo")
    for i in range(60):
        body = "".join(FUNCTION.format(name=name, i=i) for name in ("mean", "spread", "score"))
        (repo / f"src/gen_{i:03d}.py").write_text(body)
    return repo


def embeddings_count(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_when(repo, condition, env) -> None:
    proc = subprocess.Popen([str(NEEDLE), "index", "--quiet", str(repo)], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not condition() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


# (label, how many embeddings must be cached before the kill)
KILL_POINTS = [("before any work", 0), ("first batches", 20), ("midway", 90), ("late", 170)]


@pytest.mark.parametrize(("label", "threshold"), KILL_POINTS, ids=[k for k, _ in KILL_POINTS])
def test_sigkill_during_indexing_loses_nothing(big_repo, label, threshold):
    db = big_repo / ".needle/index.db"
    before = embeddings_count(db) if db.exists() else 0
    kill_when(big_repo, lambda: embeddings_count(db) >= before + threshold if threshold else True,
              {"NEEDLE_BATCH_FILES": "4"})
    cached = embeddings_count(db)
    assert cached >= before  # nothing already stored was lost

    if db.exists():  # a kill before the index folder was made leaves nothing to check
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    proc = run_needle("index", "--json", str(big_repo))
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    # Everything embedded before the kill is reused: only the rest is embedded now.
    assert cached + stats["chunks_embedded"] == embeddings_count(db)

    status = json.loads(run_needle("status", "--json", str(big_repo)).stdout)
    assert status["files"] == 7 + 60
    with sqlite3.connect(db) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN embeddings e ON e.hash = c.hash WHERE e.hash IS NULL"
        ).fetchone()[0]
        fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert orphans == 0 and fts == chunks

    out = run_needle("search", "--path", str(big_repo), "--json", "--no-refresh", "compute_spread_42")
    hits = json.loads(out.stdout)["results"]
    assert hits[0]["path"] == "src/gen_042.py", hits[:3]
