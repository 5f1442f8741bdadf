"""The machine's shared vectors: a second copy of a repository takes its vectors from the first one's work.

A clone, a git worktree, or an index deleted and built again holds code already embedded on this machine; only
what differs goes through the encoder, and what it gets is exactly what the encoder would give.
"""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

from codeneedle.indexer.index import Index
from codeneedle.indexer.shared_cache import SharedCache, text_key
from tests.conftest import copy_fixture, run_needle


@pytest.fixture
def shared(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "embeddings.db"
    monkeypatch.setenv("NEEDLE_EMBEDDING_CACHE", str(path))
    return path


def _vectors(repo):
    with Index.open(repo, create=False) as index:
        ids, vecs = index.store.chunk_vectors(index.model_id, index.encoder.dim)
        rows = index.store.chunks_by_ids([int(i) for i in ids])
        return {(rows[int(i)].path, rows[int(i)].start_line): v for i, v in zip(ids, vecs, strict=True)}


def test_a_second_copy_reuses_every_vector_and_gets_the_very_same_ones(tmp_path, shared):
    first = copy_fixture("minirepo", tmp_path / "first")
    with Index.open(first) as index:
        built = index.update()
    assert built.chunks_embedded > 10 and built.chunks_reused == 0

    second = copy_fixture("minirepo", tmp_path / "second")  # a fresh clone: no index of its own
    with Index.open(second) as index:
        again = index.update()
    assert again.chunks_embedded == 0
    assert again.chunks_reused == built.chunks_embedded
    assert again.chunks_added == built.chunks_added

    a, b = _vectors(first), _vectors(second)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o600  # vectors say something about the code: owner only


def test_reused_vectors_do_not_make_the_progress_bar_promise_a_rate_the_encoder_never_had(tmp_path, shared):
    # A thousand vectors taken from the cache in a blink read as thousands of chunks a second, and the ETA of the
    # chunks the encoder still had to embed came out as a second or two.
    first = copy_fixture("minirepo", tmp_path / "first")
    with Index.open(first) as index:
        index.update()
    second = copy_fixture("minirepo", tmp_path / "second")
    seen = []
    with Index.open(second) as index:
        stats = index.update(progress=seen.append)
    embeds = [p for p in seen if p.phase == "embed"]
    assert stats.chunks_embedded == 0 and embeds[-1].chunks_embedded == embeds[-1].chunks_to_embed > 10
    assert all(p.rate == 0 and p.eta_s is None for p in embeds)  # the encoder did nothing: no pace to speak of


def test_only_what_differs_goes_through_the_encoder(tmp_path, shared):
    first = copy_fixture("minirepo", tmp_path / "first")
    with Index.open(first) as index:
        index.update()
    second = copy_fixture("minirepo", tmp_path / "second")
    py = next(second.rglob("*.py"))
    py.write_text(py.read_text() + "\n\ndef brand_new_helper(x):\n    return x * 3\n")
    moved = next(second.rglob("*.go"))
    shutil.move(moved, second / moved.name)  # the same code at another path reads differently to the encoder

    with Index.open(second) as index:
        stats = index.update()
        names = {r.name for r in index.store.chunks_in_file(py.relative_to(second).as_posix())}
    assert "brand_new_helper" in names
    with Index.open(first, create=False) as index:
        moved_texts = len({r.hash for r in index.store.chunks_in_file(moved.relative_to(second).as_posix())})
    # the new function, the Python file's module-level windows, and every chunk of the moved file: no more
    assert 1 + moved_texts <= stats.chunks_embedded <= 1 + moved_texts + 3
    assert stats.chunks_reused > 0


def test_off_means_every_copy_embeds_its_own(tmp_path, shared, monkeypatch):
    first = copy_fixture("minirepo", tmp_path / "first")
    with Index.open(first) as index:
        built = index.update()
    monkeypatch.setenv("NEEDLE_EMBEDDING_CACHE", "off")
    second = copy_fixture("minirepo", tmp_path / "second")
    with Index.open(second) as index:
        again = index.update()
    assert (again.chunks_embedded, again.chunks_reused) == (built.chunks_embedded, 0)


def test_a_damaged_cache_costs_the_reuse_never_the_index(tmp_path, shared):
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))  # a header, then garbage
    repo = copy_fixture("minirepo", tmp_path / "repo")
    with Index.open(repo) as index:
        stats = index.update()
        assert index.search("parse a config file", k=3)
    assert stats.chunks_embedded > 10 and stats.chunks_reused == 0

    # The damaged file is gone; the next index starts a sound one and a copy after it reuses.
    copy = copy_fixture("minirepo", tmp_path / "copy")
    with Index.open(copy) as index:
        index.update()
    third = copy_fixture("minirepo", tmp_path / "third")
    with Index.open(third) as index:
        assert index.update().chunks_reused == stats.chunks_embedded


