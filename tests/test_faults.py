"""Faults end with a clear message and a consistent index or a clean rebuild; stored embeddings survive."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import NEEDLE, copy_fixture, mount_tmpfs, run_needle

pytestmark = pytest.mark.slow  # fault injection in subprocesses


@pytest.fixture
def repo(tmp_path):
    return copy_fixture("minirepo", tmp_path / "repo")


def index_json(repo, *extra) -> dict:
    proc = run_needle("index", "--json", *extra, str(repo))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def top_name(repo, query, *extra) -> str:
    proc = run_needle("search", "--path", str(repo), "--json", *extra, query)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["results"][0]["name"]


def test_a_damaged_vector_file_is_rebuilt_and_the_cli_says_so(repo):
    index_json(repo)
    vectors = repo / ".needle/vectors.usearch"
    vectors.write_bytes(vectors.read_bytes()[:100])
    proc = run_needle("search", "--path", str(repo), "--json", "--no-refresh", "crc32 checksum of bytes")
    assert proc.returncode == 0
    assert "rebuilt it from SQLite" in proc.stderr
    assert json.loads(proc.stdout)["results"][0]["name"] == "crc32_checksum"


def test_a_truncated_database_is_moved_aside_and_rebuilt(repo):
    first = index_json(repo)
    db = repo / ".needle/index.db"
    for wal in repo.glob(".needle/index.db-*"):
        wal.unlink()
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    proc = run_needle("index", "--json", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "damaged" in proc.stderr and "Traceback" not in proc.stderr
    assert list(repo.glob(".needle/index.db.corrupt-*"))
    rebuilt = json.loads(proc.stdout)
    assert rebuilt["files_changed"] == first["files_changed"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert top_name(repo, "crc32 checksum of bytes") == "crc32_checksum"


def test_garbage_in_place_of_the_database_is_a_clean_rebuild(repo):
    index_json(repo)
    for wal in repo.glob(".needle/index.db*"):
        wal.unlink()
    (repo / ".needle/index.db").write_bytes(os.urandom(8192))
    proc = run_needle("index", "--json", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "damaged" in proc.stderr
    assert top_name(repo, "crc32 checksum of bytes") == "crc32_checksum"


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount_tmpfs(mount, "160k")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_nothing_stored_is_lost(repo, tiny_disk):
    for i in range(40):
        (repo / f"src/extra_{i}.py").write_text(
            f"def function_number_{i}(x):\n    '''Return x times {i}, a long docstring {'pad ' * 60}.'''\n"
            f"    return x * {i}\n")
    index_dir = tiny_disk / "index"
    proc = run_needle("index", "--json", "--index-dir", str(index_dir), str(repo))
    assert proc.returncode == 1
    assert "disk full" in proc.stderr and "Traceback" not in proc.stderr
    db = index_dir / "index.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]

    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    stats = index_json(repo, "--index-dir", str(index_dir))
    with sqlite3.connect(db) as conn:
        total = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert kept + stats["chunks_embedded"] == total
    assert top_name(repo, "function_number_7", "--index-dir", str(index_dir)) == "function_number_7"


def test_enospc_on_any_write_is_a_clear_error_without_root(repo, monkeypatch):
    """Where no size-limited tmpfs can be mounted: the vector file's write raises ENOSPC, as a full disk does."""
    import errno

    from codeneedle.errors import NeedleError
    from codeneedle.indexer import vectors
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.settings import IndexSettings

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(vectors, "_atomic_write", disk_full)
    with Index.open(repo, IndexSettings()) as index:
        with pytest.raises(NeedleError, match="disk full"):
            index.update()
    monkeypatch.undo()
    db = repo / ".needle/index.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert kept > 0  # the batches committed before the failed write stay
    stats = index_json(repo)
    assert stats["chunks_embedded"] == 0  # nothing already embedded is embedded again
    assert top_name(repo, "crc32 checksum of bytes") == "crc32_checksum"


