"""Lexical first, vectors behind, committed every few seconds: a cold index stopped early (Ctrl-C or kill -9)
is searchable, consistent, and says it is partial; the next run embeds only what is missing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import NEEDLE, copy_fixture, run_needle
from tests.test_crash_safety import FUNCTION, embeddings_count

pytestmark = pytest.mark.slow  # SIGKILL of indexing subprocesses

FILES = 600  # ~1,800 chunks: ~8 s of encoder work after the first commit on an idle 2-core box (150 files were not)


@pytest.fixture
def cold_repo(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    for i in range(FILES):
        body = "".join(FUNCTION.format(name=name, i=i) for name in ("mean", "spread", "score"))
        (repo / f"src/gen_{i:03d}.py").write_text(body)
    return repo


def start_index(repo) -> subprocess.Popen:
    # Commits every ~0.5 s of encoder work, so the first vectors land quickly even on a busy machine.
    # SIGINT as a terminal gives it: a suite started in the background (`make test &`) ignores SIGINT, and an
    # ignored signal stays ignored across exec, so Ctrl-C would never reach the child.
    return subprocess.Popen([str(NEEDLE), "index", "--quiet", str(repo)],
                            env={**os.environ, "NEEDLE_COMMIT_SECONDS": "0.5"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_vectors(proc, db, at_least: int = 1, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while embeddings_count(db) < at_least:
        assert proc.poll() is None, "indexing ended before the test could stop it"
        assert time.monotonic() < deadline, "no vectors committed in time"
        time.sleep(0.05)


def status(repo) -> dict:
    out = run_needle("status", "--json", str(repo))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_partial_and_searchable(repo) -> dict:
    db = repo / ".needle/index.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    st = status(repo)
    # Every file's chunks (and their keyword rows) were committed before embedding began.
    assert st["files"] == 7 + FILES and st["chunks"] == chunks == fts
    assert st["state"] == "partial"
    assert 0 < st["chunks_embedded"] < st["chunks"], st

    out = run_needle("search", "--path", str(repo), "--no-refresh", "--json", "compute_spread_42")
    answer = json.loads(out.stdout)
    assert answer["results"][0]["path"] == "src/gen_042.py", answer["results"][:3]
    assert answer["partial"] is True and answer["index"]["state"] == "partial"
    assert answer["index"]["chunks_embedded"] == st["chunks_embedded"]

    people = run_needle("search", "--path", str(repo), "--no-refresh", "compute_spread_42")
    assert "results are partial" in people.stderr and "interrupted" in people.stderr
    return st


def test_sigint_after_the_first_commits_leaves_a_partial_index_the_next_run_completes(cold_repo):
    db = cold_repo / ".needle/index.db"
    proc = start_index(cold_repo)
    wait_for_vectors(proc, db)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err

    before = assert_partial_and_searchable(cold_repo)
    cached = embeddings_count(db)

    done = run_needle("index", "--json", str(cold_repo))
    assert done.returncode == 0, done.stderr
    # The vectors committed before Ctrl-C are kept: only the rest is embedded now.
    assert json.loads(done.stdout)["chunks_embedded"] == embeddings_count(db) - cached
    after = status(cold_repo)
    assert after["state"] == "ready" and after["chunks_embedded"] == after["chunks"] == before["chunks"]
    out = json.loads(run_needle("search", "--path", str(cold_repo), "--json", "compute_spread_42").stdout)
    assert out["partial"] is False and "index" not in out


def test_sigkill_leaves_a_partial_index_and_status_said_indexing_while_it_ran(cold_repo):
    db = cold_repo / ".needle/index.db"
    proc = start_index(cold_repo)
    try:
        wait_for_vectors(proc, db)
        during = status(cold_repo)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if during["state"] == "indexing":
        assert during["chunks_embedded"] < during["chunks"]
    else:  # the run may have finished in the second `status` took to start; then it must say so
        assert during["state"] == "ready" and during["chunks_embedded"] == during["chunks"]
        pytest.skip("indexing finished before it could be killed")
    assert_partial_and_searchable(cold_repo)