def _unit(rng, n, dim=8):
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_cache_keeps_to_its_bound_by_dropping_what_was_used_least_recently(tmp_path, monkeypatch):
    import codeneedle.indexer.shared_cache as sc

    monkeypatch.setattr(sc, "PRUNE_EVERY", 1)
    rng = np.random.default_rng(0)
    cache = SharedCache(tmp_path / "c.db", "model@1", 384, max_bytes=2_000_000)  # about 900 rows of 384-d
    old = [text_key(f"old {i}") for i in range(600)]
    cache.put(old, _unit(rng, 600, 384))
    monkeypatch.setattr(sc.time, "time", lambda: 4_000_000_000)  # later: reading refreshes what is read
    kept = old[:100]
    assert set(cache.get(kept)) == set(kept)
    new = [text_key(f"new {i}") for i in range(600)]
    cache.put(new, _unit(rng, 600, 384))  # 1,200 rows fill 2.5 MB: the least recently used go
    left = cache.get(old + new)
    assert len(left) < 1000
    assert set(kept) <= set(left) and set(new) <= set(left)
    assert len(set(old[100:]) & set(left)) < 400


def test_the_file_stays_within_the_megabytes_it_is_given(tmp_path, monkeypatch):
    """The bound is on the file, as $NEEDLE_EMBEDDING_CACHE_MB says, whatever a row costs in pages beside its
    vector (a 384-d row fills about 2.1 kB, not 1.5 kB)."""
    import codeneedle.indexer.shared_cache as sc

    monkeypatch.setattr(sc, "PRUNE_EVERY", 100)
    rng = np.random.default_rng(2)
    path = tmp_path / "c.db"
    cache = SharedCache(path, "model@1", 384, max_bytes=2_000_000)
    for i in range(0, 3000, 100):
        cache.put([text_key(f"t {j}") for j in range(i, i + 100)], _unit(rng, 100, 384))
    cache.close()
    # one prune period (100 rows, ~0.2 MB) of slack: the bound is checked every PRUNE_EVERY vectors
    assert path.stat().st_size <= 2_000_000 + 250_000


def test_a_vector_of_another_size_or_not_of_unit_length_is_never_returned(tmp_path):
    cache = SharedCache(tmp_path / "c.db", "model@1", 8, max_bytes=10**6)
    rng = np.random.default_rng(1)
    good = _unit(rng, 1)
    cache.put(["good", "long"], np.vstack([good, good * 3]))
    other = SharedCache(tmp_path / "c.db", "model@1", 16, max_bytes=10**6)
    assert set(cache.get(["good", "long"])) == {"good"}
    assert other.get(["good"]) == {}  # same key, another size: another model's vector
    assert SharedCache(tmp_path / "c.db", "model@2", 8, max_bytes=10**6).get(["good"]) == {}


