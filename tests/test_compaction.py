"""Space an index frees is given back to the disk: a VACUUM once an update leaves a fifth of the database (and
4 MiB) free, or `needle index --compact`; never at the cost of a reader beside it, of a crash, or of the disk."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from codeneedle.indexer import compaction
from codeneedle.indexer.index import Index
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.store import Space
from tests.conftest import copy_fixture, mount_tmpfs, run_needle

GENERATED = '''
def summarise_{topic}_{i}(records):
    """Summarise {topic} records, batch {i}. {padding}"""
    return [r for r in records if r.get("{topic}") == {i}]
'''
TOPICS = ("invoices", "shipments", "payroll")
QUERY, EXPECTED = "crc32 checksum of bytes", "crc32_checksum"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """minirepo plus 40 generated modules with long docstrings, indexed once for the module (copied per test)."""
    repo = copy_fixture("minirepo", tmp_path_factory.mktemp("compaction") / "repo")
    (repo / "src/gen").mkdir()
    for i in range(40):
        padding = " ".join(f"word{i}x{j}" for j in range(200))
        (repo / f"src/gen/mod_{i:02d}.py").write_text(
            "".join(GENERATED.format(topic=t, i=i, padding=padding) for t in TOPICS))
    with Index.open(repo) as index:
        index.update()
    return repo


@pytest.fixture
def repo(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "repo"))


def db_of(repo: Path) -> Path:
    return repo / ".needle" / "index.db"


def space(db: Path) -> Space:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return Space(*(conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count", "freelist_count")))


def delete_generated(repo: Path, every: int = 1) -> None:
    for path in sorted((repo / "src/gen").glob("*.py"))[::every]:
        path.unlink()


def snapshot(db: Path) -> tuple:
    """What a compaction must keep: chunk ids and hashes, FTS rows, cached vectors."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return (conn.execute("SELECT id, hash FROM chunks ORDER BY id").fetchall(),
                conn.execute("SELECT rowid FROM chunks_fts ORDER BY rowid").fetchall(),
                conn.execute("SELECT model, hash, vector FROM embeddings ORDER BY rowid").fetchall())


def test_an_update_that_frees_a_fifth_of_the_file_gives_it_back(repo, monkeypatch):
    monkeypatch.setattr(compaction, "MIN_FREE_BYTES", 0)  # the fixture is small; the share still has to be met
    db = db_of(repo)
    before = db.stat().st_size
    delete_generated(repo)
    with Index.open(repo) as index:
        stats = index.update()
        assert stats.compacted_bytes > 0
        assert index.store.space().free_pages == 0
        assert index.search(QUERY, k=1)[0].name == EXPECTED
    left = space(db)
    assert db.stat().st_size == left.file_bytes < before
    assert left.free_pages == 0


def test_an_ordinary_edit_does_not_compact(repo):
    """The common path pays one read of three header fields: edits free little, and the pages they free are
    reused by the next writes."""
    path = repo / "src/config/loader.py"
    path.write_text(path.read_text() + "\n\ndef added_later():\n    return 1\n")
    with Index.open(repo) as index:
        stats = index.update()
    assert stats.files_changed == 1 and stats.compacted_bytes == 0


@pytest.mark.parametrize(("free_pages", "pages", "expected"), [
    (1130, 4304, True),   # half of a 332-file repository's files deleted: 26 %, 4.6 MB
    (1415, 5721, True),   # one of two models' vectors dropped: 24.7 %, 5.8 MB
    (164, 4669, False),   # 30 runs of small edits: 4 %
    (900, 1000, False),   # 90 % free but 3.7 MB: not worth a rewrite after every update of a small index
])
def test_compaction_is_due_once_a_fifth_of_the_file_and_4_mib_are_free(free_pages, pages, expected):
    assert compaction.due(Space(4096, pages, free_pages)) is expected


