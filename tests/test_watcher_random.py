"""Random sequences of file-system operations under a real watcher end in the same index a fresh build gives.

Each seed builds a small tree, starts the library watcher (real watchdog, real encoder, real SQLite) and fires
random creates, edits, renames, folder moves (inside the tree, out of it, back in), deletions and
folder<->file replacements at it, some back to back and some spaced out. Once the events have settled, the
watched index, after one reconcile rescan (the periodic one, triggered by hand), must hold exactly the files,
contents and chunks of a fresh index of the same tree. The timer is off during the operations, so the events
alone do the work; a seed where they were not enough raises a warning naming the paths.

File contents come from a small pool of functions so that embeddings are cached: a seed costs about a second.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import warnings
from pathlib import Path

import pytest

from codeneedle.indexer.index import Index
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.watcher import Watcher

pytestmark = pytest.mark.slow

# 10 seeds in CI (about 25 s; the suite keeps under 10 minutes); NEEDLE_WATCH_SEEDS=200 for a longer hunt.
SEEDS = range(int(os.environ.get("NEEDLE_WATCH_SEEDS", "10")))
OPERATIONS = 40
POOL = [f"def step_{i}(value):\n    return value * {i} + {i * 7}\n" for i in range(6)]
NAMES = ["a", "b", "c", "d"]


def snapshot(index: Index) -> dict[str, tuple[str, list[tuple[str, int, int, str]]]]:
    """path -> (content hash, its chunks as (name, start line, end line, kind))."""
    store = index.reader()
    return {
        path: (rec.hash, sorted((c.name, c.start_line, c.end_line, c.kind) for c in store.chunks_in_file(path)))
        for path, rec in store.file_records().items()
    }


class Tree:
    """The random operations, applied to real files under ``root`` (and a folder outside it)."""

    def __init__(self, root: Path, outside: Path, rng: random.Random) -> None:
        self.root, self.outside, self.rng = root, outside, rng
        self.parked = 0

    def entries(self, want_dir: bool | None = None) -> list[Path]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            here = Path(dirpath)
            if want_dir in (None, True):
                found += [here / d for d in dirnames]
            if want_dir in (None, False):
                found += [here / f for f in filenames]
        return sorted(found)

    def new_path(self, suffix: str = ".py") -> Path:
        folders = [self.root, *self.entries(want_dir=True)]
        return self.rng.choice(folders) / (self.rng.choice(NAMES) + suffix)

    def apply(self) -> None:
        rng = self.rng
        self.apply_one(rng.choice(["create", "create", "edit", "edit", "rename", "move_folder", "delete",
                                   "folder_to_file", "file_to_folder", "folder_out", "folder_in", "mkdir"]))

    def apply_one(self, op: str) -> None:
        try:
            getattr(self, op)()
        except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, OSError):
            pass  # the random choice collided with what is there: that is a no-op, like a failed command

    def create(self) -> None:
        path = self.new_path()
        if not path.exists():
            path.write_text(self.rng.choice(POOL))

    def mkdir(self) -> None:
        path = self.new_path(suffix="")
        path.mkdir()
        (path / "m.py").write_text(self.rng.choice(POOL))

    def edit(self) -> None:
        files = self.entries(want_dir=False)
        if files:
            self.rng.choice(files).write_text(self.rng.choice(POOL))

    def rename(self) -> None:
        entries = self.entries()
        if entries:
            src = self.rng.choice(entries)
            dst = self.new_path(suffix="" if src.is_dir() else ".py")
            if not dst.exists() and not str(dst).startswith(str(src) + "/"):
                os.rename(src, dst)

    move_folder = rename

    def delete(self) -> None:
        entries = self.entries()
        if entries:
            victim = self.rng.choice(entries)
            shutil.rmtree(victim) if victim.is_dir() else victim.unlink()

    def folder_to_file(self) -> None:
        folders = self.entries(want_dir=True)
        if folders:
            folder = self.rng.choice(folders)
            self.parked += 1
            os.rename(folder, self.outside / f"p{self.parked}")  # moved out of the tree...
            folder.write_text(self.rng.choice(POOL))  # ...and a file takes its name

    def file_to_folder(self) -> None:
        files = self.entries(want_dir=False)
        if files:
            path = self.rng.choice(files)
            path.unlink()
            path.mkdir()
            (path / "n.py").write_text(self.rng.choice(POOL))

    def folder_out(self) -> None:
        folders = self.entries(want_dir=True)
        if folders:
            self.parked += 1
            os.rename(self.rng.choice(folders), self.outside / f"p{self.parked}")

    def folder_in(self) -> None:
        parked = sorted(self.outside.iterdir())
        if parked:
            dst = self.new_path(suffix="")
            if not dst.exists():
                os.rename(self.rng.choice(parked), dst)


def settle(watcher: Watcher) -> None:
    # inotify delivers within milliseconds; the debounce is 0.05 s. Two quiet rounds: nothing is still in flight.
    for _ in range(2):
        time.sleep(0.3)
        assert watcher.wait_idle(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_end_in_the_same_index_as_a_fresh_build(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root, outside = tmp_path / "repo", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    tree = Tree(root, outside, rng)
    for _ in range(8):
        tree.apply_one(rng.choice(["create", "create", "mkdir"]))
    errors: list[Exception] = []
    with Index.open(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.05, reconcile_every=None, on_error=errors.append)
        watcher.start()
        try:
            for _ in range(OPERATIONS):
                tree.apply()
                time.sleep(rng.choice([0, 0, 0, 0.003, 0.03, 0.1]))
            settle(watcher)
            from_events = snapshot(index)
            watcher.rescan()  # what the periodic reconcile does once a minute
            settle(watcher)
        finally:
            watcher.stop()
        reconciled = snapshot(index)
    assert not errors
    with Index.open(root, IndexSettings(index_dir=tmp_path / "fresh")) as fresh:
        fresh.update()
        expected = snapshot(fresh)
    assert reconciled == expected
    if from_events != expected:
        # watchdog can lose an event (seed 62 of 0-79: a create right after a folder was moved); only the
        # reconcile catches that. Say so, without failing: it is watchdog's, and the reconcile is the remedy.
        warnings.warn(f"seed {seed}: events alone missed {sorted(set(expected) ^ set(from_events))}", stacklevel=1)