@pytest.mark.slow
def test_needle_index_says_how_many_vectors_came_from_other_indexes(tmp_path):
    env = {"NEEDLE_EMBEDDING_CACHE": str(tmp_path / "shared.db")}
    first = copy_fixture("smallrepo", tmp_path / "first")
    proc = run_needle("index", str(first), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)
    second = copy_fixture("smallrepo", tmp_path / "second")
    proc = run_needle("index", str(second), env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"0 chunks embedded ({built['chunks_embedded']} reused from other indexes)" in proc.stderr
    a = run_needle("search", "read a file", str(first), "--json", env=env)
    b = run_needle("search", "read a file", str(second), "--json", env=env)
    assert json.loads(a.stdout)["results"] == json.loads(b.stdout)["results"]


def test_an_index_built_elsewhere_serves_another_checkout_of_the_same_code(tmp_path):
    """Built in CI, copied beside a developer's checkout (new paths, new mtimes): nothing is embedded again."""
    built = copy_fixture("minirepo", tmp_path / "ci" / "repo")
    with Index.open(built) as index:
        index.update()
        expected = [(r.path, r.name) for r in index.search("parse a config file", k=5)]
    checkout = copy_fixture("minirepo", tmp_path / "home" / "checkout")
    for f in checkout.rglob("*"):
        os.utime(f, (1_000_000_000, 1_000_000_000))  # another clone: other mtimes
    shutil.copytree(built / ".needle", checkout / ".needle")
    with Index.open(checkout) as index:
        stats = index.update()
        assert [(r.path, r.name) for r in index.search("parse a config file", k=5)] == expected
    assert (stats.files_changed, stats.chunks_embedded, stats.chunks_reused) == (0, 0, 0)


def test_status_says_where_the_shared_vectors_are_and_how_big_they_may_grow(tmp_path, shared, monkeypatch):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    monkeypatch.setenv("NEEDLE_EMBEDDING_CACHE_MB", "64")
    with Index.open(repo) as index:
        index.update()
        usage = index.status().shared_cache
    assert usage["path"] == str(shared) and usage["max_bytes"] == 64 << 20
    assert usage["bytes"] >= os.path.getsize(shared) > 0
    monkeypatch.setenv("NEEDLE_EMBEDDING_CACHE", "off")
    with Index.open(repo, create=False) as index:
        assert index.status().shared_cache is None


class _CallSizes:
    """The index's own embedder, with a note of how many texts each call hands the encoder."""

    def __init__(self, inner):
        self.inner = inner
        self.sizes: list[int] = []

    def embed(self, texts, on_done=None):
        self.sizes.append(len(texts))
        return self.inner.embed(texts, on_done=on_done)


def test_reused_vectors_do_not_make_the_encoders_next_group_huge(tmp_path, shared):
    """Groups are sized to take COMMIT_SECONDS of encoder work (a kill loses at most that, a cancel waits at most
    that): reused vectors take no encoder time, so they must not count towards the rate that sizes the groups."""
    from codeneedle.indexer.embedding import FIRST_GROUP

    first = tmp_path / "first"
    first.mkdir()
    for i in range(24):
        (first / f"mod{i}.py").write_text(f"def helper_{i}(value):\n    \"\"\"Helper {i}.\"\"\"\n"
                                          f"    return value * {i} + {i * 7}\n")
    with Index.open(first) as index:
        index.update()
    second = tmp_path / "second"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns(".needle"))
    for i in range(40):  # new line windows, embedded after the (reused) definitions
        (second / f"notes{i}.md").write_text(f"# Notes {i}\n\nThe {i}th note about tuning queue depth.\n")
    with Index.open(second) as index:
        recorder = index.embedder = _CallSizes(index.embedder)
        stats = index.update()
    assert stats.chunks_reused >= 24 and stats.chunks_embedded >= 40
    assert sum(recorder.sizes) == stats.chunks_embedded  # reused texts never reach the encoder
    assert recorder.sizes[0] <= FIRST_GROUP, recorder.sizes


def test_a_path_that_names_someone_elses_file_is_never_removed_or_written(tmp_path, monkeypatch):
    """``$NEEDLE_EMBEDDING_CACHE`` set to a file that is not the cache (a typo, an index's own database): the cache
    is off for the run, and the file is left exactly as it was."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n" * 50)
    monkeypatch.setenv("NEEDLE_EMBEDDING_CACHE", str(notes))
    repo = copy_fixture("minirepo", tmp_path / "repo")
    with Index.open(repo) as index:
        stats = index.update()
    assert stats.chunks_embedded > 10 and stats.chunks_reused == 0
    assert notes.read_text() == "my notes, not a database\n" * 50

    other = repo / ".needle" / "index.db"  # another SQLite database
    assert other.is_file()
    before = other.read_bytes()
    monkeypatch.setenv("NEEDLE_EMBEDDING_CACHE", str(other))
    copy = copy_fixture("minirepo", tmp_path / "copy")
    with Index.open(copy) as index:
        assert index.update().chunks_reused == 0
    assert other.read_bytes() == before


def test_a_cache_that_others_may_write_is_not_used(tmp_path, shared):
    """Whoever can write the file can make every index here take their vectors for its code: a cache that is not
    the user's alone (a shared cache folder, a loose umask) is left alone."""
    first = copy_fixture("minirepo", tmp_path / "first")
    with Index.open(first) as index:
        built = index.update()
    os.chmod(shared, 0o666)
    second = copy_fixture("minirepo", tmp_path / "second")
    with Index.open(second) as index:
        again = index.update()
    assert (again.chunks_embedded, again.chunks_reused) == (built.chunks_embedded, 0)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o666  # not ours to mend or remove


