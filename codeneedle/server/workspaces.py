"""Workspace folders: each one a ``LiveIndex`` (opened, built and watched in the background), shown to the editor.

A folder is a thin adaptor: the library's live index does the work (worker thread, read-only fallback while
another process writes, watcher, status); this module turns its events into window/showMessage and $/progress,
and its status into the camelCase entries of `needle.status`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from attrs import evolve as replace  # settings are the attrs model (codeneedle.indexer.settings)
from lsprotocol import types

from codeneedle.errors import IndexWriteError, NeedleError
from codeneedle.indexer.live import STOP_TIMEOUT_S, LiveEvents, LiveIndex, innermost
from codeneedle.server.settings import NeedleSettings

if TYPE_CHECKING:
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.settings import IndexSettings
    from codeneedle.indexer.types import Progress, SearchResult
    from codeneedle.indexer.watcher import BatchReport
    from codeneedle.server.progress import WorkDone

log = logging.getLogger("codeneedle.server")

_MESSAGE_TYPES = {logging.ERROR: types.MessageType.Error, logging.WARNING: types.MessageType.Warning}


class Host(Protocol):
    """What a folder needs from the server: messages and progress."""

    def show(self, kind: types.MessageType, message: str) -> None: ...

    def work_done(self, title: str, on_cancel: Callable[[], None]) -> WorkDone: ...


class _FolderEvents(LiveEvents):
    """A live index's events as LSP notifications: showMessage, and one $/progress sequence per full update."""

    def __init__(self, host: Host, name: str):
        self.host = host
        self.name = name
        self._work: WorkDone | None = None

    def message(self, level: int, text: str) -> None:
        self.host.show(_MESSAGE_TYPES.get(level, types.MessageType.Info), f"Needle: {text}")

    def build_started(self, cancel: Callable[[], None]) -> None:
        self._work = self.host.work_done(f"Needle: indexing {self.name}", cancel)
        self._work.begin("scanning files")

    def progress(self, progress: Progress) -> None:
        from codeneedle.indexer.progress import progress_text

        if progress.phase == "done" or self._work is None:
            return
        p = progress
        text, pct = progress_text(p.phase, p.files_done, p.files_total, p.chunks_embedded, p.chunks_to_embed,
                                  p.rate, p.eta_s)
        self._work.report(text, pct, force=p.phase == "save")

    def build_ended(self, summary: str) -> None:
        work, self._work = self._work, None
        if work is not None:
            work.end(summary)

    def batch(self, report: BatchReport) -> None:
        log.info("%s: %s", self.name, report.line())

    def batch_failed(self, exc: Exception) -> None:
        log.warning("%s: update failed: %s", self.name, exc)
        if isinstance(exc, IndexWriteError):
            # A full disk or the file size limit: edits stop reaching the index until there is room, which a log
            # line alone hid from the user. The watcher says each such error once while it lasts.
            self.host.show(types.MessageType.Warning,
                           f"Needle: {self.name}: edits are not indexed now ({exc}); searches answer from the index "
                           "as it is, and it catches up by itself once they can be written")


class Folder:
    """One workspace folder: its live index, named the way the client names it."""

    def __init__(self, uri: str, root: Path, name: str, settings: NeedleSettings, index_settings: IndexSettings,
                 host: Host, predecessor: Folder | None = None):
        self.uri = uri
        self.name = name
        self.settings = settings
        self.live = LiveIndex(root, index_settings, events=_FolderEvents(host, name), warm_up=True,
                              model_fallback="needle.model", after=predecessor.live if predecessor else None)
        self.root = self.live.root  # as the client names it (URIs we send back are built from it)
        self.real_root = self.live.real_root

    @property
    def index_settings(self) -> IndexSettings:
        return self.live.settings

    @property
    def index(self) -> Index | None:
        return self.live.index

    def start(self) -> None:
        self.live.start().refresh()

    def reindex(self) -> None:
        """Queue a full update (walk + diff + embed what changed), with progress."""
        self.live.refresh()

    def cancel(self) -> None:
        self.live.cancel()

    def close(self) -> None:
        self.live.close()

    def wait_closed(self, timeout: float) -> bool:
        return self.live.wait_closed(timeout)

    def submit(self, paths: Iterable[Path]) -> None:
        """Files the editor saved or saw change."""
        self.live.submit(paths)

    def relative(self, path: Path) -> str | None:
        return self.live.relative(path)

    def contains(self, path: Path) -> bool:
        return self.live.contains(path)

    def search(self, query: str, k: int, lang: Any, glob: str | None, exclude: str | list[str] | None = None,
               rerank: bool | None = None, kind: str | list[str] | None = None,
               within: list[str] | None = None) -> list[SearchResult]:
        return self.live.search(query, k, lang, glob, exclude, rerank=rerank, kind=kind, within=within)

    def partial(self) -> bool:
        """Whether results from this folder cover only part of it (still indexing, or interrupted)."""
        return self.live.partial()

    def similar(self, path: Path, line: int, k: int, text: str | None = None, cell: int = 0) -> list[SearchResult]:
        rel = self.relative(path)
        if rel is None:
            raise NeedleError(f"{path} is outside {self.root}")
        return self.live.similar(rel, line, k, text, cell)

    def status(self) -> dict[str, Any]:
        """One entry of `needle.status`'s ``folders``."""
        st = self.live.status().to_dict(camel=True)
        return {"model": self.settings.model, "files": 0, "chunks": 0, "lastUpdate": None, "skipped": {},
                **st, "uri": self.uri, "name": self.name}


