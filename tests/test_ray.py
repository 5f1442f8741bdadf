"""`needle index --ray`: embedding on a real Ray cluster (a head plus worker node processes on 127.0.0.1).

The cluster is started once for the module (start-up costs tens of seconds on this machine); the tests
that kill nodes start the nodes they kill. What is checked is the contract: an index built through Ray is
the index a single process builds (same chunks, same vectors within float tolerance, same top-k), an
incremental run sends only what changed, a worker killed mid-batch loses and duplicates nothing, and a
head that goes away ends the run with one clear line and leaves every index consistent.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import NEEDLE, copy_fixture, run_needle
from tests.ray_local import RAY_ENV, LocalRayCluster

# This process is a Ray driver too (the killed-worker test): Ray reads its settings when first imported.
# The default engine (int8 on the CPU) runs one text per batch, so a text's vector does not depend on how the
# cluster batches it: equality is checked strictly at the precision users get.
os.environ.update(RAY_ENV)
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'codeneedle[ray]')")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPOS = ("minirepo", "polyglot")
QUERIES = ("parse a configuration file", "retry with exponential backoff", "bank account balance",
           "least recently used cache", "ring buffer push")


@pytest.fixture(scope="module")
def cluster():
    """Head (no CPUs: it only coordinates) + two 1-CPU worker nodes, each a process group of its own."""
    c = LocalRayCluster()
    try:
        c.start_head(cpus=0)
        c.add_worker(1)
        c.add_worker(1)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    """The two fixture repositories indexed by the ordinary single-process path."""
    base = tmp_path_factory.mktemp("single")
    repos = {name: copy_fixture(name, base / name) for name in REPOS}
    proc = run_needle("index", "-q", *map(str, repos.values()))
    assert proc.returncode == 0, proc.stderr
    return repos


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether process ``pid`` is ``ancestor`` or one of its descendants (read from /proc)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def chunks_of(repo: Path) -> dict[tuple, np.ndarray]:
    """(path, start_line, end_line, hash) -> vector, read straight from the index's SQLite file."""
    with sqlite3.connect(repo / ".needle" / "index.db") as db:
        rows = db.execute("SELECT c.path, c.start_line, c.end_line, c.hash, e.vector FROM chunks c "
                          "JOIN embeddings e ON e.hash = c.hash").fetchall()
    return {row[:4]: np.frombuffer(row[4], dtype=np.float32) for row in rows}


def embeddings_count(repo: Path) -> int:
    with sqlite3.connect(repo / ".needle" / "index.db") as db:
        return db.execute("SELECT count(*) FROM embeddings").fetchone()[0]


def assert_same_index(built: Path, ref: Path) -> None:
    ours, theirs = chunks_of(built), chunks_of(ref)
    assert sorted(ours) == sorted(theirs)  # same chunks at the same places with the same content
    worst = max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours)
    assert worst < 1e-4, f"vectors differ by up to {worst}"  # batching changes padding, not meaning
    # Same top-k: exact cosine ranking over each index's stored vectors (the ANN graph is built by several
    # threads, so its approximate tail may differ run to run even for one index), and the same best hit.
    for query in QUERIES:
        assert exact_top(built, query) == exact_top(ref, query), query
        assert search(built, query)[0]["path"] == search(ref, query)[0]["path"], query


def exact_top(repo: Path, query: str, k: int = 10) -> list[tuple]:
    """(path, start_line, end_line) of the k chunks most like ``query`` by exact cosine over stored vectors."""
    from codeneedle.indexer.encoder import Encoder
    from codeneedle.indexer.models import resolve_model

    qvec = Encoder.shared(*resolve_model(None)).encode_queries([query])[0]
    chunks = chunks_of(repo)
    keys = sorted(chunks)
    sims = np.stack([chunks[key] for key in keys]) @ qvec
    return [keys[i][:3] for i in np.argsort(-sims, kind="stable")[:k]]


def search(repo: Path, query: str) -> list[dict]:
    """Top 5 through the library (one encoder load for the whole module, not one per query)."""
    from codeneedle.indexer.index import Index

    with Index.open(repo, create=False) as index:
        return [r.to_dict() for r in index.search(query, k=5)]


