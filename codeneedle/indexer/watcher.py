"""Live sync: watchdog events -> debounced, batched calls of the same incremental update the CLI runs."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codeneedle.indexer import observe
from codeneedle.indexer.ignore import GIT_EXCLUDE_PATH, IgnoreRules
from codeneedle.indexer.pipeline import UpdateStats
from codeneedle.indexer.root import DB_NAME
from codeneedle.indexer.walker import MISSING

if TYPE_CHECKING:
    from codeneedle.indexer.index import Index

log = logging.getLogger("codeneedle.watcher")

IGNORE_FILES = (".gitignore", ".needleignore")
# Past this many paths in one batch (a checkout, a branch switch) a stat-only full walk is cheaper and simpler.
FULL_SCAN_THRESHOLD = 2000
# Editors' saves (write temp + rename, or backup + write) finish within milliseconds; 0.1 s of quiet catches them
# while keeping an edit searchable in well under 300 ms.
DEFAULT_DEBOUNCE = 0.1
# watchdog drops events in some sequences (a folder moved out and a file created under its name, then renamed and
# replaced by a folder): a periodic stat-only rescan reconciles the index with the tree. Nothing changed costs a
# walk plus one stat per file: 0.62 s on 10,000 files on the shared 2-core machine at load average 21
# (`bench/reliability.py --only hostile`), so once a minute is ~1 % of one core.
DEFAULT_RECONCILE_S = 60.0
# Past the kernel's inotify limits no folder (or not every one) is watched: a stat-only rescan this often finds the
# changes instead, or LIMITED_RESCAN_FACTOR times the last rescan's duration where that is longer, so a tree whose
# rescan takes seconds costs at most 5 % of a core.
LIMITED_RESCAN_S = 10.0
LIMITED_RESCAN_FACTOR = 20


@dataclass(frozen=True)
class BatchReport:
    """One absorbed batch of changes."""

    paths: int
    full_scan: bool
    stats: UpdateStats

    def line(self) -> str:
        s = self.stats
        what = "full rescan" if self.full_scan else _count(self.paths, "path")
        # Why a file that is still there left (grown past the size cap, turned binary or unreadable, ignored):
        # `needle status` counts it only after the next full rescan. A full rescan's count is every skipped file.
        why = "" if self.full_scan else ", ".join(f"{n} {r}" for r, n in sorted(s.skipped.items()) if r != MISSING)
        return (f"{what}: {_count(s.files_changed, 'file')} changed, {s.files_removed} removed, "
                f"{s.embedded_text('re-embedded')} in {s.seconds * 1000:.0f} ms" + (f" (skipped: {why})" if why else ""))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class Watcher:
    """Watches ``index.root`` and keeps ``index`` current. Owns the index's writer lock while running."""

    def __init__(self, index: Index, *, debounce: float = DEFAULT_DEBOUNCE, max_delay: float = 2.0,
                 on_batch: Callable[[BatchReport], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 reconcile_every: float | None = DEFAULT_RECONCILE_S,
                 on_warning: Callable[[str], None] | None = None):
        self.index = index
        self.reconcile_every = reconcile_every
        self.on_warning = on_warning or (lambda text: log.warning("%s", text))
        # Set when a kernel limit left folders unwatched: rescans every LIMITED_RESCAN_S find their changes.
        self.limited: OSError | None = None
        # The root's file system when other machines write to it (NFS, SMB, WSL 2's 9p, a VM's shared folder):
        # their edits raise no inotify event, and the same rescans find them.
        self.remote: str | None = None
        self._last_full_s = 0.0
        self._rules = self._load_rules()
        self._next_reconcile = time.monotonic() + (reconcile_every or 0.0)
        self.debounce = debounce
        self.max_delay = max_delay
        self.on_batch = on_batch
        self.on_error = on_error or (lambda exc: log.error("update failed: %s", exc))
        self._pending: dict[str, None] = {}
        self._full = False
        self._last_event = 0.0
        self._busy = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._observer = None
        self._thread: threading.Thread | None = None
        self._writing = contextlib.ExitStack()
        self.batches = 0
        self._failing: str | None = None  # the error of the batches failing since the last one that went through
        self._rescan_next = False

    def start(self) -> None:
        """Take the writer lock, start watching, and start absorbing batches in a worker thread.

        Where the kernel's inotify limits leave nothing to watch with, the changes are found by stat-only rescans
        every LIMITED_RESCAN_S, and ``on_warning`` hears one line naming the limit and how to raise it. So are
        those made from elsewhere to a root on a shared file system (``observe.REMOTE_FS``), said in one line too.
        """
        self._writing.enter_context(self.index.writing())  # held until stop(); IndexLockedError if taken
        try:
            self._observer = self._watch()
        except BaseException:
            self._writing.close()
            raise
        if fstype := observe.remote_fs(self.index.root):
            with self._cond:
                self.remote = fstype
                self._next_reconcile = min(self._next_reconcile, time.monotonic() + LIMITED_RESCAN_S)
            self.on_warning(observe.remote_message(fstype, self.index.root, LIMITED_RESCAN_S))
        self._thread = threading.Thread(target=self._run, name="needle-watcher", daemon=True)
        self._thread.start()

    def _watch(self):
        """A started observer on the root, or None where an inotify limit refused it (then nothing is left of it:
        a failed start used to keep its inotify instance and reader threads until the process ended)."""
        from watchdog.observers import Observer

        observer = observe.pruned_observer(self.keeps_folder, self._limit_reached) or Observer()
        try:
            observer.schedule(_Handler(self), str(self.index.root), recursive=True)
            observer.start()
        except BaseException as exc:
            limit = isinstance(exc, OSError) and exc.errno in observe.LIMIT_ERRNOS
            # Worded first: whether the open-file table is what is full is seen before the observer's are freed.
            text = observe.limit_message(exc, self.index.root, LIMITED_RESCAN_S) if limit else ""
            observe.discard(observer)
            if not limit:
                raise
            self._limit_reached(exc, text)
            return None
        return observer

    def _limit_reached(self, exc: OSError, text: str | None = None) -> None:
        """An inotify limit left folders unwatched (all of them at start): rescan often, and say so once."""
        with self._cond:
            first, self.limited = self.limited is None, exc
            self._next_reconcile = min(self._next_reconcile, time.monotonic() + LIMITED_RESCAN_S)
            self._cond.notify_all()
        if first:
            self.on_warning(text or observe.limit_message(exc, self.index.root, LIMITED_RESCAN_S))

    def keeps_folder(self, path: bytes | str) -> bool:
        """Whether the folder at ``path`` needs a watch: the walk enters it (its files may be indexed), or it holds
        what the watcher must hear of (``.git/info/exclude``, the index folder)."""
        root, target = self.index.root, Path(os.fsdecode(path))
        if target == self.index.index_dir:
            return True
        try:
            rel = target.relative_to(root).as_posix()
        except ValueError:
            return False
        if rel in (".", ".git", ".git/info"):
            return True
        try:
            return self._rules.is_ignored(rel, True) is None
        except Exception:  # noqa: BLE001 - an odd name: watching costs one watch, missing it costs changes
            return True

    def ignores(self, path: str, is_dir: bool) -> bool:
        """Whether an event's path can change nothing in the index: it lies in an ignored folder, or it is an
        ignored folder itself (``npm install`` making ``node_modules/``, ``cargo build`` making ``target/``)."""
        rel = self._relative(path)
        if rel is None or rel == GIT_EXCLUDE_PATH:
            return False
        parent = rel.rpartition("/")[0]
        rules = self._rules
        try:
            return ((parent != "" and rules.is_ignored(parent, True) is not None)
                    or (is_dir and rules.is_ignored(rel, True) is not None))
        except Exception:  # noqa: BLE001 - the update judges it
            return False

    def _load_rules(self) -> IgnoreRules:
        # The update's own rules (pipeline.run_update), read again at every full rescan: an ignore file changed.
        return IgnoreRules(self.index.root, extra_patterns=self.index.settings.exclude)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._observer is not None:
            observe.discard(self._observer)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._writing.close()

    def submit(self, paths: Iterable[str | os.PathLike]) -> None:
        """Queue paths (absolute or root-relative) to re-check; editors' didSave lands here too."""
        rels = [r for r in (self._relative(p) for p in paths) if r is not None]
        if not rels:
            return
        with self._cond:
            self._last_event = time.monotonic()
            for rel in rels:
                if rel.rsplit("/", 1)[-1] in IGNORE_FILES or rel == GIT_EXCLUDE_PATH:
                    self._full = True  # ignore rules changed: files may enter or leave anywhere below
                else:
                    self._pending[rel] = None
            self._cond.notify_all()

    def note_failure(self, exc: Exception) -> None:
        """An update outside the watcher failed with ``exc`` (already said): the next batch rescans the tree, and
        the same error from it is not said again."""
        with self._cond:
            self._failing, self._rescan_next = str(exc), True

    def rescan(self) -> None:
        """Queue a full (stat-only) rescan."""
        with self._cond:
            self._last_event = time.monotonic()
            self._full = True
            self._cond.notify_all()

    def _relative(self, path: str | os.PathLike) -> str | None:
        root = self.index.root
        p = Path(path)
        if p.is_absolute():
            try:
                rel = p.relative_to(root)
            except ValueError:
                return None
        else:
            rel = p
        parts = rel.parts
        if not parts:
            return None
        index_dir = self.index.index_dir
        if (root / rel) == index_dir or index_dir in (root / rel).parents:
            return None
        hidden = any(part.startswith(".") for part in parts[:-1]) or (
            parts[-1].startswith(".") and parts[-1] not in IGNORE_FILES)
        if hidden and rel.as_posix() != GIT_EXCLUDE_PATH:
            # Nothing with a hidden name on its way is indexed, whatever the ignore files say: a nested repository's
            # `.git`, `.venv`, `.idea` (saved every few seconds), `.pytest_cache` would each make a batch that
            # changes nothing (and a skipped row per path). A hidden folder renamed visible is its new name's event.
            return None
        return rel.as_posix()

    def names_the_index(self, path: str) -> bool:
        """Whether ``path`` is the index folder or its database (events inside the folder are our own writes)."""
        return Path(path) in (self.index.index_dir, self.index.index_dir / DB_NAME)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                periodic = False
                while not (self._pending or self._full) and not self._stop.is_set():
                    if self._rescan_every() is None:
                        self._cond.wait()
                        continue
                    left = self._next_reconcile - time.monotonic()
                    if left <= 0:
                        self._full = periodic = True
                        break
                    self._cond.wait(left)
                if self._stop.is_set():
                    return
                first = time.monotonic()
                # Debounce: wait until no event came for `debounce` seconds (a repeat event for a queued path
                # counts too: an editor is still writing), but never longer than max_delay.
                while not self._stop.is_set():
                    now = time.monotonic()
                    left = min(self._last_event + self.debounce, first + self.max_delay) - now
                    if left <= 0:
                        break
                    self._cond.wait(left)
                paths, full = list(self._pending), self._full or len(self._pending) > FULL_SCAN_THRESHOLD
                full, self._rescan_next = full or self._rescan_next, False
                full = full or self._paths_look_stale(paths)
                self._pending, self._full, self._busy = {}, False, True
            try:
                if full:
                    # Ignore files may have changed: the events' filter and the watched folders follow them.
                    self._rules = self._load_rules()
                    if self._observer is not None:
                        observe.resync(self._observer)
                stats = self.index.update(paths=None if full else paths)
                self.batches += 1
                if full:
                    self._last_full_s = stats.seconds
                # A rescan that found nothing to do (the periodic one, or the catch-up at start) is not news.
                # Vectors embedded by a rescan (what a failed update left) are news too: a door waits for them.
                quiet = (periodic or full) and not (stats.files_changed or stats.files_removed
                                                    or stats.chunks_embedded)
                if self.on_batch and not quiet:
                    self.on_batch(BatchReport(len(paths), full, stats))
                self._failing = None
            except Exception as exc:  # noqa: BLE001 - a failed batch must not kill the watcher
                # Its paths are gone from the queue: the next batch (an edit, or the periodic rescan once the disk
                # has room again) walks the tree, or the files of a batch a full disk refused stayed out for good.
                self._rescan_next = True  # not now: on a full disk that would retry in a loop
                # Said once while the same error lasts: a full disk repeated it on every save and every rescan.
                if str(exc) != self._failing:
                    self._failing = str(exc)
                    self.on_error(exc)
            finally:
                with self._cond:
                    every = self._rescan_every()
                    if full and every is not None:
                        self._next_reconcile = time.monotonic() + every
                    self._busy = False
                    self._cond.notify_all()

    def _rescan_every(self) -> float | None:
        if self.limited is None and self.remote is None:
            return self.reconcile_every
        return max(LIMITED_RESCAN_S, LIMITED_RESCAN_FACTOR * self._last_full_s)

    def _paths_look_stale(self, paths: list[str]) -> bool:
        """Whether an event names a path under a folder that is not there (any more).

        After a folder is moved inside the tree, inotify keeps reporting what happens in it under its old name
        for a while; and a folder deleted with its files reports those files. Either way the event paths no
        longer say where the changes are, so the batch becomes a stat-only full rescan.
        """
        root = self.index.root
        parents = {rel.rpartition("/")[0] for rel in paths} - {""}
        return any(not (root / parent).is_dir() for parent in parents)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until queued changes are absorbed (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._full or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True


class _Handler:
    """watchdog event handler: every event contributes its path(s); the update decides what they mean."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def dispatch(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "events_lost":
            # The kernel's queue overflowed (a tool churned files while we were stopped or asleep): the events
            # left no longer say what changed. Without a rescan now, files stay missing or stale until the next
            # periodic one, up to a minute later.
            self.watcher.rescan()
            return
        if event.event_type in ("deleted", "moved") and self.watcher.names_the_index(os.fsdecode(event.src_path)):
            # The index folder or its database deleted (`rm -rf .needle`, `git clean -fdx`): the update rebuilds it
            # now. Left to the next edit, `needle status` meanwhile says there is no index, and a `needle search`
            # builds one of its own beside this writer.
            self.watcher.rescan()
            return
        if event.is_directory and event.event_type == "modified":
            return  # a folder's listing changed: the files concerned raise their own events
        paths = [event.src_path]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(dest)
        self.watcher.submit(p for p in map(os.fsdecode, paths) if not self.watcher.ignores(p, event.is_directory))