def test_compaction_keeps_chunk_ids_fts_rows_vectors_and_the_vector_file(repo):
    """Chunk ids are an INTEGER PRIMARY KEY, which VACUUM never renumbers: the usearch file keyed by them stays
    valid as it is, and a reader that loads it does not rebuild it."""
    delete_generated(repo, every=2)
    with Index.open(repo) as index:
        index.update()
        results = [(r.path, r.name, r.start_line) for r in index.search(QUERY, k=5)]
    db = db_of(repo)
    vectors = repo / ".needle" / "vectors.usearch"
    kept, file_bytes = snapshot(db), vectors.read_bytes()
    with Index.open(repo) as index:
        done = index.compact(force=True)
        assert done is not None and done.skipped is None and done.after < done.before
    assert snapshot(db) == kept
    assert vectors.read_bytes() == file_bytes
    said: list[str] = []
    with Index.open(repo, create=False, notify=said.append) as reader:
        assert [(r.path, r.name, r.start_line) for r in reader.search(QUERY, k=5)] == results
    assert not said  # no "vector file ... was stale or damaged; rebuilt it"


def test_a_reader_beside_a_compaction_does_not_take_the_smaller_file_for_a_truncated_one(repo):
    """A reader (a language server, `needle search` beside `needle watch`) took any file smaller than it last saw for
    one truncated under it: it moved the healthy index aside and rebuilt it from nothing."""
    delete_generated(repo, every=2)
    with Index.open(repo) as index:
        index.update()
    with Index.open(repo, create=False) as reader, Index.open(repo) as writer:
        assert reader.search(QUERY, k=1)[0].name == EXPECTED
        assert writer.compact(force=True).skipped is None
        assert reader.lost() is None
        assert reader.search(QUERY, k=1)[0].name == EXPECTED
    assert not list((repo / ".needle").glob("index.db.corrupt-*"))


