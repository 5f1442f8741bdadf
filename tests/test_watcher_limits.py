"""Live sync beside build tools and under the kernel's inotify limits: ignored folders cost no watch and no batch, and
a limit reached means one line naming it and rescans instead, with nothing of the failed observer left running.

The limits are reached for real, without root and without touching the machine's settings: a child process in a
user namespace of its own (`unshare -Ur`) lowers that namespace's `user.max_inotify_*`, which the kernel enforces
on top of the machine's; the open-file limit is the child's own `RLIMIT_NOFILE`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeneedle.indexer.index import Index
from codeneedle.indexer.walker import walk
from codeneedle.indexer.watcher import Watcher
from tests.conftest import copy_fixture

pytestmark = [pytest.mark.slow,  # live watchers waiting for file-system events, child processes loading the encoder
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")]

FUNCTION = "def zebra_stripe_count(animal):\n    return animal.stripes\n"


def inotify_fds() -> dict[str, int]:
    """This process's inotify instances: fd -> how many watches it holds (the kernel's own count)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            found[fd] = Path(f"/proc/self/fdinfo/{fd}").read_text().count("inotify wd:")
        except OSError:
            continue
    return found


def watches_of(before: dict[str, int]) -> int:
    """Watches held by the inotify instance opened since ``before`` was taken."""
    new = {fd: n for fd, n in inotify_fds().items() if fd not in before}
    assert len(new) == 1, new
    return next(iter(new.values()))


def folders_walked(repo: Path) -> set[str]:
    """The folders the walk enters to reach the indexed files (every folder of these fixtures holds some)."""
    found = {"."}
    for f in walk(repo).files:
        parts = f.path.split("/")[:-1]
        found.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def settle(watcher: Watcher, batches: list, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(batches) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.wait_idle(timeout) and len(batches) >= count, batches


def rescanned(watcher: Watcher, timeout: float = 60) -> None:
    """Wait for the full rescan an ignore-file edit brings (reported or not: it may change no file)."""
    before = watcher.batches
    deadline = time.monotonic() + timeout
    while watcher.batches == before:
        assert time.monotonic() < deadline, "no rescan"
        time.sleep(0.05)
    assert watcher.wait_idle(timeout)


@contextlib.contextmanager
def watching(index: Index):
    """A started watcher (no periodic rescan), the batches it reports, and this process's inotify instances before
    it started; stopped on the way out."""
    batches: list = []
    watcher = Watcher(index, debounce=0.1, on_batch=batches.append, reconcile_every=None)
    before = inotify_fds()
    watcher.start()
    try:
        yield watcher, batches, before
    finally:
        watcher.stop()


@pytest.fixture
def project(tmp_path):
    """minirepo beside what build tools make: node_modules/ (noise), a gitignored target/ and venv/."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    (repo / ".gitignore").write_text("/target\nvenv/\n")
    for i in range(40):
        (repo / f"node_modules/pkg{i}/lib").mkdir(parents=True)
        (repo / f"node_modules/pkg{i}/lib/index.js").write_text("module.exports = 1;\n")
        (repo / f"target/debug/build/crate{i}/out").mkdir(parents=True)
        (repo / f"venv/lib/site-packages/mod{i}").mkdir(parents=True)
    index = Index.open(repo)
    index.update()
    yield repo, index
    index.close()


def test_ignored_folders_take_no_inotify_watch_and_a_build_in_them_makes_no_batch(project):
    repo, index = project
    with watching(index) as (watcher, batches, before):
        # One watch per folder the walk enters, and one for the index folder: none of the 280 ignored ones.
        expected = len(folders_walked(repo)) + 1
        assert watches_of(before) == expected
        # `npm install`, `cargo build`, `python -m compileall`: thousands of events under ignored folders.
        for i in range(40, 100):
            (repo / f"node_modules/pkg{i}/dist").mkdir(parents=True)
            (repo / f"node_modules/pkg{i}/dist/index.js").write_text("module.exports = 2;\n")
            (repo / f"node_modules/pkg{i}/.gitignore").write_text("*.log\n")  # not the project's ignore rules
        for i in range(40):
            for j in range(20):
                (repo / f"target/debug/build/crate{i}/out/obj{j}.rs").write_text(FUNCTION)
        (repo / "src/config/__pycache__").mkdir()
        (repo / "src/config/__pycache__/loader.cpython-311.pyc").write_bytes(b"\0" * 64)
        (repo / "target/release/deps").mkdir(parents=True)
        # A real edit after them: its batch is the only one, and it holds only its own path.
        (repo / "web/zebra.py").write_text(FUNCTION)
        settle(watcher, batches)
        time.sleep(0.5)
        assert watcher.wait_idle(30)
        assert [(b.paths, b.full_scan, b.stats.files_changed) for b in batches] == [(1, False, 1)]
        assert watches_of(before) == expected
        # A folder the walk enters, made later, is watched with what it holds; node_modules inside it is not.
        (repo / "web/widgets/node_modules/left-pad").mkdir(parents=True)
        (repo / "web/widgets/card.py").write_text(FUNCTION.replace("zebra", "card"))
        settle(watcher, batches, 2)
        assert watches_of(before) == expected + 1
        assert index.reader().file_record("web/widgets/card.py") is not None
    assert inotify_fds() == before


def test_a_folder_let_in_by_an_ignore_file_edit_is_watched_and_one_shut_out_loses_its_watch(project):
    repo, index = project
    with watching(index) as (watcher, batches, before):
        walked = len(folders_walked(repo)) + 1
        (repo / ".gitignore").write_text("venv/\n")  # target/ comes in: target/debug/build and 40 crate*/out
        rescanned(watcher)
        assert watches_of(before) == walked + 3 + 40 * 2
        # Its new files are seen by their own events now (the periodic rescan is off).
        (repo / "target/debug/build/crate0/out/zebra.py").write_text(FUNCTION)
        deadline = time.monotonic() + 60
        while index.reader().file_record("target/debug/build/crate0/out/zebra.py") is None:
            assert time.monotonic() < deadline, batches
            time.sleep(0.1)
        (repo / ".gitignore").write_text("venv/\ntarget/\nlib/\n")  # lib/ and lib/text go out, with target/
        rescanned(watcher)
        assert watches_of(before) == walked - 2


LIMIT_CHILD = r"""
import json, os, resource, sys, threading, time
from pathlib import Path
from codeneedle.indexer import watcher as W
from codeneedle.indexer.index import Index

W.LIMITED_RESCAN_S = 0.5  # the real interval is 10 s
root, knob, value = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def inotify_fds():
    return sum(os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify" for fd in os.listdir("/proc/self/fd")
               if os.path.exists(f"/proc/self/fd/{fd}"))

index = Index.open(root)
index.update()
warnings, batches = [], []
w = W.Watcher(index, debounce=0.05, on_batch=batches.append, on_warning=warnings.append, reconcile_every=None)
threads = threading.active_count()
if knob == "nofile":  # every descriptor in use: the next one, inotify's, is refused (imports need them too)
    import watchdog.observers.inotify  # noqa: F401
    from codeneedle.indexer import observe
    observe.pruned_observer(lambda path: True, print)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 1, hard))
