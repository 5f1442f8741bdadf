"""The live index (what the language server, the MCP server and `needle watch` run): a real Index over real files,
built in its worker thread, watched with real watchdog events, and read-only while another process holds the
writer lock. Also the writer rule it relies on: ``Index.writing()`` is the one way to the lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from codeneedle.errors import IndexLockedError
from codeneedle.indexer.index import Index
from codeneedle.indexer.live import LiveEvents, LiveIndex, LiveStatus, innermost
from codeneedle.indexer.store import WAL_SIZE_LIMIT, Store
from codeneedle.indexer.walker import walk
from tests.conftest import copy_fixture

NEW_FUNCTION = '''

def convert_celsius_to_fahrenheit(celsius):
    """Convert a temperature from degrees Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32
'''
HOLD_LOCK = ("import sys\nfrom codeneedle.indexer.index import Index\n"
             "with Index.open(sys.argv[1]) as index, index.writing():\n"
             "    print('held', flush=True)\n    sys.stdin.read()\n")


class Recorder(LiveEvents):
    """Every event, in order (the worker thread appends; tests read after waiting)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def message(self, level: int, text: str) -> None:
        self.seen.append(("message", text))

    def build_started(self, cancel: Callable[[], None]) -> None:
        self.seen.append(("started", None))

    def progress(self, progress) -> None:
        self.seen.append(("progress", progress.phase))

    def build_ended(self, summary: str) -> None:
        self.seen.append(("ended", summary))

    def batch(self, report) -> None:
        self.seen.append(("batch", report))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.seen]


def until(condition: Callable[[], object], timeout: float = 60.0) -> object:
    """Poll ``condition`` until it is truthy (returned) or ``timeout`` passes (fails the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"condition not met within {timeout}s")


@pytest.fixture
def repo(tmp_path):
    return copy_fixture("minirepo", tmp_path / "repo")


def test_it_builds_in_the_background_then_reports_ready_and_watches(repo):
    events = Recorder()
    live = LiveIndex(repo, events=events)
    assert live.status().state == "starting" and live.status().partial  # nothing opened before start()
    live.start()
    try:
        assert live.refresh(wait=120)
        status = live.status()
        assert isinstance(status, LiveStatus)
        assert (status.state, status.partial, status.read_only, status.watching) == ("ready", False, False, True)
        assert status.index is not None and status.index.files == 7 and status.index.chunks > 0
        assert status.index.chunks_embedded == status.index.chunks
        kinds = events.kinds()  # the watcher's first rescan may add a batch after the build ended
        assert kinds[0] == "started" and kinds.index("progress") < kinds.index("ended")
        (summary,) = [text for kind, text in events.seen if kind == "ended"]
        assert summary.startswith("7 files indexed")
        assert live.index is not None and live.index.is_writer  # held for the whole session
        assert [r.name for r in live.search("crc32 checksum of bytes", k=1)] == ["crc32_checksum"]
    finally:
        live.close()
        assert live.wait_closed(30)
    assert live.index is None
    with Index.open(repo) as other, other.writing():
        pass  # closing released the lock


def test_a_search_sent_as_it_starts_waits_for_the_index_to_open(repo):
    with Index.open(repo) as index:
        index.update()
    # an editor's first search comes a moment after it started the server: it gets answers, not "still indexing"
    live = LiveIndex(repo).start()
    try:
        assert [r.name for r in live.search("crc32 checksum of bytes", k=1)] == ["crc32_checksum"]
    finally:
        live.close()
        assert live.wait_closed(30)
    closed = LiveIndex(repo)
    closed.close()
    started = time.monotonic()
    assert closed.search("crc32 checksum of bytes") == [] and time.monotonic() - started < 1  # closed: no wait


def test_a_file_edit_is_picked_up_by_the_watcher(repo):
    events = Recorder()
    live = LiveIndex(repo, events=events, debounce=0.05).start()
    try:
        assert live.refresh(wait=120)
        with open(repo / "src/config/loader.py", "a") as fh:
            fh.write(NEW_FUNCTION)
        until(lambda: any(r.name == "convert_celsius_to_fahrenheit"
                          for r in live.search("celsius to fahrenheit", k=3)))
        # The batch is reported once its update returns, a moment after its commit became searchable.
        batches = until(lambda: [report for kind, report in events.seen
                                 if kind == "batch" and report.stats.files_changed])
        assert sum(b.stats.chunks_embedded for b in batches) == 1  # only the new function
        # A change reported by the editor (didSave) goes through the same watcher.
        (repo / "web/extra.ts").write_text("export function kelvinToCelsius(k: number) { return k - 273.15; }\n")
        live.submit([repo / "web/extra.ts"])
        until(lambda: any(r.name == "kelvinToCelsius" for r in live.search("kelvin to celsius", k=3)))
    finally:
        live.close()
        live.wait_closed(30)


def test_read_only_while_another_process_writes_then_the_writer_when_it_stops(repo):
    with Index.open(repo) as index:
        index.update()  # an index to serve while locked
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(repo)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    events = Recorder()
    try:
        assert holder.stdout.readline().strip() == "held"
        live = LiveIndex(repo, events=events, lock_retry_s=0.5).start()
        try:
            live.refresh(wait=120)
            status = live.status()
            assert status.read_only and not status.watching
            assert "another needle process" in status.message and f"pid {holder.pid}" in status.message
            assert status.to_dict()["read_only"] is True
            assert ("message", status.message) in events.seen  # told once, at INFO
            # Reads work meanwhile.
            assert [r.name for r in live.search("crc32 checksum of bytes", k=1)] == ["crc32_checksum"]
            holder.stdin.close()
            holder.wait(30)
            status = until(lambda: (s := live.status()).watching and s)
            assert not status.read_only and status.message is None and live.index.is_writer
            (repo / "src/new_module.py").write_text("def parse_semver_string(text):\n    return text.split('.')\n")
            until(lambda: any(r.name == "parse_semver_string" for r in live.search("parse semver", k=3)))
        finally:
            live.close()
            live.wait_closed(30)
    finally:
        holder.kill()
        holder.wait()


def test_without_holding_the_writer_each_update_releases_the_lock(repo):
    """The MCP server's mode: refresh on request, no watcher, no lock between calls."""
    live = LiveIndex(repo, watch=False, hold_writer=False).start()
    try:
        assert live.refresh(wait=120)
        status = live.status()
        assert status.state == "ready" and not status.watching and not live.index.is_writer
        with Index.open(repo) as other, other.writing():
            assert live.refresh(wait=60)  # the update meets the other writer: served read-only
            assert live.status().read_only
        assert live.refresh(wait=60) and not live.status().read_only
    finally:
        live.close()
        live.wait_closed(30)


def test_a_cancelled_build_says_so_and_results_are_partial(repo, monkeypatch):
    from codeneedle.indexer import embedding

    monkeypatch.setattr(embedding, "FIRST_GROUP", 4)
    live: LiveIndex | None = None

    class CancelOnFirstVectors(LiveEvents):
        armed = True

        def progress(self, progress) -> None:
            if self.armed and progress.phase == "embed" and progress.chunks_embedded:
                self.armed = False  # the first build only
                live.cancel()

    live = LiveIndex(repo, events=CancelOnFirstVectors(), watch=False)
    live.start()
    try:
        assert live.refresh(wait=120)
        status = live.status()
        assert status.state == "cancelled" and status.partial and "cancelled" in status.message
        assert 0 < status.index.chunks_embedded < status.index.chunks
        assert live.partial()
        # Another process (`needle status` in a shell) reads it as partial, not as being indexed: the writer is
        # alive but nothing runs.
        other = subprocess.run([sys.executable, "-m", "codeneedle.cli", "status", "--json", str(repo)],
                               capture_output=True, text=True, timeout=60)
        assert json.loads(other.stdout)["state"] == "partial", other.stdout + other.stderr
        # The watcher's full rescan (a folder deleted, a checkout) applies removals and re-reads files it knows,
        # but takes up nothing of what the cancel left: the files it never read, the chunks without vectors.
        index = live.index
        before = status.index
        unread = {f.path for f in walk(repo).files} - set(index.reader().file_records())
        shutil.rmtree(repo / "src" / "hash")
        stats = index.update()
        after = live.status().index
        assert index.reader().file_record("src/hash/checksum.c") is None and stats.files_removed == 1
        assert after.chunks_embedded <= before.chunks_embedded and live.status().state == "cancelled"
        assert unread == {f.path for f in walk(repo).files} - set(index.reader().file_records())
        assert live.refresh(wait=120)  # the next full update asked for finishes the job
        status = live.status()
        assert status.state == "ready" and not status.partial and status.message is None
    finally:
        live.close()
        live.wait_closed(30)


def test_status_to_dict_has_one_shape_in_snake_or_camel_case(repo):
    live = LiveIndex(repo, watch=False).start()
    try:
        assert live.refresh(wait=120)
        snake = live.status().to_dict()
        camel = live.status().to_dict(camel=True)
    finally:
        live.close()
        live.wait_closed(30)
    assert set(snake) == {"root", "index_dir", "state", "partial", "read_only", "watching", "model", "files", "chunks",
                          "last_update", "skipped", "size_bytes", "languages", "chunks_embedded", "query_adapter"}
    assert set(camel) == {"root", "indexDir", "state", "partial", "readOnly", "watching", "model", "files", "chunks",
                          "lastUpdate", "skipped", "sizeBytes", "languages", "chunksEmbedded", "queryAdapter"}
    assert snake["query_adapter"] is None  # nothing opened yet: no adapter
    assert snake["root"] == str(repo) and snake["files"] == camel["files"] == 7
    assert snake["languages"] == camel["languages"] and "python" in snake["languages"]  # data keys stay as they are
    building = LiveStatus(root="r", index_dir="d", state="indexing", partial=True,
                          progress=_progress()).to_dict(camel=True)
    assert building["progress"] == {"phase": "embed", "filesDone": 7, "filesTotal": 7, "chunksEmbedded": 10,
                                    "chunksToEmbed": 40, "chunksPerSecond": 2.5, "etaSeconds": 12}


def _progress():
    from codeneedle.indexer.types import Progress

    return Progress("embed", 7, 7, 10, 40, 2.54, 12.2)


def test_innermost_picks_the_deepest_root_holding_a_path(tmp_path):
    outer = LiveIndex(tmp_path)
    inner = LiveIndex(tmp_path / "sub")
    assert innermost([outer, inner], tmp_path / "sub" / "a.py") is inner
    assert innermost([inner, outer], tmp_path / "b.py") is outer
    assert innermost([inner], tmp_path / "b.py") is None


def test_writing_is_reentrant_and_released_by_the_outermost_block(repo):
    with Index.open(repo) as index, Index.open(repo) as other:
        with index.writing():
            with index.writing():
                assert index.is_writer
            assert index.is_writer  # an inner block ending keeps the lock
            with pytest.raises(IndexLockedError, match="another needle process"):
                with other.writing():
                    pass
        assert not index.is_writer
        with other.writing():
            assert other.is_writer


def test_writing_waits_up_to_the_given_time_for_the_other_writer(repo):
    with Index.open(repo) as index, Index.open(repo) as other:
        held = threading.Event()

        def hold_briefly() -> None:
            with index.writing():
                held.set()
                time.sleep(0.5)

        thread = threading.Thread(target=hold_briefly)
        thread.start()
        held.wait(10)
        with pytest.raises(IndexLockedError):
            with other.writing():
                pass
        with other.writing(wait=20):  # retried until the first writer's block ended
            assert other.is_writer and not index.is_writer
        thread.join()


def test_needle_watch_is_the_writer_or_a_one_line_refusal(repo):
    from tests.conftest import run_needle

    with Index.open(repo) as index, index.writing():
        proc = run_needle("watch", str(repo), timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("needle: error: ") and "being written by another needle process" in proc.stderr
    assert "Traceback" not in proc.stderr and "scanning" not in proc.stderr  # refused before any progress bar


@pytest.mark.slow
def test_needle_watch_stops_with_one_line_when_its_project_is_deleted(tmp_path):
    import shutil
    import subprocess

    from tests.conftest import NEEDLE, run_needle

    project = copy_fixture("minirepo", tmp_path / "project")
    assert run_needle("index", "-q", str(project)).returncode == 0
    watcher = subprocess.Popen([str(NEEDLE), "watch", str(project)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert "watching" in watcher.stderr.readline() + watcher.stderr.readline()  # after "up to date"
        shutil.rmtree(project)
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 1, (out, err)
    assert err.strip().endswith(f"needle: error: {project} was deleted or moved away; stopped watching"), err
    assert not project.exists()  # no empty index brought back in its place


def test_an_editor_opened_on_the_home_folder_does_not_index_it_unasked(tmp_path, monkeypatch):
    """A window opened on the home folder would index all of it: the live index says why it does not, and uses
    an index `needle index` built there on purpose."""
    home = copy_fixture("minirepo", tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    events = Recorder()
    live = LiveIndex(home, events=events).start()
    try:
        status = until(lambda: (s := live.status()).state == "error" and s)
        assert "is your home folder" in status.message and f"`needle index {home}`" in status.message
        assert not (home / ".needle").exists()
    finally:
        live.close()
        assert live.wait_closed(30)
    with Index.open(home, asked=True) as index:  # what `needle index ~` does
        index.update()
    live = LiveIndex(home, events=Recorder()).start()
    try:
        assert live.refresh(wait=120) and live.status().state == "ready"
    finally:
        live.close()
        assert live.wait_closed(30)


def test_a_long_lived_writer_cuts_its_write_ahead_log_back_after_a_burst(tmp_path) -> None:
    """SQLite never shrinks its write-ahead log: a language server or `needle watch` kept it as large as its biggest
    burst of writes (a first build) for as long as it ran. Once a checkpoint got through, the next write cuts it
    back to WAL_SIZE_LIMIT, with a search thread's connection open beside the writer, as in a live index."""
    writer = Store(tmp_path / "index.db")
    reader = Store(tmp_path / "index.db", create=False)
    try:
        with writer.transaction():
            for i in range(300):
                writer.set_meta(f"burst{i}", os.urandom(20_000).hex())  # ~12 MB in one transaction
        wal = tmp_path / "index.db-wal"
        assert wal.stat().st_size > 2 * WAL_SIZE_LIMIT
        assert reader.get_meta("burst1")
        for n in range(3):
            with writer.transaction():
                writer.set_meta("after", str(n))
            assert wal.stat().st_size <= WAL_SIZE_LIMIT
    finally:
        reader.close()
        writer.close()