def test_a_truncated_file_is_still_told_from_a_compacted_one(repo):
    db = db_of(repo)
    with Index.open(repo, create=False) as reader:
        reader.search(QUERY, k=1)
        with open(db, "r+b") as fh:
            fh.truncate(db.stat().st_size // 3)
        assert "truncated" in (reader.lost() or "")


def test_a_reader_mid_read_keeps_its_snapshot_while_the_file_is_compacted(repo):
    delete_generated(repo, every=2)
    with Index.open(repo) as index:
        index.update()
    db = db_of(repo)
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        rows = reader.execute("SELECT id, text FROM chunks ORDER BY id")
        first = rows.fetchmany(3)
        with Index.open(repo) as writer:
            done = writer.compact(force=True)
        assert done.skipped is None, done.message()
        assert len(first) + len(rows.fetchall()) == reader.execute("SELECT count(*) FROM chunks").fetchone()[0]
        reader.execute("COMMIT")
        assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        reader.close()


def test_a_compaction_that_cannot_get_the_write_lock_is_skipped_and_tried_next_time(repo):
    """Another connection writing (an older Needle, a sqlite3 shell) holds SQLite's write lock: the compaction
    gives up after a moment instead of holding the update for the connection's 30 s, and runs next time."""
    delete_generated(repo, every=2)
    db = db_of(repo)
    with Index.open(repo) as index:
        index.update()
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            skipped = index.compact(force=True)
            assert skipped.skipped is not None and "locked" in skipped.skipped
            assert skipped.after == skipped.before
            other.execute("ROLLBACK")
        finally:
            other.close()
        done = index.compact(force=True)
        assert done.skipped is None and done.after < done.before
        assert index.search(QUERY, k=1)[0].name == EXPECTED


def test_status_says_how_much_of_the_index_is_reclaimable(repo):
    delete_generated(repo, every=2)  # frees less than compaction.due asks for: left to --compact
    with Index.open(repo) as index:
        stats = index.update()
        assert stats.compacted_bytes == 0
        reclaimable = index.status().reclaimable_bytes
        assert reclaimable == index.store.space().free_bytes > 0
        index.compact(force=True)
        assert index.status().reclaimable_bytes == 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount_tmpfs(mount, "3m")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_without_room_on_the_disk_compaction_is_skipped_in_one_line_said_once(repo, small_disk, monkeypatch):
    """VACUUM writes the live database twice (SQLite's temporary copy and the log): on a disk without that much
    free it is not started, and people hear why once, not after every update."""
    index_dir = small_disk / "index"
    shutil.copytree(repo / ".needle", index_dir)
    delete_generated(repo, every=2)
    monkeypatch.setattr(compaction, "MIN_FREE_BYTES", 0)
    settings = IndexSettings(index_dir=str(index_dir))
    db = index_dir / "index.db"
    said: list[str] = []
    with Index.open(repo, settings, notify=said.append) as index:
        index.update()
        (repo / "src/gen/mod_01.py").unlink()
        index.update()
    room = [line for line in said if "not compacting" in line]
    assert len(room) == 1 and "free some space" in room[0], said
    assert space(db).free_pages > 0
    proc = run_needle("index", "--compact", "--index-dir", str(index_dir), str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "not compacting the index database" in proc.stderr and "Traceback" not in proc.stderr
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_needle_index_compact_and_needle_status_through_the_cli(repo):
    delete_generated(repo, every=2)
    assert run_needle("index", "-q", str(repo)).returncode == 0
    status = run_needle("status", str(repo))
    assert "reclaimable: `needle index --compact`" in status.stdout, status.stdout
    proc = run_needle("index", "--compact", str(repo))
    assert proc.returncode == 0 and "compacted the index database" in proc.stderr, proc.stderr
    import json

    assert json.loads(run_needle("status", "--json", str(repo)).stdout)["reclaimable_bytes"] == 0


def bloat(db: Path, rows: int) -> None:
    """Vectors of models a switch left behind (kept for switching back), half of them then dropped: a database of
    rows * 0.8 KB live and as much free, large enough for a compaction to be caught in the middle."""
    with closing(sqlite3.connect(db)) as conn:
        with conn:
            conn.executemany("INSERT INTO embeddings(model, hash, vector) VALUES (?, ?, ?)",
                             ((f"retired-model@{i % 2}", f"{i:064x}", os.urandom(1536)) for i in range(rows)))
        with conn:
            conn.execute("DELETE FROM embeddings WHERE model = 'retired-model@1'")


@pytest.mark.slow
def test_searches_beside_a_compaction_all_answer_the_same(repo):
    db = db_of(repo)
    bloat(db, 40_000)
    answers: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    with Index.open(repo, create=False) as reader, Index.open(repo) as writer:
        reader.search(QUERY, k=1)

        def search() -> None:
            while not stop.is_set():
                try:
                    answers.append(reader.search(QUERY, k=1, rerank=False)[0].name)
                except BaseException as exc:  # noqa: BLE001 - the test reports it
                    errors.append(exc)
                    return

        thread = threading.Thread(target=search)
        thread.start()
        try:
            done = writer.compact(force=True)
        finally:
            stop.set()
            thread.join()
    assert done.skipped is None and done.after < done.before
    assert not errors and answers and set(answers) == {EXPECTED}


@pytest.mark.slow
def test_a_compaction_killed_midway_leaves_an_index_that_opens_and_searches(repo):
    """kill -9 while VACUUM writes its copy back: it is one transaction, so the index is as it was before."""
    db = db_of(repo)
    bloat(db, 60_000)
    before = snapshot(db)
    size = db.stat().st_size
    wal = db.with_name(db.name + "-wal")
    script = "import sys; from codeneedle.indexer.index import Index; Index.open(sys.argv[1]).compact(force=True)"
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo)])
    try:
        deadline = time.monotonic() + 120
        # The copy is being written back into the log once it passes 1 MiB (the whole copy is ~45 MB).
        while proc.poll() is None and time.monotonic() < deadline and (
                not wal.exists() or wal.stat().st_size < 1 << 20):
            time.sleep(0.001)
        assert proc.poll() is None, "the compaction ended before it was killed: bloat the database more"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    found = run_needle("search", "--path", str(repo), "--json", "--no-refresh", QUERY)
    assert found.returncode == 0, found.stderr
    assert EXPECTED in found.stdout and "damaged" not in found.stderr and "truncated" not in found.stderr
    assert snapshot(db) == before
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # And the next try finishes the job.
    with Index.open(repo) as index:
        assert index.compact(force=True).skipped is None
    assert db.stat().st_size < size


def test_the_vector_file_gives_back_the_slots_of_removed_chunks_too(repo):
    """usearch keeps a removed vector's slot for reuse: the file stayed as large as the most chunks it ever held."""
    vectors = repo / ".needle" / "vectors.usearch"
    before = vectors.stat().st_size
    delete_generated(repo)
    with Index.open(repo) as index:
        index.update()
        kept = len(index.vectors())
    assert vectors.stat().st_size < before / 2
    said: list[str] = []
    with Index.open(repo, create=False, notify=said.append) as reader:
        assert len(reader.vectors()) == kept
        assert reader.search(QUERY, k=1)[0].name == EXPECTED
    assert not said  # loaded as saved, not rebuilt