else:
    Path(f"/proc/sys/user/{knob}").write_text(str(value))
w.start()
if knob == "nofile":
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
held = {"inotify": inotify_fds(), "threads": threading.active_count() - threads}
(root / "web/later").mkdir()
(root / "web/later/zebra.py").write_text("def zebra_stripe_count(animal):\n    return animal.stripes\n")
deadline = time.monotonic() + 120
while index.reader().file_record("web/later/zebra.py") is None and time.monotonic() < deadline:
    time.sleep(0.1)
found = index.reader().file_record("web/later/zebra.py") is not None
w.stop()
index.close()
time.sleep(0.5)
print(json.dumps({"warnings": warnings, "found": found, "held": held, "after_stop": inotify_fds(),
                  "threads_after_stop": threading.active_count() - threads}))
"""


def run_limited(repo: Path, knob: str, value: int) -> dict:
    """LIMIT_CHILD in a user namespace of its own, where ``knob`` (a ``user.max_inotify_*``) is ``value``."""
    cmd = [sys.executable, "-c", LIMIT_CHILD, str(repo), knob, str(value)]
    if knob != "nofile":
        if shutil.which("unshare") is None:
            pytest.skip("no unshare(1)")
        probe = subprocess.run(["unshare", "-Ur", "sh", "-c", "echo 1 > /proc/sys/user/max_inotify_watches"],
                               capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"no user namespace with its own inotify limits here: {probe.stderr.decode().strip()}")
        cmd = ["unshare", "-Ur", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("knob", "value", "sysctl"), [
    ("max_inotify_watches", 3, "sudo sysctl fs.inotify.max_user_watches="),
    ("max_inotify_instances", 0, "sudo sysctl fs.inotify.max_user_instances="),
    ("nofile", 0, "ulimit -n "),
])
def test_a_limit_reached_at_start_is_one_line_and_rescans_keep_the_index_current(tmp_path, knob, value, sysctl):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    got = run_limited(repo, knob, value)
    assert len(got["warnings"]) == 1 and "\n" not in got["warnings"][0], got
    assert sysctl in got["warnings"][0] and "rescanning for changes every" in got["warnings"][0], got
    # Nothing of the refused observer is left: no inotify instance, no reader thread; only the watcher's own.
    assert got["held"] == {"inotify": 0, "threads": 1}, got
    assert got["found"], got
    assert got["after_stop"] == 0 and got["threads_after_stop"] == 0, got


def test_a_folder_made_past_the_watch_limit_is_said_once_and_found_by_rescans(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    # Exactly the watches the start needs (the folders walked and the index folder): web/later gets none.
    got = run_limited(repo, "max_inotify_watches", len(folders_walked(repo)) + 1)
    assert len(got["warnings"]) == 1 and "fs.inotify.max_user_watches" in got["warnings"][0], got
    assert got["held"]["inotify"] == 1, got  # watching what it could
    assert got["found"], got
    assert got["after_stop"] == 0, got


def test_needle_watch_past_the_watch_limit_says_so_in_one_line_and_keeps_the_index_current(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-Ur", "sh", "-c", "echo 1 > /proc/sys/user/max_inotify_watches"]).returncode != 0:
        pytest.skip("no user namespace with its own inotify limits here")
    needle = Path(sys.executable).with_name("needle")
    proc = subprocess.Popen(["unshare", "-Ur", "sh", "-c", 'echo 3 > /proc/sys/user/max_inotify_watches && exec "$0" '
                             'watch "$1"', str(needle), str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = []
        while not any(line.startswith("watching ") for line in lines):
            line = proc.stderr.readline()
            assert line, (lines, proc.wait(30))
            lines.append(line)
        said = [line for line in lines if "max_user_watches" in line]
        assert len(said) == 1 and said[0].startswith("needle: cannot watch "), lines
        assert "sudo sysctl fs.inotify.max_user_watches=" in said[0], lines
        (repo / "web/zebra.py").write_text(FUNCTION)
        assert "full rescan: 1 file changed" in proc.stdout.readline()  # within LIMITED_RESCAN_S
    finally:
        proc.terminate()
        proc.wait(30)


MOUNTINFO = b"""22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
30 22 0:50 / /home rw,relatime shared:5 - nfs4 srv:/home rw,vers=4.2
31 30 8:1 / /home/me/local\\040disk rw - ext4 /dev/sdb1 rw
40 22 0:60 / /mnt/c rw,noatime - 9p drvfs rw,dirsync,aname=drvfs;path=C:\\;uid=1000
41 22 0:61 / /mnt/c rw,noatime - tmpfs tmpfs rw
42 22 0:62 / /mnt/e rw,noatime - 9p drvfs rw,dirsync,aname=drvfs;path=E:\\;uid=1000
"""


@pytest.mark.parametrize(("path", "fstype"), [
    ("/home/me/src/repo", "nfs4"),  # a home folder on a file server
    ("/home/me/local disk/repo", None),  # a local disk mounted inside it (the kernel writes its space as \040)
    ("/mnt/e/Users/me/repo", "9p"),  # a Windows drive under WSL 2
    ("/mnt/c/Users/me/repo", None),  # the last mount on a point is the one seen there
    ("/mnt/cc/repo", None),
    ("/srv/repo", None),
])
def test_the_file_system_a_root_lies_on_is_read_from_mountinfo(path, fstype):
    from codeneedle.indexer.observe import remote_fs

    assert remote_fs(path, MOUNTINFO) == fstype


def test_a_root_on_a_shared_file_system_is_rescanned_for_edits_no_event_told_of(tmp_path, monkeypatch):
    """On NFS, SMB, WSL 2's /mnt/c (9p) or a VM's shared folder, an edit made from the other side (another machine,
    Windows, the host) raises no inotify event here: `needle watch` took it in at the next minute's reconcile, and
    never with reconciling off, unsaid. On such a file system the watcher says so once and rescans every
    LIMITED_RESCAN_S, as past the inotify limits. (The mount is read from a mountinfo naming the repository an NFS
    mount: none can be made here without root.)"""
    from codeneedle.indexer import observe
    from codeneedle.indexer import watcher as W

    repo = copy_fixture("minirepo", tmp_path / "repo")
    mountinfo = MOUNTINFO + b"50 22 0:70 / " + os.fsencode(repo.resolve()) + b" rw - nfs4 srv:/export rw\n"
    real = observe.remote_fs
    monkeypatch.setattr(observe, "remote_fs", lambda path: real(path, mountinfo))
    monkeypatch.setattr(W, "LIMITED_RESCAN_S", 0.5)  # the real interval is 10 s
    warnings: list[str] = []
    with Index.open(repo) as index:
        index.update()
        watcher = W.Watcher(index, debounce=0.05, on_warning=warnings.append, reconcile_every=None)
        watcher.start()
        try:
            observe.discard(watcher._observer)  # the other side's edit: no event reaches this machine
            (repo / "web/zebra.py").write_text(FUNCTION)
            deadline = time.monotonic() + 60
            while index.reader().file_record("web/zebra.py") is None:
                assert time.monotonic() < deadline, "never rescanned"
                time.sleep(0.1)
        finally:
            watcher.stop()
    assert len(warnings) == 1 and "is on nfs4" in warnings[0] and "every 0.5 s" in warnings[0], warnings
