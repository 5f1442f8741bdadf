"""Workspace folders: one Index per folder, opened and built in a background thread, then kept live.

Each folder owns a worker thread that opens the index (numpy, SQLite), runs full updates with $/progress (the
first one loads the encoder) and then hands incremental work to the library's Watcher. Searches never wait for
any of this: they read whatever is committed. When another process holds the index's writer lock (`needle
watch`, another editor), the folder serves reads, says so in its status and retries the lock now and then.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from attrs import evolve as replace  # settings are the attrs model (codeneedle.indexer.settings)
from lsprotocol import types

from codeneedle.errors import IndexLockedError, IndexLostError, ModelNotFoundError, NeedleError
from codeneedle.server.settings import NeedleSettings

if TYPE_CHECKING:
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.pipeline import Progress, UpdateStats
    from codeneedle.indexer.search import SearchResult
    from codeneedle.indexer.settings import IndexSettings
    from codeneedle.indexer.watcher import BatchReport, Watcher
    from codeneedle.server.progress import WorkDone

log = logging.getLogger("codeneedle.server")

LOCK_RETRY_S = 30.0
STOP_TIMEOUT_S = 10.0


class Host(Protocol):
    """What a folder needs from the server: messages and progress."""

    def show(self, kind: types.MessageType, message: str) -> None: ...

    def work_done(self, title: str, on_cancel: Callable[[], None]) -> WorkDone: ...


class Folder:
    """One workspace folder and its index."""

    def __init__(self, uri: str, root: Path, name: str, settings: NeedleSettings, index_settings: IndexSettings,
                 host: Host, predecessor: Folder | None = None):
        self.uri = uri
        self.root = root  # as the client names it (URIs we send back are built from it)
        self.real_root = root.resolve()
        self.name = name
        self.settings = settings
        self.index_settings = index_settings
        self.host = host
        self._predecessor = predecessor  # the folder this one replaces: it must release the index first
        self.index: Index | None = None
        self.state = "starting"  # starting | indexing | ready | cancelled | error
        self.message: str | None = None
        self.read_only = False
        self.progress: Progress | None = None
        self.last_stats: UpdateStats | None = None
        self._watcher: Watcher | None = None
        self._pending: dict[str, None] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue[str | None] = queue.Queue()
        self._cancel = threading.Event()
        self._closed = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"needle-folder-{name}", daemon=True)

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> None:
        self._jobs.put("build")
        self._thread.start()

    def reindex(self) -> None:
        """Queue a full update (walk + diff + embed what changed), with progress."""
        self._jobs.put("build")

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        """Stop building and watching, release the index (returns at once; the worker finishes it)."""
        self._closed.set()
        self._cancel.set()
        self._jobs.put(None)

    def wait_closed(self, timeout: float) -> bool:
        return self._done.wait(timeout) if self._thread.is_alive() else True

    def submit(self, paths: Iterable[Path]) -> None:
        """Files the editor saved or saw change: re-checked by the watcher (queued until it runs)."""
        rels = [r for r in (self.relative(p) for p in paths) if r]
        if not rels:
            return
        with self._lock:
            watcher = self._watcher
            if watcher is None:
                self._pending.update(dict.fromkeys(rels))
                if self.index is not None and self.state in ("ready", "cancelled") and not self.read_only:
                    self._jobs.put("paths")  # no watcher (it failed to start): update these paths directly
                return
        watcher.submit(rels)

    # -- paths -------------------------------------------------------------------------------------
    def relative(self, path: Path) -> str | None:
        """Root-relative POSIX path of ``path`` ("" for the root) if it lies in this folder, else None."""
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
        try:
            path.resolve().relative_to(self.real_root)
        except (ValueError, OSError, RuntimeError):
            return False
        return True

    # -- reads (any thread) ----------------------------------------------------------------------
    def search(self, query: str, k: int, lang: Any, glob: str | None,
               exclude: str | list[str] | None = None) -> list[SearchResult]:
        index = self.index
        if index is None or self._closed.is_set():
            return []
        try:
            return index.search(query, k=k, lang=lang, glob=glob, exclude=exclude)
        except IndexLostError as exc:
            self._lost(str(exc))
            raise

    def partial(self) -> bool:
        """Whether results from this folder cover only part of it (still indexing, or interrupted)."""
        from codeneedle.indexer.progress import is_partial

        index = self.index
        return index is None or self.state in ("starting", "indexing", "cancelled") or is_partial(index)

    def similar(self, path: Path, line: int, k: int) -> list[SearchResult]:
        index = self.index
        if index is None or self._closed.is_set():
            raise NeedleError(f"the index of {self.root} is not open yet; try again in a moment")
        rel = self.relative(path)
        if rel is None:
            raise NeedleError(f"{path} is outside {self.root}")
        return index.similar(rel, line, k=k)

    def status(self) -> dict[str, Any]:
        """One entry of `needle.status`'s ``folders``."""
        out: dict[str, Any] = {
            "root": str(self.root), "uri": self.uri, "name": self.name,
            "indexDir": str(self.index_settings.index_dir_for(self.real_root)),
            "model": self.settings.model, "files": 0, "chunks": 0, "state": self.state,
            "lastUpdate": None, "skipped": {}, "readOnly": self.read_only,
        }
        index = self.index
        if index is not None and not self._closed.is_set():
            reason = index.lost()
            if reason is not None:
                self._lost(f"{reason}; it is being rebuilt")
            try:
                st = index.status(self.state)
            except Exception as exc:  # noqa: BLE001 - status must always answer
                out["message"] = f"cannot read index status: {exc}"
            else:
                out.update(indexDir=st.index_dir, model=st.model, files=st.files, chunks=st.chunks,
                           lastUpdate=st.last_update, skipped=st.skipped, sizeBytes=st.size_bytes,
                           languages=st.languages, chunksEmbedded=st.chunks_embedded)
        p = self.progress
        if self.state == "indexing" and p is not None:
            out["progress"] = {"phase": p.phase, "filesDone": p.files_done, "filesTotal": p.files_total,
                               "chunksEmbedded": p.chunks_embedded, "chunksToEmbed": p.chunks_to_embed,
                               "chunksPerSecond": round(p.rate, 1),
                               "etaSeconds": None if p.eta_s is None else round(p.eta_s)}
        if self.message:
            out["message"] = self.message
        return out

    # -- worker thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self._predecessor is not None:
                self._predecessor.wait_closed(STOP_TIMEOUT_S * 3)
                self._predecessor = None
            if self._open():
                self._loop()
        except Exception as exc:  # noqa: BLE001 - a folder failing must not take the server down
            log.exception("folder %s failed", self.root)
            self._fail(f"Needle: indexing {self.root} failed: {exc}")
        finally:
            self._shutdown()
            self._done.set()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                job = self._jobs.get(timeout=LOCK_RETRY_S if self.read_only else None)
            except queue.Empty:
                self._build(quiet=True)  # read-only: see whether the other writer has gone
                continue
            if job is None or self._closed.is_set():
                return
            if job == "build":
                while self._jobs.qsize() and self._jobs.queue[0] == "build":
                    self._jobs.get_nowait()  # several reindex requests queued: one full update serves all
                self._build()
            elif job == "paths":
                self._update_pending()

    def _open(self) -> bool:
        from codeneedle.indexer.index import Index

        try:
            self.index = Index.open(self.root, self.index_settings, notify=self._notify)
        except ModelNotFoundError as exc:
            self.host.show(types.MessageType.Warning, f"Needle: needle.model: {exc}; using the default model")
            self.index_settings = replace(self.index_settings, model=None)
            self.index = Index.open(self.root, self.index_settings, notify=self._notify)
        except NeedleError as exc:
            self._fail(f"Needle: cannot index {self.root}: {exc}")
            return False
        return True

    def _build(self, *, quiet: bool = False) -> None:
        index = self.index
        if index is None:
            return
        if quiet:
            try:
                index.writer.acquire()
            except IndexLockedError:
                return
            log.info("%s: the other writer has gone; updating and watching from here", self.root)
        self._stop_watcher()
        self._cancel = threading.Event()
        cancel = self._cancel
        self.state, self.progress = "indexing", None
        work = self.host.work_done(f"Needle: indexing {self.name}", cancel.set)
        work.begin("scanning files")
        started = time.monotonic()
        try:
            stats = index.update(progress=self._progress_fn(work), cancel=cancel)
        except IndexLockedError as exc:
            work.end("the index is in use by another process; serving reads")
            self._read_only(str(exc))
            self._warm_up(index)
            return
        except NeedleError as exc:
            work.end(f"failed: {exc}")
            self._fail(f"Needle: indexing {self.root} failed: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - the folder must outlive one failed update (reindex retries)
            log.exception("%s: update failed", self.root)
            work.end(f"failed: {exc}")
            self._fail(f"Needle: indexing {self.root} failed: {exc}")
            return
        self.read_only, self.message, self.last_stats = False, None, stats
        if self._closed.is_set():
            work.end("stopped")
            return
        self.state = "cancelled" if stats.cancelled else "ready"
        if stats.cancelled:
            self.message = "indexing was cancelled: results cover only what was indexed; run needle.reindex to finish"
        summary = (f"{stats.files_changed} files indexed, {stats.chunks_embedded} chunks embedded "
                   f"in {time.monotonic() - started:.1f}s" + (" (cancelled)" if stats.cancelled else ""))
        work.end(summary)
        log.info("%s: %s", self.root, summary)
        self._start_watcher()
        self._warm_up(index)

    def _warm_up(self, index: Index) -> None:
        """Load the encoder now (seconds of torch import) rather than in the user's first search."""
        if self._closed.is_set() or index.stored_model is None:
            return
        try:
            index.encoder.encode_queries(["warm up"])
        except Exception as exc:  # noqa: BLE001 - the first search will report it
            log.warning("%s: loading the encoder failed: %s", self.root, exc)

    def _progress_fn(self, work: WorkDone) -> Callable[[Progress], None]:
        from codeneedle.indexer.progress import progress_text

        def report(p: Progress) -> None:
            self.progress = p
            if p.phase == "done":
                return
            text, pct = progress_text(p.phase, p.files_done, p.files_total, p.chunks_embedded, p.chunks_to_embed,
                                      p.rate, p.eta_s)
            work.report(text, pct, force=p.phase == "save")
        return report

    def _update_pending(self) -> None:
        """Editor notifications when the watcher could not start: update just those paths here."""
        with self._lock:
            paths, self._pending = list(self._pending), {}
        if paths and self.index is not None and not self.read_only:
            try:
                self.index.update(paths=paths)
            except NeedleError as exc:
                log.warning("%s: update failed: %s", self.root, exc)

    def _start_watcher(self) -> None:
        from codeneedle.indexer.watcher import Watcher

        index = self.index
        if index is None or self._closed.is_set():
            return
        watcher = Watcher(index, on_batch=self._on_batch,
                          on_error=lambda exc: log.warning("%s: update failed: %s", self.root, exc))
        try:
            watcher.start()
        except Exception as exc:  # noqa: BLE001 - e.g. inotify watch limit: editor notifications still work
            log.warning("%s: file watching unavailable (%s); relying on the editor's save notifications",
                        self.root, exc)
            self._update_pending()
            return
        with self._lock:
            self._watcher = watcher
            pending, self._pending = list(self._pending), {}
        # Files changed between the initial walk and the observer's start raised no event: a stat-only rescan
        # finds them (and re-embeds nothing else).
        watcher.rescan()
        if pending:
            watcher.submit(pending)

    def _stop_watcher(self) -> None:
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _on_batch(self, report: BatchReport) -> None:
        log.info("%s: %s", self.name, report.line())

    def _lost(self, message: str) -> None:
        """The index was deleted, replaced or truncated under us: say so (once) and rebuild it."""
        if self.message != message:
            self.message = message
            self.host.show(types.MessageType.Warning, f"Needle: {message}")
            self.reindex()

    def _read_only(self, message: str) -> None:
        first = not self.read_only
        self.read_only, self.state, self.message = True, "ready", message
        if first:
            self.host.show(types.MessageType.Info, f"Needle: {message}")

    def _fail(self, message: str) -> None:
        self.state, self.message = "error", message
        self.host.show(types.MessageType.Error, message)

    def _notify(self, message: str) -> None:
        log.warning("%s: %s", self.root, message)

    def _shutdown(self) -> None:
        self._stop_watcher()
        index, self.index = self.index, None
        if index is not None:
            try:
                index.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: closing the index failed: %s", self.root, exc)


class Workspaces:
    """The workspace folders the client told us about, by URI."""

    def __init__(self, host: Host):
        self.host = host
        self._folders: dict[str, Folder] = {}
        self._closing: dict[Path, Folder] = {}  # by index dir: a re-added folder waits for its old self
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._folders)

    def all(self) -> list[Folder]:
        with self._lock:
            return list(self._folders.values())

    def add(self, uri: str, root: Path, name: str, settings: NeedleSettings) -> Folder:
        """Open (in the background) the index of one folder; replaces a folder already known by that URI."""
        index_settings = settings.for_root(root)
        with self._lock:
            old = self._folders.pop(uri, None)
            if old is not None:
                old.close()
            else:
                old = self._closing.get(index_settings.index_dir_for(root.resolve()))
            taken = {f.index_settings.index_dir_for(f.real_root) for f in self._folders.values()}
            wanted = index_settings.index_dir_for(root.resolve())
            if wanted in taken:  # one indexDir set for several folders: give each its own subfolder
                tag = hashlib.blake2b(str(root.resolve()).encode(), digest_size=4).hexdigest()
                index_settings = replace(index_settings, index_dir=wanted / f"{root.name}-{tag}")
            folder = Folder(uri, root, name, settings, index_settings, self.host, predecessor=old)
            self._folders[uri] = folder
        folder.start()
        return folder

    def remove(self, uri: str) -> None:
        with self._lock:
            folder = self._folders.pop(uri, None)
            if folder is not None:
                self._closing = {d: f for d, f in self._closing.items() if not f.wait_closed(0)}
                self._closing[folder.index_settings.index_dir_for(folder.real_root)] = folder
        if folder is not None:
            folder.close()

    def folder_for(self, path: Path) -> Folder | None:
        """The innermost folder holding ``path`` (nested workspace folders are allowed)."""
        best: Folder | None = None
        for folder in self.all():
            if folder.relative(path) is not None and (best is None or len(folder.real_root.parts) > len(best.real_root.parts)):
                best = folder
        return best

    def close_all(self, timeout: float = STOP_TIMEOUT_S) -> None:
        with self._lock:
            folders, self._folders = list(self._folders.values()), {}
        for folder in folders:
            folder.close()
        deadline = time.monotonic() + timeout
        for folder in folders:
            folder.wait_closed(max(0.0, deadline - time.monotonic()))
