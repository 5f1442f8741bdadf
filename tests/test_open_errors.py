"""An open error is not corruption: a full or read-only disk, or another schema, is a one-line error and
every file of the index stays where it is. Only a damaged file is moved aside, and only by a writer."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, copy_fixture, mount_tmpfs, run_needle


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A repository indexed once into an index folder on its own small tmpfs."""
    base = tmp_path_factory.mktemp("openerr")
    repo = copy_fixture("minirepo", base / "repo")
    disk = base / "disk"
    mount_tmpfs(disk, "8m")
    index_dir = disk / "index"
    proc = run_needle("index", "--json", "--index-dir", str(index_dir), str(repo))
    assert proc.returncode == 0, proc.stderr
    yield repo, disk, index_dir
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _snapshot(index_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.blake2b(p.read_bytes()).hexdigest() for p in sorted(index_dir.iterdir()) if p.is_file()}


def _state(index_dir: Path) -> tuple[list[str], int, int, str]:
    """What must survive: the index's file names (WAL/SHM aside), its embeddings and chunks, the vector file."""
    names = sorted(p.name for p in index_dir.iterdir() if not p.name.endswith(("-wal", "-shm")))
    with closing(sqlite3.connect(f"file:{index_dir / 'index.db'}?mode=ro", uri=True)) as conn:
        embeddings = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    return names, embeddings, chunks, _snapshot(index_dir)["vectors.usearch"]


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("needle: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.slow  # builds an index of its own
def test_a_full_disk_moves_nothing_and_reembeds_nothing(built):
    repo, disk, index_dir = built
    before = _state(index_dir)
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last byte
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    try:
        for args in (["status", "--index-dir", str(index_dir), str(repo)],
                     ["index", "--index-dir", str(index_dir), str(repo)]):
            proc = run_needle(*args)
            if proc.returncode == 0:  # a reader may still manage on a full disk: fine, as long as it moved nothing
                continue
            line = _one_line_error(proc)
            assert "damaged" not in line and ("full" in line or "No space" in line), line
        assert not list(index_dir.glob("*.corrupt-*"))
    finally:
        filler.unlink()
    assert _state(index_dir) == before
    proc = run_needle("index", "--json", "--index-dir", str(index_dir), str(repo))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chunks_embedded"] == 0  # nothing was lost, so nothing is embedded again


def test_an_index_on_a_read_only_mount_is_searched_as_it_is_and_nothing_moves(built):
    """An index shared on a read-only mount (a CI artifact, another user's copy) answers searches and status as it
    is; updating it is a one-line error."""
    repo, disk, index_dir = built
    before = _state(index_dir)
    assert before[1] > 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        line = _one_line_error(run_needle("index", "--index-dir", str(index_dir), str(repo)))
        assert "read-only" in line.lower() and "damaged" not in line, line
        status = run_needle("status", "--json", "--index-dir", str(index_dir), str(repo))
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["chunks"] == before[2]
        for refresh in ([], ["--no-refresh"]):
            search = run_needle("search", "--json", *refresh, "--index-dir", str(index_dir), "--path", str(repo),
                                "compute a crc32 checksum")
            assert search.returncode == 0, search.stderr
            assert json.loads(search.stdout)["results"], search.stdout
            assert ("read-only" in search.stderr) == (not refresh), search.stderr  # said when it would update
        changed = run_needle("search", "--exclude", "docs/**", "--index-dir", str(index_dir), "--path", str(repo),
                             "crc32")  # a setting it cannot store: searched as it is all the same
        assert changed.returncode == 0 and "Traceback" not in changed.stderr, changed.stderr
        other = _one_line_error(run_needle("search", "--model", "minilm", "--index-dir", str(index_dir), "--path",
                                           str(repo), "crc32"))  # its vectors are another model's: no silent keywords
        assert "read-only" in other and "built with" in other, other
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    assert _state(index_dir) == before


def test_an_editor_or_agent_serves_an_index_on_a_read_only_mount(built):
    """The live index behind the language server and the MCP server: read-only, it serves searches and says why
    it does not update (an agent's answers too)."""
    from codeneedle.indexer.live import LiveIndex
    from codeneedle.indexer.settings import IndexSettings
    from codeneedle.server.mcp_server import NeedleMCP
    from tests.test_live import Recorder, until

    repo, disk, index_dir = built
    before = _state(index_dir)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        events = Recorder()
        live = LiveIndex(repo, IndexSettings(index_dir=index_dir), events=events, lock_retry_s=None).start()
        try:
            live.refresh(wait=60)  # as a door asks at start-up
            status = until(lambda: live.status() if live.status().read_only else None)
            assert status.state == "ready" and "read-only" in (status.message or ""), status
            assert [r.name for r in live.search("crc32 checksum of bytes", k=1)] == ["crc32_checksum"]
            assert ("ended", "the index folder is read-only; serving reads") in events.seen
        finally:
            live.close()
            assert live.wait_closed(30)
        agent = NeedleMCP(repo, IndexSettings(index_dir=index_dir))
        try:
            answer = agent.search("crc32 checksum of bytes", k=1)
            assert answer["results"][0]["name"] == "crc32_checksum"
            assert "read-only" in answer["note"] and "another needle process" not in answer["note"], answer["note"]
        finally:
            agent.close()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    assert _state(index_dir) == before


@contextmanager
def read_only_copy(tmp_path: Path, change: Callable[[Path], None]) -> Iterator[tuple[Path, Path]]:
    """(repo, index folder): the repository indexed, its index copied onto a tmpfs, ``change``d there, and the
    tmpfs made read-only, as a CI artifact or a colleague's copy is met."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "8m")
    try:
        index_dir = disk / "index"
        shutil.copytree(repo / ".needle", index_dir)
        change(index_dir)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        yield repo, index_dir
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_copy_without_its_ignore_file_is_still_searched(tmp_path):
    """An artifact upload that leaves out dot files (actions/upload-artifact) drops .needle/.gitignore."""
    with read_only_copy(tmp_path, lambda index_dir: (index_dir / ".gitignore").unlink()) as (repo, index_dir):
        proc = run_needle("search", "--json", "--index-dir", str(index_dir), "--path", str(repo), "crc32 checksum")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["results"][0]["name"] == "crc32_checksum"


def test_a_read_only_copy_taken_with_its_log_and_its_index_reads_the_logs_changes(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "8m")
    writer = sqlite3.connect(repo / ".needle" / "index.db", isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE meta SET value = '1767323045' WHERE key = 'last_update'")  # 2026-01-02T03:04:05Z
        index_dir = disk / "index"
        shutil.copytree(repo / ".needle", index_dir)  # while the writer is open: the change is in the log only
        assert (index_dir / "index.db-wal").stat().st_size > 0 and (index_dir / "index.db-shm").exists()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = run_needle("status", "--json", "--index-dir", str(index_dir), str(repo))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["last_update"] == "2026-01-02T03:04:05+00:00"
    finally:
        writer.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_an_index_database_you_may_not_write_in_a_folder_you_may_is_searched_as_it_is(tmp_path):
    """Another user's index.db in a shared folder: the lock file can be taken, the database not written."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    db = repo / ".needle" / "index.db"
    before = db.read_bytes()
    (repo / "added.py").write_text("def brand_new_function():\n    return 1\n")  # what an update would take in
    db.chmod(0o444)
    unprivileged = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search", "--reuid=0", "--"]
    try:
        search = subprocess.run([*unprivileged, str(NEEDLE), "search", "--json", "crc32 checksum", str(repo)],
                                capture_output=True, text=True, timeout=300)
        assert search.returncode == 0, search.stderr
        assert json.loads(search.stdout)["results"][0]["name"] == "crc32_checksum"
        assert "read-only" in search.stderr, search.stderr
        index = subprocess.run([*unprivileged, str(NEEDLE), "index", str(repo)], capture_output=True, text=True,
                               timeout=300)
        assert "read-only" in _one_line_error(index)
    finally:
        db.chmod(0o644)
    assert db.read_bytes() == before


def test_a_read_only_copy_made_while_its_log_held_changes_is_a_clear_error(tmp_path):
    """Read as immutable, a copy whose write-ahead log still holds changes would miss them: say so instead."""

    def unfinished_log(index_dir: Path) -> None:
        (index_dir / "index.db-wal").write_bytes(b"\0" * 4096)  # a log not checkpointed into the file, without
        (index_dir / "index.db-shm").unlink(missing_ok=True)  # the index SQLite needs to read it read-only

    with read_only_copy(tmp_path, unfinished_log) as (repo, index_dir):
        line = _one_line_error(run_needle("search", "--no-refresh", "--index-dir", str(index_dir), "--path",
                                          str(repo), "crc32"))
        assert "write-ahead log" in line and "copied while being written" in line, line


def test_first_open_on_a_full_disk_leaves_no_half_written_ignore_file(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "1m")
    try:
        with open(disk / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            except OSError:
                pass
        index_dir = disk / "new-index"
        line = _one_line_error(run_needle("index", "--index-dir", str(index_dir), str(repo)))
        assert "No space" in line or "full" in line, line
        assert not (index_dir / ".gitignore").exists()
        assert not index_dir.exists() or not any(index_dir.iterdir())
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_an_empty_ignore_file_left_behind_is_rewritten_before_anything_is_stored(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    (repo / ".needle").mkdir()
    (repo / ".needle" / ".gitignore").write_bytes(b"")  # what a full disk left behind before
    assert run_needle("index", "-q", str(repo)).returncode == 0
    assert (repo / ".needle" / ".gitignore").read_text().splitlines()[-1] == "*"
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        staged = subprocess.run(["git", "-C", str(repo), "diff", "--cached", "--name-only"],
                                capture_output=True, text=True, check=True).stdout.split()
        assert staged and not [p for p in staged if p.startswith(".needle/")]


@pytest.mark.slow  # builds an index of its own
def test_another_schema_is_reported_not_moved_aside(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    db = repo / ".needle" / "index.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
    before = _snapshot(repo / ".needle")
    for args in (["index", str(repo)], ["status", str(repo)], ["search", "--path", str(repo), "crc32"]):
        line = _one_line_error(run_needle(*args))
        assert "schema 99" in line, line
    assert _snapshot(repo / ".needle") == before
    assert not list((repo / ".needle").glob("*.corrupt-*"))


@pytest.mark.slow  # builds an index of its own
def test_a_reader_reports_damage_and_leaves_the_repair_to_a_writer(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    for extra in (repo / ".needle").glob("index.db-*"):
        extra.unlink()
    db = repo / ".needle" / "index.db"
    db.write_bytes(b"garbage " * 2048)
    line = _one_line_error(run_needle("status", str(repo)))
    assert "damaged" in line and "needle index" in line, line
    assert db.read_bytes() == b"garbage " * 2048 and not list(db.parent.glob("*.corrupt-*"))
    proc = run_needle("index", "-q", str(repo))  # the writer repairs it
    assert proc.returncode == 0 and "damaged" in proc.stderr
    assert len(list(db.parent.glob("index.db.corrupt-*"))) == 1


@pytest.mark.slow
def test_a_folder_nobody_may_read_is_a_one_line_error_for_every_command(tmp_path):
    # run without the capabilities that let root read anything, as an ordinary user is
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "x.py").write_text("def x():\n    pass\n")
    closed.chmod(0)
    unprivileged = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search", "--reuid=0", "--"]
    try:
        for args in (["search", "x", str(closed)], ["index", str(closed)], ["status", str(closed)]):
            proc = subprocess.run([*unprivileged, str(NEEDLE), *args], capture_output=True, text=True,
                                  timeout=120)
            assert proc.returncode != 0 and "Traceback" not in proc.stderr, (args, proc.stderr[-1500:])
            assert proc.stderr.strip() == f"needle: error: folder is not readable: {closed}", args
    finally:
        closed.chmod(0o755)


def test_an_index_another_process_has_just_created_reads_as_indexing(tmp_path):
    """Between a new writer creating index.db and writing its tables, a `needle status --json` beside it says
    "indexing" on stdout (not "not a Needle index" on stderr); with no writer, the same empty file is refused."""
    import sys
    import time

    repo = copy_fixture("minirepo", tmp_path / "repo")
    index_dir = repo / ".needle"
    index_dir.mkdir()
    (index_dir / "index.db").write_bytes(b"")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from codeneedle.indexer.lock import WriterLock; "
        f"lock = WriterLock(Path({str(index_dir)!r})); lock.acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_needle("status", "--json", "--path", str(repo))
        assert proc.returncode == 0, proc.stderr
        status = json.loads(proc.stdout)
        assert status["state"] == "indexing" and status["files"] == 0, status
        # an index of another schema is not one being created, whoever holds the lock
        with closing(sqlite3.connect(index_dir / "index.db")) as conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
            conn.commit()
        assert "schema 99" in _one_line_error(run_needle("status", "--json", "--path", str(repo)))
        (index_dir / "index.db").write_bytes(b"")
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    proc = run_needle("status", "--json", "--path", str(repo))
    assert proc.returncode == 1 and "not a Needle index" in proc.stderr, (proc.stdout, proc.stderr)


@pytest.mark.slow  # a language server
def test_reindex_from_an_editor_says_a_read_only_index_cannot_be_updated(tmp_path):
    """`needle.reindex` on a read-only copy answered "started" and did nothing."""
    from tests.lsp.rawclient import RawClient

    with read_only_copy(tmp_path, lambda index_dir: None) as (repo, index_dir):
        c = RawClient(configuration={"indexDir": str(index_dir)})
        try:
            c.initialize(repo)
            assert c.wait_ready()["folders"][0]["readOnly"]
            answer = c.command("needle.reindex", {})
            assert answer["error"]["code"] == -32803, answer
            assert f"{repo}: the index {index_dir}/index.db is read-only" in answer["error"]["message"], answer
        finally:
            assert c.close() == 0


def test_a_transaction_the_disk_fills_is_rolled_back_and_says_the_disk_is_full(tmp_path):
    """SQLite rolls a transaction back itself on SQLITE_FULL; our ROLLBACK then failed with "cannot rollback - no
    transaction is active", and that, not the full disk, was the error the user read. (max_page_count gives the
    real SQLITE_FULL without filling a disk.)"""
    from codeneedle.indexer.store import Store

    store = Store(tmp_path / "index.db")
    try:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        for _ in range(2):  # and the connection takes the next transaction
            with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
                with store.transaction():
                    store.conn.execute("INSERT INTO meta(key, value) VALUES ('small', 'kept?')")
                    store.conn.execute("INSERT INTO meta(key, value) VALUES ('big', ?)", ("x" * 100_000,))
        assert not store.conn.in_transaction
        assert store.get_meta("small") is None  # nothing of it stayed
        with store.transaction():
            store.set_meta("small", "stored")
        assert store.get_meta("small") == "stored"
    finally:
        store.close()