class _OneEncoder:
    """The index's own embedder, behind a lock two indexes share (as two folders of one language server share the
    machine's cores), counting the texts it embeds."""

    def __init__(self, inner, lock, counts):
        self.inner, self.lock, self.counts = inner, lock, counts

    def embed(self, texts, on_done=None):
        with self.lock:
            self.counts.append(len(texts))
            return self.inner.embed(texts, on_done=on_done)


def test_two_indexes_of_the_same_code_at_work_at_once_embed_each_text_once(tmp_path, shared, monkeypatch):
    """Worktrees opened together: each index claims the group it embeds and takes the other's from the cache."""
    import threading

    from codeneedle.indexer import embedding

    monkeypatch.setattr(embedding, "FIRST_GROUP", 4)
    monkeypatch.setattr(embedding, "MIN_GROUP", 4)
    monkeypatch.setattr(embedding, "MAX_GROUP", 4)
    first = tmp_path / "first"
    first.mkdir()
    for i in range(24):
        (first / f"mod{i}.py").write_text(f"def helper_{i}(value):\n    return value * {i} + {i * 7}\n")
    clone = tmp_path / "clone"
    shutil.copytree(first, clone)
    lock, counts, stats, errors = threading.Lock(), [], {}, []

    def build(repo):
        try:
            with Index.open(repo) as index:
                index.embedder = _OneEncoder(index.embedder, lock, counts)
                stats[repo.name] = index.update()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(repo,)) for repo in (first, clone)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and set(stats) == {"first", "clone"}
    a, b = stats["first"], stats["clone"]
    assert sum(counts) == a.chunks_embedded + b.chunks_embedded == 24  # each text once, by one of them
    assert a.chunks_reused + b.chunks_reused == 24 and a.chunks_embedded > 0 and b.chunks_embedded > 0
    va, vb = _vectors(first), _vectors(clone)
    assert va.keys() == vb.keys() and all(np.array_equal(va[k], vb[k]) for k in va)


def test_a_claim_of_a_run_that_is_gone_is_not_waited_for(tmp_path, shared):
    from codeneedle.indexer.shared_cache import SharedCache

    gone = SharedCache.open("m", 8)
    assert gone.claim(["k1", "k2"]) == set()
    gone.conn.execute("UPDATE claims SET pid = 999999999")  # as if its process had been killed
    other = SharedCache.open("m", 8)
    assert other.claim(["k2", "k3"]) == set()  # nobody alive is at work on k2: this run takes it
    live = SharedCache.open("m", 8)
    assert live.claim(["k2", "k3", "k4"]) == {"k2", "k3"}
    other.close()  # a run that ends drops its claims
    assert live.claimed_by_others(["k2", "k3"]) == set()


def test_a_claim_made_before_the_clock_was_set_back_is_not_waited_for(tmp_path, shared, monkeypatch):
    """A claim CLAIM_SECONDS old belongs to a run that stalled (a `needle index` stopped with Ctrl-Z); its age is the
    wall clock's, so after the clock was set back an hour (NTP stepping a VM's clock once its host woke) the claim
    looked fresh for that hour, and a second run waited on it as long. Dated ahead of the clock, it is stale."""
    import time
    import types

    from codeneedle.indexer import shared_cache

    stalled = SharedCache.open("m", 8)
    assert stalled.claim(["k1"]) == set()
    waiting = SharedCache.open("m", 8)
    assert waiting.claimed_by_others(["k1"]) == {"k1"}  # its owner runs: waited for, up to CLAIM_SECONDS
    set_back = time.time() - 3600
    monkeypatch.setattr(shared_cache, "time", types.SimpleNamespace(time=lambda: set_back))
    assert waiting.claimed_by_others(["k1"]) == set()
    assert waiting.claim(["k1", "k2"]) == set()  # this run embeds it, and claims it at the clock's time
    assert stalled.claimed_by_others(["k1", "k2"]) == {"k1", "k2"}


def test_a_claim_this_process_left_behind_is_not_waited_for(tmp_path, shared):
    """A run whose cache was locked as it ended could not drop its claims: the next run of the same process (a
    language server indexing again) must not wait CLAIM_SECONDS on them."""
    import sqlite3

    from codeneedle.indexer.shared_cache import SharedCache

    left = SharedCache.open("m", 8)
    assert left.claim(["k1"]) == set()
    blocker = sqlite3.connect(shared, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process writing: the DELETE of its claims times out
    left.close()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert sqlite3.connect(shared).execute("SELECT count(*) FROM claims").fetchone()[0] == 1  # left behind
    assert SharedCache.open("m", 8).claim(["k1"]) == set()
