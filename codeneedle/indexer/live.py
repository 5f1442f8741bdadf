"""A live index: opened and built in the background, then kept current by the watcher; read-only while another
process is the writer.

The one implementation of "keep an index alive" behind every long-running door: the language server's workspace
folders, the MCP server's repositories and `needle watch`. A ``LiveIndex`` owns a worker thread that opens the index,
runs full updates on request (progress, cancellation) and then hands incremental work to ``watcher.Watcher``.
Searches never wait for any of this: they read whatever is committed. When another process holds the writer lock,
the live index serves reads, says so in its status and retries the lock every ``lock_retry_s``. Doors hear what
happens through ``LiveEvents`` and read ``status()``: one frozen ``LiveStatus`` with one ``to_dict()``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from codeneedle.errors import (
    IndexLockedError,
    IndexLostError,
    IndexReadOnlyError,
    IndexWriteError,
    ModelNotFoundError,
    NeedleError,
)
from codeneedle.indexer.settings import IndexSettings

if TYPE_CHECKING:  # imported where used: the language server's start-up never loads numpy or SQLite
    from codeneedle.indexer.index import Index, IndexStatus
    from codeneedle.indexer.types import Progress, SearchResult, UpdateStats
    from codeneedle.indexer.watcher import BatchReport, Watcher

log = logging.getLogger("codeneedle.live")

# A read-only live index asks for the lock this often: cheap (one non-blocking flock), and an editor that opened
# while `needle index` ran takes over within half a minute of it finishing.
LOCK_RETRY_S = 30.0
STOP_TIMEOUT_S = 10.0
OPEN_WAIT_S = 5.0  # a search sent while the index opens waits this long (opening takes well under a second)


class LiveEvents:
    """What a door hears from a live index, always from its worker thread. Override what you need."""

    def message(self, level: int, text: str) -> None:
        """Something people should see (``logging`` levels: INFO read-only, WARNING lost index, ERROR failure)."""
        log.log(level, "%s", text)

    def build_started(self, cancel: Callable[[], None]) -> None:
        """A full update begins; ``cancel()`` stops it (what is committed stays searchable)."""

    def progress(self, progress: Progress) -> None:
        """A snapshot of the running full update."""

    def build_ended(self, summary: str) -> None:
        """The full update ended: a one-line summary, or why it failed or stopped."""

    def batch(self, report: BatchReport) -> None:
        """The watcher absorbed a batch of changes."""
        log.info("%s", report.line())

    def batch_failed(self, exc: Exception) -> None:
        log.warning("update failed: %s", exc)


@dataclass(frozen=True)
class LiveStatus:
    """What a live index is doing, at one moment.

    ``state``: starting (not open yet) | indexing (a full update runs here, or another process is writing) | ready
    | partial (an update stopped before every chunk had its vector) | cancelled | error.
    ``partial``: results may cover only part of the tree. ``index``: the index's own figures (None before it is
    open, or when not asked for).
    """

    root: str
    index_dir: str
    state: str
    partial: bool
    read_only: bool = False
    watching: bool = False
    message: str | None = None
    progress: Progress | None = None
    index: IndexStatus | None = None

    def to_dict(self, *, camel: bool = False) -> dict[str, Any]:
        """Plain JSON: snake_case keys (MCP, CLI), or camelCase (``camel``) for editors."""
        out: dict[str, Any] = {"root": self.root, "index_dir": self.index_dir, "state": self.state,
                               "partial": self.partial, "read_only": self.read_only, "watching": self.watching}
        st = self.index
        if st is not None:
            out.update(index_dir=st.index_dir, model=st.model, files=st.files, chunks=st.chunks,
                       last_update=st.last_update, skipped=st.skipped, size_bytes=st.size_bytes,
                       languages=st.languages, chunks_embedded=st.chunks_embedded, query_adapter=st.query_adapter)
        p = self.progress
        if self.state == "indexing" and p is not None:
            out["progress"] = {"phase": p.phase, "files_done": p.files_done, "files_total": p.files_total,
                               "chunks_embedded": p.chunks_embedded, "chunks_to_embed": p.chunks_to_embed,
                               "chunks_per_second": round(p.rate, 1),
                               "eta_seconds": None if p.eta_s is None else round(p.eta_s)}
        if self.message:
            out["message"] = self.message
        return _camel_keys(out) if camel else out


class LiveIndex:
    """One repository's index, kept alive by a worker thread; every public method is thread-safe.

    ``watch``: after a full update, watch the tree (watchdog) and absorb changes. ``hold_writer``: keep the
    writer lock from the first update until ``close`` (the language server, `needle watch`); without it each
    update takes and releases it (the MCP server: an editor's server may want the lock between calls).
    ``lock_retry_s``: while another process is the writer, ask for the lock this often (None: never; stay
    read-only). ``model_fallback``: an unknown model falls back to the default, the warning naming this setting
    (None: it is an error). ``debounce``: the watcher's quiet time (default ``watcher.DEFAULT_DEBOUNCE``). ``index``: an index already open (this object then owns it). ``after``: a live index over the same
    folder that is closing; this one waits for it to release the index first.
    """

    def __init__(self, root: str | Path, settings: IndexSettings | None = None, *, index: Index | None = None,
                 events: LiveEvents | None = None, watch: bool = True, hold_writer: bool = True,
                 lock_retry_s: float | None = LOCK_RETRY_S, debounce: float | None = None,
                 warm_up: bool = False, model_fallback: str | None = None,
                 notify: Callable[[str], None] | None = None, after: LiveIndex | None = None):
        self.root = Path(root)  # as the door names it (a client's URIs are built from it)
        self.real_root = self.root.resolve()
        self.settings = settings or (index.settings if index is not None else IndexSettings())
        self.index = index
        if index is not None:
            index.on_lost = self._said_lost
        self.events = events or LiveEvents()
        self.watch, self.hold_writer, self.lock_retry_s = watch, hold_writer, lock_retry_s
        self.debounce, self.warm_up, self.model_fallback = debounce, warm_up, model_fallback
        self.notify = notify or (lambda msg: log.warning("%s: %s", self.root, msg))
        self.last_stats: UpdateStats | None = None
        self._after = after
        self._state = "starting" if index is None else "ready"  # starting | ready | cancelled | error
        self._building = False
        self._read_only = False
        self._message: str | None = None
        self._write_failed = False  # the last full update failed to write: the watcher's next batch retries it
        self._progress: Progress | None = None
        self._watcher: Watcher | None = None
        self._warned: set[str] = set()
        self._pending: dict[str, None] = {}
        self._session = contextlib.ExitStack()  # the writer lock, while held for the whole session
        self._holding = False
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._requested = self._finished = 0  # full updates asked for / served (refresh waits on these)
        self._jobs: queue.Queue[str | None] = queue.Queue()
        self._cancel = threading.Event()
        self._closed = threading.Event()
        self._done = threading.Event()
        self._opened = threading.Event()  # the index is open, or will never be (failed, closed)
        if index is not None:
            self._opened.set()
        self._thread = threading.Thread(target=self._run, name=f"needle-live-{self.root.name}", daemon=True)

    # -- control (any thread) ------------------------------------------------------------------------
    def start(self) -> LiveIndex:
        """Start the worker (opening the index if it was not given). Returns self."""
        self._thread.start()
        return self

    def refresh(self, wait: float | None = 0.0) -> bool:
        """Queue a full update (walk + diff + embed what changed); wait up to ``wait`` seconds (None: until done).

        An update already running may have walked the tree before this call: another one runs after it (several
        requests queued meanwhile share it). True when the update asked for here has finished.
        """
        with self._cond:
            self._requested += 1
            ticket = self._requested
        self._jobs.put("build")
        deadline = None if wait is None else time.monotonic() + wait
        with self._cond:
            while self._finished < ticket:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def cancel(self) -> None:
        """Stop the running full update (what it committed stays searchable)."""
        self._cancel.set()

    def close(self) -> None:
        """Stop building and watching and release the index (returns at once; the worker finishes it)."""
        self._closed.set()
        self._cancel.set()
        self._opened.set()
        self._jobs.put(None)

    def wait_closed(self, timeout: float | None = STOP_TIMEOUT_S) -> bool:
        return self._done.wait(timeout) if self._thread.is_alive() else True

    def submit(self, paths: Iterable[str | Path]) -> None:
        """Paths (absolute, or relative to the root) known to have changed: re-checked by the watcher, or by a
        small update here when watching is unavailable."""
        rels = [r for r in (self.relative(Path(p) if Path(p).is_absolute() else self.root / p) for p in paths) if r]
        if not rels:
            return
        with self._lock:
            watcher = self._watcher
            if watcher is None:
                self._pending.update(dict.fromkeys(rels))
                if self.index is not None and self._state in ("ready", "cancelled") and not self._read_only:
                    self._jobs.put("paths")
                return
        watcher.submit(rels)

    # -- paths -----------------------------------------------------------------------------------------
    def relative(self, path: Path) -> str | None:
        """Root-relative POSIX path of ``path`` ("" for the root) if it lies under the root, else None."""
        for root in (self.root, self.real_root):
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            if ".." not in rel.parts:
                return rel.as_posix() if rel.parts else ""
        try:
            rel = path.resolve().relative_to(self.real_root)
        except (ValueError, OSError, RuntimeError):
            return None
        return rel.as_posix() if rel.parts else ""

    def contains(self, path: Path) -> bool:
        """Whether ``path``, symlinks resolved, lies under the root."""
        try:
            path.resolve().relative_to(self.real_root)
        except (ValueError, OSError, RuntimeError):
            return False
        return True

    # -- reads (any thread) ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, lang: Any = None, glob: str | None = None,
               exclude: str | list[str] | None = None, *, rerank: bool | None = None,
               kind: str | list[str] | None = None, within: str | list[str] | None = None) -> list[SearchResult]:
        """``Index.search`` over what is committed ([] when the index cannot open); a lost index is rebuilt. A search
        sent while the index is opening (an editor's first, right after it started us) waits for it, a little."""
        index = self._open_index()
        if index is None and self._state == "error" and not self._closed.is_set():
            # Not [] as for an index still opening: an empty answer would read as "nothing matches".
            raise NeedleError(self._message or f"the index of {self.root} cannot open")
        if index is None or self._closed.is_set():
            return []
        try:
            return index.search(query, k=k, lang=lang, glob=glob, exclude=exclude, rerank=rerank, kind=kind,
                                within=within)
        except IndexLostError as exc:
            self._lost(str(exc))
            raise

    def similar(self, path: str, line: int, k: int = 10, text: str | None = None, cell: int = 0) -> list[SearchResult]:
        """``Index.similar``; ``text``: the file's (or notebook cell ``cell``'s) unsaved contents."""
        index = self._open_index()
        if index is None or self._closed.is_set():
            raise NeedleError(f"the index of {self.root} is not open yet; try again in a moment")
        return index.similar(path, line, k=k, text=text, cell=cell)

    def _open_index(self) -> Index | None:
        # Not while the index waits for its predecessor to close (a settings change): that can take seconds.
        if self.index is None and not self._closed.is_set() and self._after is None:
            self._opened.wait(OPEN_WAIT_S)
        return self.index

    def partial(self) -> bool:
        """Whether results cover only part of the tree (cheap: one meta read once the index is complete)."""
        from codeneedle.indexer.progress import is_partial

        index = self.index
        return (index is None or self._building or self._state in ("starting", "cancelled")
                or is_partial(index))

    def status(self, *, counts: bool = True) -> LiveStatus:
        """The live index's state; ``counts``: with the index's figures (files, chunks, size, languages)."""
        index = self.index
        figures = None
        # State before message: a build sets its message before its state (_build), so a state read here
        # comes with its message.
        building, own_state = self._building, self._state
        # A full update asked for (refresh) that the worker has not taken up yet is indexing too: a new index
        # would otherwise read as ready, and empty, until the worker starts it.
        with self._cond:
            pending = self._requested > self._finished
        message = self._message
        done = None
        if index is not None and not self._closed.is_set():
            reason = index.lost()
            if reason is not None:
                self._lost(f"{reason}; it is being rebuilt")
                message = self._message
            try:
                done = index.completeness()
                figures = index.status() if counts else None
            except Exception as exc:  # noqa: BLE001 - status must always answer
                message = f"cannot read index status: {exc}"
        state = "indexing" if building or pending else own_state
        if state == "ready" and done is not None:
            state = done.state  # ready | indexing (another process writes) | partial
        partial = (index is None or building or pending or own_state in ("starting", "cancelled")
                   or (done.partial if done is not None else True))
        return LiveStatus(
            root=str(self.root), index_dir=str(self.settings.index_dir_for(self.real_root)), state=state,
            partial=partial, read_only=self._read_only, watching=self._watcher is not None, message=message,
            progress=self._progress if building else None, index=figures)

    # -- worker thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self._after is not None:
                self._after.wait_closed(STOP_TIMEOUT_S * 3)
                self._after = None
            if self.index is not None or self._open():
                self._loop()
        except Exception as exc:  # noqa: BLE001 - one index failing must not take its door down
            log.exception("live index of %s failed", self.root)
            self._fail(f"indexing {self.root} failed: {exc}")
        finally:
            self._opened.set()
            self._shutdown()
            with self._cond:
                self._finished = sys.maxsize  # nobody waits on a stopped index
                self._cond.notify_all()
            self._done.set()

    def _loop(self) -> None:
        while not self._closed.is_set():
            retry = self.lock_retry_s if self._read_only and self.hold_writer else None
            try:
                job = self._jobs.get(timeout=retry)
            except queue.Empty:
                self._build(quiet=True)  # read-only: see whether the other writer has gone
                continue
            if job is None or self._closed.is_set():
                return
            if job == "build":
                while self._jobs.qsize() and self._jobs.queue[0] == "build":
                    self._jobs.get_nowait()  # several requests queued: one full update serves all
                with self._cond:
                    served = self._requested  # taken before this update walks the tree
                try:
                    self._build()
                finally:
                    with self._cond:
                        self._finished = max(self._finished, served)
                        self._cond.notify_all()
            elif job == "paths":
                self._update_pending()

    def _open(self) -> bool:
        from codeneedle.indexer.index import Index

        try:
            try:
                self.index = Index.open(self.root, self.settings, notify=self.notify)
            except ModelNotFoundError as exc:
                if not self.model_fallback:
                    raise
                self.events.message(logging.WARNING, f"{self.model_fallback}: {exc}; using the default model")
                self.settings = attrs.evolve(self.settings, model=None)
                self.index = Index.open(self.root, self.settings, notify=self.notify)
        except NeedleError as exc:
            self._fail(f"cannot index {self.root}: {exc}")
            return False
        self.index.on_lost = self._said_lost
        self._state = "ready"
        self._opened.set()
        return True

    def _take_writer(self) -> None:
        """``hold_writer``: be the writer from now until close (IndexLockedError while another process is)."""
        if self.hold_writer and not self._holding and self.index is not None:
            self._session.enter_context(self.index.writing())
            self._holding = True

    def _build(self, *, quiet: bool = False) -> None:
        index = self.index
        if index is None:
            return
        if quiet:
            try:
                self._take_writer()
            except IndexLockedError:
                return
            log.info("%s: the other writer has gone; updating and watching from here", self.root)
        self._stop_watcher()
        self._cancel = cancel = threading.Event()
        if self._closed.is_set():
            return
        self._progress, self._building = None, True
        self.events.build_started(cancel.set)
        started = time.monotonic()
        try:
            self._take_writer()
            index.hold_backlog = False  # a full update asked for: it takes up whatever a cancel left
            stats = index.update(progress=self._on_progress, cancel=cancel)
        except IndexLockedError as exc:
            self._building = False
            self.events.build_ended("the index folder is read-only; serving reads" if isinstance(exc, IndexReadOnlyError)
                                    else "the index is in use by another process; serving reads")
            self._set_read_only(str(exc))
            self._warm()
            return
        except Exception as exc:  # noqa: BLE001 - the live index outlives one failed update (a refresh retries)
            if not isinstance(exc, NeedleError):
                log.exception("%s: update failed", self.root)
            self._building = False
            self.events.build_ended(f"failed: {exc}")
            self._fail(f"indexing {self.root} failed: {exc}")
            if isinstance(exc, IndexWriteError):
                # A full disk (or `ulimit -f`): what was committed answers, and watching goes on, so the next edit
                # or the periodic rescan finishes the update once it can be written, without a restart.
                self._write_failed = True
                self._start_watcher(failed=exc)
            return
        # A cancel stops the work, not just its progress: from now on the watcher embeds what changes, not the
        # backlog (until a reindex).
        index.hold_backlog = stats.cancelled
        if stats.cancelled:
            index.mark_held()
        # The message before the state: a status read in between must not show "cancelled" without saying why.
        self._read_only, self.last_stats, self._write_failed = False, stats, False
        self._message = ("indexing was cancelled: results cover only what was indexed; reindex to finish"
                         if stats.cancelled else None)
        self._state = "cancelled" if stats.cancelled else "ready"
        self._building = False
        if self._closed.is_set():
            self.events.build_ended("stopped")
            return
        summary = (f"{stats.files_changed} files indexed, {stats.embedded_text()} "
                   f"in {time.monotonic() - started:.1f}s" + (" (cancelled)" if stats.cancelled else ""))
        self.events.build_ended(summary)
        log.info("%s: %s", self.root, summary)
        self._start_watcher()
        self._warm()

    def _on_progress(self, progress: Progress) -> None:
        self._progress = progress
        self.events.progress(progress)

    def _warm(self) -> None:
        """``warm_up``: load the encoder now (seconds) rather than in the user's first search."""
        index = self.index
        if not self.warm_up or index is None or self._closed.is_set() or index.stored_model is None:
            return
        try:
            index.encoder.encode_queries(["warm up"])
        except Exception as exc:  # noqa: BLE001 - the first search will report it
            log.warning("%s: loading the encoder failed: %s", self.root, exc)

    def _update_pending(self) -> None:
        """Changes reported while the watcher could not run: update just those paths here."""
        with self._lock:
            paths, self._pending = list(self._pending), {}
        if paths and self.index is not None and not self._read_only:
            try:
                self.index.update(paths=paths)
            except NeedleError as exc:
                log.warning("%s: update failed: %s", self.root, exc)

    def _start_watcher(self, failed: Exception | None = None) -> None:
        """Watch the tree; ``failed``: the error the full update just ended with (said already), to retry."""
        from codeneedle.indexer.watcher import DEFAULT_DEBOUNCE, Watcher

        index = self.index
        if not self.watch or index is None or self._closed.is_set():
            return
        watcher = Watcher(index, debounce=DEFAULT_DEBOUNCE if self.debounce is None else self.debounce,
                          on_batch=self._absorbed, on_error=self.events.batch_failed, on_warning=self._warn_once)
        if failed is not None:
            watcher.note_failure(failed)
        try:
            watcher.start()
        except Exception as exc:  # noqa: BLE001 - e.g. the inotify watch limit: reported changes still work
            log.warning("%s: file watching unavailable (%s); relying on reported changes", self.root, exc)
            self._update_pending()
            return
        with self._lock:
            self._watcher = watcher
            pending, self._pending = list(self._pending), {}
        # Files changed between the update's walk and the observer's start raised no event: a stat-only rescan
        # finds them (and re-embeds nothing else). After a failed update it waits for the next event or the
        # periodic rescan: at once, it would fail again on the disk that was just full.
        if failed is None:
            watcher.rescan()
        if pending:
            watcher.submit(pending)

    def _absorbed(self, report: BatchReport) -> None:
        """The watcher took a batch in; after a full update the disk refused, that is the index working again."""
        if self._write_failed:
            self._write_failed = False
            self._message, self._state = None, "ready"
            self.events.message(logging.INFO, f"indexing {self.root} goes on: the index can be written again")
        self.events.batch(report)

    def _warn_once(self, text: str) -> None:
        """A warning people should see once, not at every restart of the watcher (each full update restarts it)."""
        if text not in self._warned:
            self._warned.add(text)
            self.events.message(logging.WARNING, text)

    def _stop_watcher(self) -> None:
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _said_lost(self, reason: str) -> None:
        """An update found the index lost and is already rebuilding it: people hear it as from a search."""
        # INFO: people hear it through events.message; a warning record would print it twice in `needle watch`
        # (Python's last-resort handler) and is in the server's log at INFO anyway.
        log.info("%s: %s; it is being rebuilt", self.root, reason)
        self._lost(f"{reason}; it is being rebuilt", rebuild=False)

    def _lost(self, message: str, *, rebuild: bool = True) -> None:
        """The index was deleted, replaced or truncated under us: say so (once) and rebuild it."""
        if self._message != message:
            self._message = message
            self.events.message(logging.WARNING, message)
            if rebuild:
                self.refresh()

    def _set_read_only(self, message: str) -> None:
        first = not self._read_only
        # The state last: status() reads without the lock, and whoever sees "ready" must see why it is read-only.
        self._message, self._read_only = message, True
        self._state = "ready"
        if first:
            self.events.message(logging.INFO, message)

    def _fail(self, message: str) -> None:
        self._message = message
        self._state = "error"
        self.events.message(logging.ERROR, message)

    def _shutdown(self) -> None:
        self._stop_watcher()
        self._session.close()
        self._holding = False
        index, self.index = self.index, None
        if index is not None:
            try:
                index.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: closing the index failed: %s", self.root, exc)


class _Rooted(Protocol):
    real_root: Path

    def relative(self, path: Path) -> str | None: ...


R = TypeVar("R", bound=_Rooted)


def innermost(candidates: Iterable[R], path: Path) -> R | None:
    """The candidate (a live index, or a door's object around one) whose root holds ``path`` and lies deepest:
    nested roots are allowed."""
    best: R | None = None
    for c in candidates:
        if c.relative(path) is not None and (best is None or len(c.real_root.parts) > len(best.real_root.parts)):
            best = c
    return best


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camel_keys(v) if k != "skipped" and k != "languages" else v for k, v in value.items()}
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