def test_sigkill_during_a_watcher_batch_leaves_a_consistent_index(repo):
    index_json(repo)
    watcher = subprocess.Popen([str(NEEDLE), "watch", str(repo)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert "watching" in watcher.stderr.readline() + watcher.stderr.readline()
        for i in range(30):
            (repo / f"src/new_{i}.py").write_text(f"def brand_new_function_{i}():\n    return {i}\n")
        time.sleep(1.0)  # mid-absorption: the batch is being embedded or committed
    finally:
        watcher.send_signal(signal.SIGKILL)
        watcher.wait()
    db = repo / ".needle/index.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cached = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    stats = index_json(repo)
    with sqlite3.connect(db) as conn:
        total = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        files = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert cached + stats["chunks_embedded"] == total
    assert files == 7 + 30
    assert top_name(repo, "brand_new_function_12") == "brand_new_function_12"


def test_a_database_shorter_than_its_header_is_truncated_only_if_it_stays_so(tmp_path):
    """A checkpoint writes page 1 (with the new page count) before the pages that grow the file; a reader that
    looks in between must not take a healthy index for a truncated one and rebuild it."""
    from codeneedle.indexer.index import stays_shorter_than_header

    db = tmp_path / "index.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(1000),) for _ in range(200)])
    whole = db.read_bytes()
    db.write_bytes(whole[: len(whole) // 2])
    assert stays_shorter_than_header(db, db.stat().st_size)  # cut and left so: truncated

    def grow_back():
        time.sleep(0.02)
        db.write_bytes(whole)

    db.write_bytes(whole[: len(whole) // 2])
    writer = threading.Thread(target=grow_back)
    writer.start()
    try:
        assert not stays_shorter_than_header(db, len(whole) // 2)  # the pages arrived: a checkpoint, not a cut
    finally:
        writer.join()
    assert not stays_shorter_than_header(db, len(whole))


def test_an_update_its_embedder_stops_leaves_no_stale_vector_file_behind(repo):
    """An update that stops after committing files (the Ray cluster lost, --ray-cpus too big for it, Ctrl-C) and the
    run that resumes it: that run said "vector file vectors.usearch was stale or damaged" of a file nothing damaged."""
    import uuid

    from codeneedle.errors import NeedleError
    from codeneedle.indexer.index import Index

    class LostCluster:
        def embed(self, texts, on_done=None):
            raise NeedleError("lost the Ray cluster")

    index_json(repo)
    (repo / "added.py").write_text(f"def added_{uuid.uuid4().hex}(x):\n    return x * 7\n")  # no cached vector
    notes: list[str] = []
    with Index.open(repo, notify=notes.append) as index:
        index.embedder = LostCluster()
        with pytest.raises(NeedleError, match="lost the Ray cluster"):
            index.update()
    with Index.open(repo, notify=notes.append) as index:
        stats = index.update()
        assert stats.chunks_embedded == 1
        assert index.completeness().state == "ready"
    assert not [n for n in notes if "stale or damaged" in n], notes


# A child process that fills the index's log, then checkpoints it under a file size limit (`ulimit -f`) just
# above the database's size: the checkpoint writes page 1 (and the new page count) and fails with EFBIG on the
# pages that grow the file, as it does with ENOSPC on a full disk. The log keeps every page.
_CHECKPOINT_CUT_SHORT = """
import os, resource, signal, sqlite3, sys
db = sys.argv[1]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('qa-padding', ?)", ("x" * 400_000,))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as Python itself does: EFBIG, not death
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(db) + 8192, resource.RLIM_INFINITY))
try:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
except sqlite3.OperationalError as exc:
    print("checkpoint failed:", exc)
"""


def test_a_checkpoint_the_disk_cut_short_is_not_taken_for_a_truncated_index(repo):
    """A full disk (or `ulimit -f`) during a checkpoint leaves index.db shorter than its header says while the log
    holds every page. Taken for a truncation, the whole index was moved aside (index.db.corrupt-*) and every file
    read and embedded again, though nothing was lost; now it is read through the log and the next run goes on."""
    from codeneedle.indexer.index import _shorter_than_header

    index_json(repo)
    db = repo / ".needle/index.db"
    child = subprocess.run([sys.executable, "-c", _CHECKPOINT_CUT_SHORT, str(db)], capture_output=True, text=True)
    assert "checkpoint failed" in child.stdout, child.stdout + child.stderr
    assert (repo / ".needle/index.db-wal").stat().st_size > 0
    head = db.read_bytes()[:100]  # this test process has no connection whose locks a close could drop
    pages = int.from_bytes(head[28:32], "big") * int.from_bytes(head[16:18], "big")
    assert db.stat().st_size < pages  # the state a full disk leaves: shorter than its header

    assert top_name(repo, "crc32 checksum of bytes", "--no-refresh") == "crc32_checksum"
    proc = run_needle("index", "--json", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "truncated" not in proc.stderr and "damaged" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["files_changed"] == 0  # nothing read again
    assert not list(repo.glob(".needle/index.db.corrupt-*"))
    assert not _shorter_than_header(db, db.stat().st_size)  # the checkpoint finished: the file is whole
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT length(value) FROM meta WHERE key = 'qa-padding'").fetchone()[0] == 400_000


def _file_size_limit(limit: int):
    """A child's `ulimit -f`: past ``limit`` bytes a write fails with EFBIG (Python ignores SIGXFSZ), the way a
    full disk fails it with ENOSPC, and no root is needed."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_a_search_the_disk_cannot_bring_up_to_date_answers_from_the_index_as_it_is(repo):
    """`needle search` first updates the index; when the disk refuses that (full, or the file size limit), it says
    so, naming the cause, and searches what the index holds: it failed with no answer."""
    index_json(repo)
    assert top_name(repo, "crc32 checksum of bytes") == "crc32_checksum"  # the model caches are laid out now
    (repo / "src/added.py").write_text("".join(f"def added_function_{i}(x):\n    return x + {i}\n\n"
                                               for i in range(200)))
    proc = subprocess.run([str(NEEDLE), "search", "--path", str(repo), "--json", "crc32 checksum of bytes"],
                          capture_output=True, text=True, preexec_fn=_file_size_limit(40_000))
    assert proc.returncode == 0, proc.stderr
    assert "searching the index as it is" in proc.stderr and "ulimit -f: 40000 bytes" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot rollback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["name"] == "crc32_checksum"

    stats = index_json(repo)  # the limit gone: the update goes on from what was kept
    assert stats["files_changed"] == 1
    assert top_name(repo, "added_function_123") == "added_function_123"


_SEARCH_ON_A_FULL_DISK = """
import resource, sys
from codeneedle.indexer import store
from codeneedle.cli import main
# The disk is full: statvfs says no byte is free, and making the log's shared-memory file fails (here through
# `ulimit -f` under its 32 KiB, which no root is needed for).
store._disk_state = lambda folder: (0, False)
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


def test_an_index_the_disk_filled_up_under_is_still_searched(repo):
    """Opening an index makes its log's shared-memory file, which a full disk refuses: every search, status and
    train of an index that was whole when the disk filled up failed. With nothing in the log it is read as it is."""
    index_json(repo)
    assert not (repo / ".needle/index.db-shm").exists()  # no process holds it open
    proc = subprocess.run([sys.executable, "-c", _SEARCH_ON_A_FULL_DISK, "search", "--path", str(repo), "--json",
                           "crc32 checksum of bytes"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "searching the index as it is: disk full" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["name"] == "crc32_checksum"
    proc = subprocess.run([sys.executable, "-c", _SEARCH_ON_A_FULL_DISK, "index", str(repo)], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "disk full" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


_LSP_UNDER_A_FILE_SIZE_LIMIT = """
import resource, sys
from codeneedle.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.exit(main(["lsp"]))
"""


def test_the_language_server_tells_the_user_once_when_edits_cannot_be_indexed(repo):
    """A live update the disk refuses (full, or `ulimit -f` as here) was only a line in the server's log: the editor
    went on searching a stale index with nobody told. It is a warning, said once while the cause lasts."""
    from tests.lsp.rawclient import RawClient

    index_json(repo)
    largest = max(p.stat().st_size for p in (repo / ".needle").iterdir() if p.is_file())
    client = RawClient([sys.executable, "-c", _LSP_UNDER_A_FILE_SIZE_LIMIT, str(largest + 65536)], cwd=repo)
    try:
        client.initialize(repo)
        client.wait_ready()
        for i in range(2):  # more than the limit lets the log hold, twice
            (repo / f"src/grown_{i}.py").write_text("".join(
                f"def grown_function_{i}_{j}(x):\n    return x * {j}  # {'padding ' * 20}\n\n" for j in range(400)))
            client.notify("workspace/didChangeWatchedFiles", {"changes": [
                {"uri": (repo / f"src/grown_{i}.py").as_uri(), "type": 1}]})
            time.sleep(3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _warnings(client):
            time.sleep(0.2)
        warnings = _warnings(client)
        assert len(warnings) == 1, warnings
        assert "edits are not indexed now" in warnings[0] and "ulimit -f" in warnings[0], warnings
        answer = client.command("needle.search", {"query": "crc32 checksum of bytes"})
        assert answer["result"][0]["name"] == "crc32_checksum", answer  # the index as it is still answers
    finally:
        client.close()


def _warnings(client) -> list[str]:
    return [n["params"]["message"] for n in client.notifications
            if n["method"] == "window/showMessage" and n["params"]["type"] == 2]


# The limit is lifted from inside once the test makes the flag file: the room a user frees on a full disk.
_LSP_UNTIL_A_FLAG = """
import os, resource, sys, threading, time
from codeneedle.cli import main
limit, flag = int(sys.argv[1]), sys.argv[2]
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
def lift():
    while not os.path.exists(flag):
        time.sleep(0.1)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
threading.Thread(target=lift, daemon=True).start()
sys.exit(main(["lsp"]))
"""


def test_a_first_index_the_disk_refused_finishes_by_itself_once_it_can_be_written(repo, tmp_path):
    """The editor's first index failed on a full disk (here `ulimit -f`) and stayed failed until the user asked
    for a reindex or restarted the server; it now keeps watching, and the next edit once there is room finishes
    it: every file indexed, the state ready again, and the user told."""
    from tests.lsp.rawclient import RawClient

    for i in range(3):
        (repo / f"src/many_{i}.py").write_text("".join(
            f"def many_function_{i}_{j}(x):\n    return x * {j}  # {'padding ' * 20}\n\n" for j in range(300)))
    flag = tmp_path / "room"
    client = RawClient([sys.executable, "-c", _LSP_UNTIL_A_FLAG, "150000", str(flag)], cwd=repo)
    try:
        client.initialize(repo)
        failed = client.wait_status(lambda s: s["state"] == "error", timeout=120)
        assert failed["state"] == "error" and "ulimit -f" in str(failed), failed

        flag.touch()
        (repo / "src/edited.py").write_text("def written_once_there_was_room(x):\n    return x\n")
        client.notify("workspace/didChangeWatchedFiles", {"changes": [
            {"uri": (repo / "src/edited.py").as_uri(), "type": 1}]})
        status = client.wait_status(lambda s: s["state"] == "ready", timeout=180)
        assert status["state"] == "ready", status
        answer = client.command("needle.search", {"query": "many_function_2_299"})
        assert answer["result"][0]["name"] == "many_function_2_299", answer
        answer = client.command("needle.search", {"query": "written_once_there_was_room"})
        assert answer["result"][0]["name"] == "written_once_there_was_room", answer
        messages = [n["params"]["message"] for n in client.notifications if n["method"] == "window/showMessage"]
        assert any("can be written again" in m for m in messages), messages
    finally:
        client.close()
    with sqlite3.connect(repo / ".needle/index.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