class Workspaces:
    """The workspace folders the client told us about, by URI. Several URIs may share one folder: workspace
    folders inside one repository (a monorepo's ``frontend/`` and ``backend/``) index and search it once."""

    def __init__(self, host: Host):
        self.host = host
        self._folders: dict[str, Folder] = {}
        self._names: dict[str, str] = {}  # each URI's name, as the client gave it
        self._closing: dict[Path, Folder] = {}  # by index dir: a re-added folder waits for its old self
        self._removed: dict[str, int] = {}  # by URI: removals so far (see ``removals``)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.all())

    def all(self) -> list[Folder]:
        """Each open folder once, however many URIs share it."""
        with self._lock:
            return self._distinct()

    def _distinct(self) -> list[Folder]:
        return list({id(f): f for f in self._folders.values()}.values())

    def add(self, uri: str, root: Path, name: str, settings: NeedleSettings) -> Folder:
        """Open (in the background) the index of one folder; replaces a folder already known by that URI (and
        serves the URIs that shared it), or shares the folder of the same repository and settings."""
        index_settings = settings.for_root(root)
        real = root.resolve()
        with self._lock:
            self._names[uri] = name
            old = self._folders.get(uri)
            uris = [u for u, f in self._folders.items() if f is old] if old is not None else [uri]
            for u in uris:
                self._folders.pop(u, None)
            same = next((f for f in self._distinct() if f.real_root == real and f.settings == settings), None)
            if same is not None:
                if old is not None:
                    old.close()
                self._folders.update(dict.fromkeys(uris, same))
                return same
            if old is not None:
                old.close()
            else:
                old = self._closing.get(index_settings.index_dir_for(real))
            taken = {f.index_settings.index_dir_for(f.real_root) for f in self._distinct()}
            wanted = index_settings.index_dir_for(real)
            if wanted in taken:  # one indexDir set for several folders: give each its own subfolder
                tag = hashlib.blake2b(str(real).encode(), digest_size=4).hexdigest()
                index_settings = replace(index_settings, index_dir=wanted / f"{root.name}-{tag}")
            folder = Folder(uri, root, name, settings, index_settings, self.host, predecessor=old)
            self._folders.update(dict.fromkeys(uris, folder))
        folder.start()
        return folder

    def get(self, uri: str) -> Folder | None:
        """The folder open for ``uri``, if any."""
        with self._lock:
            return self._folders.get(uri)

    def removals(self, uri: str) -> int:
        """How often ``uri`` was removed: an add that awaited the client meanwhile is stale if this changed."""
        with self._lock:
            return self._removed.get(uri, 0)

    def remove(self, uri: str) -> None:
        with self._lock:
            self._removed[uri] = self._removed.get(uri, 0) + 1
            folder = self._folders.pop(uri, None)
            self._names.pop(uri, None)
            if folder is None:
                return
            rest = [u for u, f in self._folders.items() if f is folder]
            if rest:  # still serving another workspace folder of the same repository: named after it from now on
                if folder.uri == uri:
                    folder.uri, folder.name = rest[0], self._names.get(rest[0], folder.name)
                return
            self._closing = {d: f for d, f in self._closing.items() if not f.wait_closed(0)}
            self._closing[folder.index_settings.index_dir_for(folder.real_root)] = folder
        folder.close()

    def folder_for(self, path: Path) -> Folder | None:
        """The innermost folder holding ``path`` (nested workspace folders are allowed)."""
        return innermost(self.all(), path)

    def close_all(self, timeout: float = STOP_TIMEOUT_S) -> None:
        with self._lock:
            folders, self._folders, self._names = self._distinct(), {}, {}
        for folder in folders:
            folder.close()
        deadline = time.monotonic() + timeout
        for folder in folders:
            folder.wait_closed(max(0.0, deadline - time.monotonic()))