def index_with_ray(cluster: LocalRayCluster, *args: str, env: dict | None = None,
                   stderr: list[str] | None = None) -> list[dict]:
    proc = run_needle("index", "--ray", cluster.address, "--json", *args, env={**RAY_ENV, **(env or {})},
                      timeout=500)
    assert proc.returncode == 0, proc.stderr
    if stderr is not None:
        stderr.append(proc.stderr)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_two_repositories_indexed_through_the_cluster_equal_the_single_process_index(
        cluster, reference, tmp_path_factory):
    base = tmp_path_factory.mktemp("ray")
    repos = {name: copy_fixture(name, base / name) for name in REPOS}
    listing = base / "repos.txt"
    listing.write_text("\n".join(REPOS) + "\n")

    # A shell without the README's loopback export (Ray's default), and more workers than the cluster has CPUs.
    said: list[str] = []
    stats = index_with_ray(cluster, "--collection", str(listing), "--ray-workers", "3",
                           env={"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}, stderr=said)
    assert "has room for 2 workers, not 3: starting 2" in said[0]

    assert [s["repo"] for s in stats] == [str(repos[n]) for n in REPOS]
    for name in REPOS:
        assert_same_index(repos[name], reference[name])

    # Incremental: one edited function is the only chunk sent to the cluster; nothing changed sends nothing.
    loader = repos["minirepo"] / "src/config/loader.py"
    loader.write_text(loader.read_text().replace("def merge_settings(", "def merge_settings_deep("))
    (again,) = index_with_ray(cluster, str(repos["minirepo"]))
    assert (again["files_changed"], again["chunks_embedded"]) == (1, 1)
    (idle,) = index_with_ray(cluster, str(repos["minirepo"]))
    assert (idle["files_changed"], idle["chunks_embedded"]) == (0, 0)
    assert (again["ray_workers"], idle["ray_workers"]) == (2, 0)  # nothing to embed: no actor started
    assert search(repos["minirepo"], "merge_settings_deep")[0]["name"] == "merge_settings_deep"


def test_a_worker_killed_mid_batch_is_retried_elsewhere_and_nothing_is_lost_or_doubled(
        cluster, reference, tmp_path, monkeypatch):
    from codeneedle.indexer import ray_embed
    from codeneedle.indexer.index import Index

    monkeypatch.setattr(ray_embed, "TEXTS_PER_CALL", 2)  # many small calls: the kill lands mid-run
    doomed = cluster.add_worker(1)
    repo = copy_fixture("polyglot", tmp_path / "polyglot")
    with Index.open(repo) as index:
        embedder = ray_embed.RayEmbedder(cluster.address, index.model_name, index.model_dir, index.model_id,
                                         workers=3)
        try:
            # One actor per worker node (1 CPU each, none on the head); find the one on the doomed node.
            actors = embedder.where()
            assert len({node for node, _, _ in actors}) == 3
            killed = []
            fill = embedder._fill

            def fill_then_kill(todo, running, texts):
                """The doomed node dies just as the first dispatch gives every actor its calls.

                Killing it before the calls go out makes sure its calls can never finish: killing it after
                left that to timing (a call of two texts takes ~15 ms), and nothing was retried when the
                doomed actor answered first. The driver still believes the actor alive, so it sends it work."""
                if killed:
                    return fill(todo, running, texts)
                # The actor's own process first: calls go straight to it, not through the raylet, so a worker
                # that outlived its node for a moment could still answer them.
                (pid,) = [pid for _node, pid, _dev in actors if descends_from(pid, doomed.proc.pid)]
                os.kill(pid, signal.SIGKILL)
                doomed.kill()  # raylet, workers and the actor on it, gone before this returns
                killed.append(time.monotonic())
                fill(todo, running, texts)
                assert len({id(actor) for actor, _ in running.values()}) == 3, "a call on every actor"

            monkeypatch.setattr(embedder, "_fill", fill_then_kill)
            index.embedder = embedder
            stats = index.update()
        finally:
            embedder.close()
    assert killed and embedder.retries >= 1, "no batch was in flight on the killed node"
    assert_same_index(repo, reference["polyglot"])
    # Each chunk went into the store once: every vector written is one chunk's, none twice, none missing.
    assert stats.chunks_embedded == embeddings_count(repo) == len({k[3] for k in chunks_of(repo)})


def test_the_head_going_away_is_one_clear_error_and_every_index_stays_consistent(reference, tmp_path):
    lone = LocalRayCluster()
    try:
        lone.start_head(cpus=1)
        repo = copy_fixture("polyglot", tmp_path / "polyglot")
        # Enough extra code that the run is still embedding when the head is stopped, even on an idle machine.
        for i in range(600):
            (repo / f"gen_{i:03d}.py").write_text(
                f"def scale_{i}(values, factor={i}):\n    return [v * factor + {i} for v in values]\n")
        # Vectors committed in groups of 4, two chunks per call: the run is still going when the head dies.
        env = {**RAY_ENV, "NEEDLE_COMMIT_SECONDS": "0.01", "NEEDLE_RAY_BATCH": "2"}
        proc = subprocess.Popen([str(NEEDLE), "index", "-q", "--ray", lone.address, str(repo)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**lone.env, **env})
        db = repo / ".needle" / "index.db"
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if db.exists() and embeddings_count(repo) > 0:
                    break
            except sqlite3.OperationalError:  # the schema is not there yet
                pass
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the head could be killed"
        lone.stop()
        _, err = proc.communicate(timeout=180)
    finally:
        lone.stop()
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"needle: error: lost the Ray cluster at {lone.address}"), err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cached = embeddings_count(repo)
    assert cached > 0
    # The work done before the loss is kept: a local run finishes the index and embeds only the rest.
    done = run_needle("index", "--json", str(repo))
    assert done.returncode == 0, done.stderr
    total = len({k[3] for k in chunks_of(repo)})
    assert json.loads(done.stdout)["chunks_embedded"] == total - cached
    assert embeddings_count(repo) == total


def test_a_cluster_with_no_room_for_a_worker_stops_the_run_at_the_first_repository(cluster, tmp_path):
    """`--ray-cpus` more than the cluster has: one line, and the next repositories are left as they were (each was
    walked, its files committed without vectors, then failed the same way: a ready index left partial)."""
    import uuid

    a, b = (copy_fixture("minirepo", tmp_path / name) for name in "ab")
    for repo in (a, b):  # something no cache holds a vector for: the pool starts
        (repo / "added.py").write_text(f"def added_{uuid.uuid4().hex}(x):\n    return x * 7\n")
    proc = run_needle("index", "--ray", cluster.address, "--ray-cpus", "3", "--json", str(a), str(b),
                      env=RAY_ENV, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"needle: error: the Ray cluster at {cluster.address} has 2 CPUs and no GPU: no "
                                   "room for a worker of 3 CPUs (lower --ray-cpus)")
    assert not (b / ".needle").exists()
