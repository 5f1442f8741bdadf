"""Live sync with real watchdog events on real files: every change is searchable, nothing else re-embedded."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from codeneedle.indexer.index import Index
from codeneedle.indexer.walker import walk
from codeneedle.indexer.watcher import Watcher
from tests.conftest import copy_fixture

pytestmark = pytest.mark.slow  # a live watcher waiting for file-system events

NEW_FUNCTION = '''

def convert_celsius_to_fahrenheit(celsius):
    """Convert a temperature from degrees Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32
'''


@pytest.fixture
def live(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    index = Index.open(repo)
    index.update()
    batches = []
    watcher = Watcher(index, debounce=0.1, on_batch=batches.append)
    watcher.start()
    yield repo, index, watcher, batches
    watcher.stop()
    index.close()


def settle(watcher: Watcher, batches: list, count: int = 1, timeout: float = 30) -> None:
    """Wait until at least ``count`` batches have been absorbed and nothing is pending."""
    deadline = time.monotonic() + timeout
    while len(batches) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.wait_idle(timeout)
    assert len(batches) >= count, "the watcher absorbed no batch"


def names(index, query, k=5):
    return [(r.path, r.name) for r in index.search(query, k=k)]


def test_a_rescan_that_finds_nothing_changed_is_not_reported_and_one_that_does_is(live):
    # `needle watch` prints a line per reported batch: its catch-up rescan at start used to print "full rescan:
    # 0 files changed" every time.
    repo, index, watcher, batches = live
    for change in (None, "def added():\n    return 1\n"):
        if change:
            (repo / "added.py").write_text(change)
        before = watcher.batches
        watcher.rescan()
        deadline = time.monotonic() + 30
        while watcher.batches == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.wait_idle(30) and watcher.batches > before
        # The new file is reported once, by the rescan or by its own event's batch.
        assert sum(b.stats.files_changed for b in batches) == (1 if change else 0), batches
        assert change or batches == [], batches


def test_an_edit_is_searchable_and_only_the_edited_chunk_is_embedded(live):
    repo, index, watcher, batches = live
    with open(repo / "src/config/loader.py", "a") as fh:
        fh.write(NEW_FUNCTION)
    settle(watcher, batches)
    assert ("src/config/loader.py", "convert_celsius_to_fahrenheit") in names(index, "celsius to fahrenheit")
    assert sum(b.stats.chunks_embedded for b in batches) == 1


def test_an_atomic_save_is_picked_up(live):
    repo, index, watcher, batches = live
    target = repo / "web/format.ts"
    tmp = repo / "web/.format.ts.swp~"
    tmp.write_text(target.read_text().replace("Shorten a long piece of text", "Abbreviate a sentence"))
    os.replace(tmp, target)
    settle(watcher, batches)
    hit = index.search("abbreviate a sentence", k=1)[0]
    assert (hit.path, hit.name) == ("web/format.ts", "truncateText")


def test_a_rename_moves_results_without_re_embedding(live):
    repo, index, watcher, batches = live
    shutil.move(repo / "lib/text/slug.rb", repo / "lib/text/urls.rb")
    settle(watcher, batches)
    assert ("lib/text/urls.rb", "Text.slugify") in names(index, "make a url slug from a title", k=2)
    assert sum(b.stats.chunks_embedded for b in batches) == 0


def test_a_deletion_leaves_the_index(live):
    repo, index, watcher, batches = live
    (repo / "src/hash/checksum.c").unlink()
    settle(watcher, batches)
    assert all(p != "src/hash/checksum.c" for p, _ in names(index, "crc32 checksum of bytes", k=10))


def test_a_folder_created_with_files_inside_is_indexed(live, tmp_path):
    repo, index, watcher, batches = live
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "temperature.py").write_text(NEW_FUNCTION)
    shutil.move(staging, repo / "tools")
    settle(watcher, batches)
    assert ("tools/temperature.py", "convert_celsius_to_fahrenheit") in names(index, "celsius to fahrenheit")


def test_ignore_file_changes_move_files_out_of_and_back_into_the_index(live):
    repo, index, watcher, batches = live
    (repo / ".gitignore").write_text("src/net/\n")
    settle(watcher, batches)
    assert all(not p.startswith("src/net/") for p, _ in names(index, "retry with exponential backoff", k=10))
    (repo / ".gitignore").write_text("")
    settle(watcher, batches, count=2)
    assert ("src/net/retry.go", "RetryWithBackoff") in names(index, "retry with exponential backoff")
    assert sum(b.stats.chunks_embedded for b in batches) == 0


def test_a_checkout_of_many_files_is_absorbed_in_few_batches(live):
    repo, index, watcher, batches = live
    pkg = repo / "generated"
    pkg.mkdir()
    for i in range(300):
        (pkg / f"mod_{i}.py").write_text(f"def handler_{i}(event):\n    return event + {i}\n")
    settle(watcher, batches)
    deadline = time.monotonic() + 60
    while index.status().files < 7 + 300 and time.monotonic() < deadline:
        watcher.wait_idle(5)
        time.sleep(0.2)
    assert index.status().files == 7 + 300
    assert len(batches) < 30


def test_a_second_writer_is_refused_while_watching(live):
    from codeneedle.errors import IndexLockedError

    repo, *_ = live
    other = Index.open(repo)
    try:
        # filelock is per-process reentrant only for the same FileLock object; a new Index is a new one.
        with pytest.raises(IndexLockedError):
            other.update()
    finally:
        other.close()


def test_the_index_folder_deleted_while_idle_is_rebuilt_at_once(live):
    from codeneedle.errors import IndexLockedError

    repo, index, watcher, batches = live
    shutil.rmtree(repo / ".needle")  # `rm -rf .needle`, or `git clean -fdx`: no source file changes after it
    settle(watcher, batches, timeout=120)  # every chunk is embedded again: the vectors went with the folder
    assert index.status().files == 7
    assert ("src/hash/checksum.c", "crc32_checksum") in names(index, "crc32 checksum of bytes")
    other = Index.open(repo)
    try:
        with pytest.raises(IndexLockedError):  # the watcher holds the new folder's lock: no second writer
            other.update()
    finally:
        other.close()


WATCH_CHILD = """import sys
from codeneedle.indexer.index import Index
from codeneedle.indexer.watcher import Watcher
index = Index.open(sys.argv[1])
index.update()
Watcher(index, reconcile_every=None).start()  # no periodic rescan: only what the events say
print('watching', flush=True)
sys.stdin.read()
"""


def test_events_lost_while_the_watcher_was_stopped_lead_to_a_rescan(tmp_path):
    """A machine asleep (the process stopped) while files churn: the kernel drops events past its queue."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 200_000:
        pytest.skip(f"inotify queue of {limit} events: too large to overflow here")
    repo = copy_fixture("minirepo", tmp_path / "repo")
    child = subprocess.Popen([sys.executable, "-c", WATCH_CHILD, str(repo)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "watching"
        child.send_signal(signal.SIGSTOP)
        touched = [repo / "src/config/loader.py", repo / "web/format.ts"]
        for _ in range(limit // 2 + 1000):  # alternating: the kernel merges only repeats of the same event
            for path in touched:
                os.utime(path)
        (repo / "src/late.py").write_text(NEW_FUNCTION)  # its events come after the overflow: dropped
        child.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 120
        with Index.open(repo) as reader:
            while reader.reader().file_record("src/late.py") is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert reader.reader().file_record("src/late.py") is not None
    finally:
        child.kill()
        child.wait()


def test_changes_inside_hidden_folders_make_no_batches(live):
    """A nested repository's `.git`, an IDE's `.idea`: nothing under a hidden folder is indexed."""
    repo, index, watcher, batches = live
    for folder in ("vendored/.git/objects/ab", ".idea", "src/.pytest_cache/v"):
        (repo / folder).mkdir(parents=True)
        for i in range(5):
            (repo / folder / f"f{i}.py").write_text(NEW_FUNCTION)
    (repo / "vendored/readme.py").write_text(NEW_FUNCTION)
    settle(watcher, batches)
    deadline = time.monotonic() + 60
    while not any(p == "vendored/readme.py" for p, _ in names(index, "celsius to fahrenheit")):
        assert time.monotonic() < deadline, "the real file never became searchable"
        watcher.wait_idle(5)
    assert sum(b.paths for b in batches) == 2  # vendored/ and vendored/readme.py, none of the hidden ones


def test_a_deleted_project_is_not_brought_back_as_an_empty_index(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    index = Index.open(repo)
    index.update()
    errors: list[Exception] = []
    watcher = Watcher(index, debounce=0.1, on_error=errors.append)
    watcher.start()
    try:
        shutil.rmtree(repo)  # the project deleted while its watcher runs
        deadline = time.monotonic() + 60
        while not errors and time.monotonic() < deadline:
            watcher.wait_idle(5)
            time.sleep(0.05)
        assert errors and "was deleted or moved away" in str(errors[0])
        assert not repo.exists()
    finally:
        watcher.stop()
        index.close()


def test_a_file_grown_past_the_size_cap_leaves_its_batch_says_why_and_it_comes_back_unembedded(live):
    repo, index, watcher, batches = live
    path = repo / "src/config/loader.py"
    original = path.read_bytes()
    with open(path, "a") as fh:
        fh.write("# padding\n" * 120_000)  # 1.2 MB: past the 1 MiB cap
    settle(watcher, batches)
    assert index.reader().file_record("src/config/loader.py") is None
    assert any("(skipped: 1 too_large)" in b.line() for b in batches), [b.line() for b in batches]
    path.write_bytes(original)
    settle(watcher, batches, count=len(batches) + 1)
    assert index.reader().file_record("src/config/loader.py") is not None
    assert sum(b.stats.chunks_embedded for b in batches) == 0  # its chunks came back with their cached vectors


def test_a_name_that_is_not_utf8_is_skipped_without_failing_its_batch(live):
    """An archive unpacked with Latin-1 names: the batch that holds one still indexes its neighbours."""
    repo, index, watcher, batches = live
    errors: list[Exception] = []
    watcher.on_error = errors.append
    (repo / "tools").mkdir()
    (repo / "tools/temperature.py").write_text(NEW_FUNCTION)
    with open(os.path.join(os.fsencode(repo), b"tools/caf\xe9.py"), "w") as fh:
        fh.write("def latin_one_named(x):\n    return x\n")
    settle(watcher, batches)
    assert not errors
    assert ("tools/temperature.py", "convert_celsius_to_fahrenheit") in names(index, "celsius to fahrenheit")
    assert sorted(index.reader().file_records()) == sorted(f.path for f in walk(repo).files)


def test_a_batch_line_counts_one_path_and_one_file_in_the_singular() -> None:
    """`needle watch` printed "1 paths: 1 files changed" for a saved file."""
    from codeneedle.indexer.types import UpdateStats
    from codeneedle.indexer.watcher import BatchReport

    one = BatchReport(1, False, UpdateStats(files_changed=1)).line()
    assert one.startswith("1 path: 1 file changed, 0 removed")
    assert BatchReport(3, False, UpdateStats(files_changed=2)).line().startswith("3 paths: 2 files changed")


@pytest.mark.slow  # the real command
def test_needle_watch_counts_the_files_it_indexed_as_status_does(tmp_path) -> None:
    """A generated file is read and left out: `needle watch` said "(8 files)" where `needle status` said 7."""
    import json
    import subprocess

    from tests.conftest import NEEDLE, run_needle

    repo = copy_fixture("minirepo", tmp_path / "repo")
    (repo / "api.pb.go").write_text("// Code generated by protoc-gen-go. DO NOT EDIT.\npackage api\n\n"
                                    "func Marshal() []byte { return nil }\n")
    watcher = subprocess.Popen([str(NEEDLE), "watch", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        line = ""
        while "watching" not in line:
            line = watcher.stderr.readline()
            assert line, "needle watch ended before watching"
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
    files = json.loads(run_needle("status", "--json", str(repo)).stdout)["files"]
    assert files == 7 and line.rstrip().endswith(f"({files} files); Ctrl-C to stop"), line


def test_batches_a_full_disk_refused_are_said_once_and_indexed_when_there_is_room(tmp_path):
    """Each batch on a full disk said "update failed" again, and the files it held stayed out of the index after
    the disk had room (until some later rescan happened to find them). (max_page_count gives SQLite's real
    "database or disk is full" without filling a disk.)"""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    index = Index.open(repo)
    index.update()
    errors: list[Exception] = []
    batches: list = []
    watcher = Watcher(index, debounce=0.1, on_batch=batches.append, on_error=errors.append, reconcile_every=None)
    watcher.start()
    try:
        pages = index.store.conn.execute("PRAGMA page_count").fetchone()[0]
        index.store.conn.execute(f"PRAGMA max_page_count = {pages}")
        for i in range(3):
            (repo / f"refused_{i}.py").write_text("".join(f"def refused_on_a_full_disk_{i}_{j}(x):\n    return x * {j}\n\n"
                                                          for j in range(100)))  # more than the free pages hold
            time.sleep(0.5)
            assert watcher.wait_idle(30)
        assert [str(e) for e in errors] == [str(errors[0])] and "disk full" in str(errors[0])
        assert not batches

        index.store.conn.execute("PRAGMA max_page_count = 1073741823")  # room again
        (repo / "after.py").write_text("def written_once_there_was_room(x):\n    return x\n")
        settle(watcher, batches)
        indexed = set(index.reader().file_records())
        assert {"refused_0.py", "refused_1.py", "refused_2.py", "after.py"} <= indexed
        assert len(errors) == 1
    finally:
        watcher.stop()
        index.close()
