"""`needle lsp`: the language server. Semantic code search through commands and workspace/symbol.

Start-up stays light (pygls + lsprotocol only): numpy, SQLite, torch, transformers and usearch are imported by
the folder threads and the first search, never before `initialize` is answered. Nothing but LSP is ever
written to stdout, and the server never opens a network socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcServerNotInitialized,
)
from pygls.lsp.server import LanguageServer

from codeneedle import __version__
from codeneedle.errors import NeedleError, PathOutsideRootError
from codeneedle.indexer.indexdir import indexed_only_when_asked
from codeneedle.indexer.merge import head_score, held_by_inner, inner_roots, merge_ranked
from codeneedle.server import commands as cmd
from codeneedle.server.adapting import Refitter
from codeneedle.server.mcp_guard import MAX_QUERY_CHARS
from codeneedle.server.progress import WorkDone
from codeneedle.server.protocol import FdReader, NeedleProtocol, serve
from codeneedle.server.results import to_lsp, to_symbol
from codeneedle.server.settings import SECTION, NeedleSettings, parse_configuration, parse_settings
from codeneedle.server.uris import uri_to_path
from codeneedle.server.workspaces import Folder, Workspaces

if TYPE_CHECKING:  # numpy stays out of the server's start-up
    from codeneedle.indexer.search import SearchResult

log = logging.getLogger("codeneedle.server")

CONFIG_TIMEOUT_S = 5.0
SYMBOL_RESULTS = 20
GLOB_NOTE_DELAY_S = 1.5  # "no file matches the glob" waits this long for the next keystroke's search
REQUEST_FAILED = -32803  # LSP ErrorCodes.RequestFailed


class NeedleServer(LanguageServer):
    """pygls server holding the workspace folders and their indexes."""

    def __init__(self) -> None:
        super().__init__("needle", __version__, text_document_sync_kind=types.TextDocumentSyncKind.None_,
                         protocol_cls=NeedleProtocol, max_workers=8)
        self.base_settings = NeedleSettings()
        self.initial_settings = self.base_settings  # initializationOptions: what every push is read over
        self.workspaces = Workspaces(self)
        self.ready = False
        self.stopping = False  # no more messages to the client (its pipe may be closed)
        self.setup_done = threading.Event()  # set once the initial folders are known (after configuration)
        self.initial_folders: list[tuple[str, str]] = []
        self.pending_warnings: list[str] = []
        self._settings_warned: set[str] = set()
        self.refused: dict[str, str] = {}  # workspace folder URI -> why it is not indexed (status and errors say it)
        self.pending_note: threading.Timer | None = None  # a "glob matches no file" note, said unless typing goes on
        self.refitter = Refitter()  # the folders' query adapters, refitted as results are opened

    # -- Host (used by folders) ------------------------------------------------------------------
    def warn_settings(self, warnings: list[str]) -> None:
        """Say each settings problem once: the same bad value read again (initializationOptions, then the
        workspace/configuration answer) is not said twice; fixed and broken again, it is."""
        for w in warnings:
            if w not in self._settings_warned:
                self.show(types.MessageType.Warning, f"Needle: {w}")
        self._settings_warned = set(warnings)

    def show(self, kind: types.MessageType, message: str) -> None:
        level = {types.MessageType.Error: logging.ERROR, types.MessageType.Warning: logging.WARNING}
        log.log(level.get(kind, logging.INFO), "%s", message)
        self._safely(lambda: self.window_show_message(types.ShowMessageParams(type=kind, message=message)))

    def work_done(self, title: str, on_cancel: Callable[[], None]) -> WorkDone:
        return WorkDone(self, title, on_cancel=on_cancel)

    def log_to_client(self, level: int, message: str) -> bool:
        """Send a log line to the client's log (window/logMessage); whether it went."""
        if not self.ready or self.protocol._shutdown or self.stopping:
            return False
        kind = (types.MessageType.Error if level >= logging.ERROR else types.MessageType.Warning
                if level >= logging.WARNING else types.MessageType.Info if level >= logging.INFO
                else types.MessageType.Log)
        return self._safely(lambda: self.window_log_message(types.LogMessageParams(type=kind, message=message)))

    def report_server_error(self, error: Exception, source: Any) -> None:
        # Malformed input is answered by NeedleProtocol; here only log (no error pop-ups for a client's bugs).
        log.info("%s: %s", getattr(source, "__name__", source), error)

    def _safely(self, send: Callable[[], None]) -> bool:
        try:
            send()
        except Exception as exc:  # noqa: BLE001 - the client may be gone
            log.debug("could not send to the client: %s", exc)
            return False
        return True

    # -- helpers for handlers ------------------------------------------------------------------
    def require_ready(self) -> None:
        """Refuse requests before `initialize`; wait (briefly) until the workspace folders are set up."""
        if not self.ready:
            raise JsonRpcServerNotInitialized("the server is not initialized yet")
        self.setup_done.wait(CONFIG_TIMEOUT_S * 2)

    def encoding(self) -> str:
        try:
            return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)
        except RuntimeError:
            return types.PositionEncodingKind.Utf16

    def path_in_workspace(self, uri: str) -> tuple[Folder, Path]:
        """The folder holding ``uri`` and its path, or InvalidParams for a bad URI or one outside the folders."""
        path = uri_to_path(uri)
        if path is None:
            raise JsonRpcInvalidParams(f"not a local file URI: {_clip(uri)}")
        folder = self.workspaces.folder_for(path)
        if folder is None or not folder.contains(path):
            roots = ", ".join(str(f.root) for f in self.workspaces.all()) or "none"
            raise JsonRpcInvalidParams(f"{_clip(str(path))} is outside the workspace folders ({_clip(roots)})")
        return folder, path

    async def fetch_settings(self, folders: list[tuple[str, str]]) -> list[NeedleSettings]:
        """Per-folder settings: workspace/configuration (section `needle`) over initializationOptions and pushed
        settings (``base_settings``, read once the answer is in: a push that came meanwhile counts)."""
        caps = self.client_capabilities.workspace
        if not folders or not (caps and caps.configuration):
            return [self.base_settings] * len(folders)
        params = types.ConfigurationParams(items=[types.ConfigurationItem(scope_uri=uri, section=SECTION)
                                                  for uri, _ in folders])
        try:
            answer = await asyncio.wait_for(
                self.protocol.send_request_async(types.WORKSPACE_CONFIGURATION, params), CONFIG_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - no answer: the initialization options stand
            log.info("workspace/configuration failed (%s); using initializationOptions", exc)
            return [self.base_settings] * len(folders)
        settings, warnings = parse_configuration(answer, len(folders), self.base_settings)
        self.warn_settings(warnings)
        return settings

    def refuse(self, uri: str, why: str) -> None:
        """A workspace folder that is not indexed: said now, and by status and searches later."""
        self.refused[uri] = why
        self.show(types.MessageType.Warning, f"Needle: {why}")

    async def add_folders(self, folders: list[tuple[str, str]]) -> None:
        usable = []
        for uri, name in folders:
            path = uri_to_path(uri)
            if path is None or not path.is_absolute():
                self.refuse(uri, f"cannot index {_clip(uri)}: only local folders are supported")
                continue
            usable.append((uri, name, _repository_root(path)))
        removals = {uri: self.workspaces.removals(uri) for uri, _, _ in usable}
        settings = await self.fetch_settings([(u, n) for u, n, _ in usable])
        for (uri, name, path), s in zip(usable, settings, strict=True):
            if self.workspaces.removals(uri) != removals[uri]:
                continue  # the client removed it while it answered: opened now, it would be indexed for no one
            # An editor without a project root often falls back to ~ or /: indexing that is never wanted, unless
            # its index was built on purpose (`needle index ~`), which every door then uses.
            real = path.resolve()
            if what := indexed_only_when_asked(real, s.for_root(real).index_dir_for(real)):
                self.refuse(uri, f"not indexing {path}: it is {what}, which is indexed only when asked; open a "
                                 f"project folder, or build its index once with `needle index {path}`")
                continue
            self.refused.pop(uri, None)
            log.info("opening %s", path)
            self.workspaces.add(uri, path, name or path.name, s)


def _repository_root(path: Path) -> Path:
    """A workspace folder inside a repository indexes the repository, as the CLI does (``find_root``), named the
    way the client named the folder: ``find_root`` resolves symlinks, and results under the resolved path
    (``~/code -> /data/code``) opened in VS Code, which keeps the link's path, as a second copy of the file."""
    from codeneedle.indexer.root import find_root

    try:
        root = find_root(path)
    except NeedleError:
        return path
    for named in (path, *path.parents):
        try:
            if named.resolve() == root:
                return named
        except (OSError, RuntimeError):  # a loop or an unreadable folder on the way: the resolved name does
            break
    return root


server = NeedleServer()


# -- lifecycle -------------------------------------------------------------------------------------
@server.feature(types.INITIALIZE)
def initialize(ls: NeedleServer, params: types.InitializeParams) -> None:
    """Record settings and folders only: the answer must be quick, the work starts on `initialized`."""
    ls.ready = True  # requests may come before `initialized`: they wait for the folders (require_ready)
    ls.base_settings, ls.pending_warnings = parse_settings(params.initialization_options)
    ls.initial_settings = ls.base_settings
    if params.workspace_folders:
        ls.initial_folders = [(f.uri, f.name) for f in params.workspace_folders]
    elif params.root_uri:
        ls.initial_folders = [(params.root_uri, "")]
    elif params.root_path:
        ls.initial_folders = [(Path(params.root_path).as_uri(), "")]
    if params.process_id:
        _watch_parent(ls, params.process_id)


@server.feature(types.INITIALIZED)
def initialized(ls: NeedleServer, params: types.InitializedParams) -> None:
    asyncio.ensure_future(_set_up(ls))


async def _set_up(ls: NeedleServer) -> None:
    """Warnings, settings (workspace/configuration), folders, then file-watch registration."""
    ls.warn_settings(ls.pending_warnings)
    if not ls.initial_folders:
        ls.show(types.MessageType.Warning,
                "Needle: no workspace folder was given (rootUri is null), so there is nothing to index. "
                "Start the server with a root directory (in Neovim: root_markers or root_dir) or add a folder.")
    try:
        await ls.add_folders(ls.initial_folders + extra_folders(ls))
    finally:
        ls.setup_done.set()
    await _register_file_watching(ls)


def extra_folders(ls: NeedleServer) -> list[tuple[str, str]]:
    """The `extraRoots` setting's folders not already open, as (uri, name): indexed and searched like the rest."""
    open_roots = {f.real_root for f in ls.workspaces.all()}
    open_roots |= {p.resolve() for p in (uri_to_path(u) for u, _ in ls.initial_folders) if p is not None}
    out = []
    for entry in ls.base_settings.extra_roots:
        path = Path(entry).expanduser()
        problem = ("is not an absolute path (write the folder's full path)" if not path.is_absolute()
                   else "does not exist" if not path.exists() else "is not a folder" if not path.is_dir() else None)
        if problem:
            ls.show(types.MessageType.Warning, f"Needle: extraRoots: {entry} {problem}")
        elif path.resolve() not in open_roots:
            open_roots.add(path.resolve())
            out.append((path.as_uri(), path.name))
    return out


@server.feature(types.SHUTDOWN)
def shutdown(ls: NeedleServer, params: None) -> None:
    ls.refitter.stop()
    ls.workspaces.close_all()


async def _register_file_watching(ls: NeedleServer) -> None:
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps else None
    if not (watched and watched.dynamic_registration):
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*")])
    registration = types.Registration(id="needle-watch-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                      register_options=options)
    try:
        await asyncio.wait_for(
            ls.client_register_capability_async(types.RegistrationParams(registrations=[registration])),
            CONFIG_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - our own file watcher still runs
        log.info("client did not register file watching (%s)", exc)


def _watch_parent(ls: NeedleServer, pid: int) -> None:
    """Exit when the editor that started us dies without saying goodbye (LSP's processId)."""

    def watch() -> None:
        while True:
            time.sleep(5.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                log.warning("client process %s is gone; exiting", pid)
                ls.refitter.stop()
                ls.workspaces.close_all(timeout=5.0)
                os._exit(0)
            except OSError:
                pass

    threading.Thread(target=watch, name="needle-parent-watch", daemon=True).start()


# -- workspace changes -----------------------------------------------------------------------------
@server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
async def folders_changed(ls: NeedleServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    for f in params.event.removed:
        log.info("closing %s", f.uri)
        ls.refused.pop(f.uri, None)
        ls.workspaces.remove(f.uri)
    await ls.add_folders([(f.uri, f.name) for f in params.event.added])


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def configuration_changed(ls: NeedleServer, params: types.DidChangeConfigurationParams) -> None:
    # Push model: the same values for every folder, read as initializationOptions are: `{"needle": {...}}` (Neovim's
    # `settings`, eglot, lsp-mode) or the section itself (the `settings` block of Helix, Kate, Sublime LSP, Zed,
    # which those editors send here, and answer workspace/configuration's section `needle` with null).
    # Each push is the client's whole block (every client known sends it so): it replaces the one before, over the
    # initializationOptions, so a setting the user deleted goes. An empty or null one only says "ask me".
    pushed = params.settings if isinstance(params.settings, dict) and params.settings else None
    if pushed is not None:
        ls.base_settings, warnings = parse_settings(pushed, ls.initial_settings)
        ls.warn_settings(warnings)
        await ls.add_folders(extra_folders(ls))
    folders = ls.workspaces.all()
    new = await ls.fetch_settings([(f.uri, f.name) for f in folders])
    for folder, settings in zip(folders, new, strict=True):
        # What is open for its URI now: the client may have removed the folder while it answered (reopened, it
        # would be indexed and watched for no one), or another change reopened it meanwhile.
        current = ls.workspaces.get(folder.uri)
        if current is not None and settings != current.settings:
            log.info("settings of %s changed; reopening its index", current.root)
            ls.workspaces.add(current.uri, current.root, current.name, settings)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: NeedleServer, params: types.DidSaveTextDocumentParams) -> None:
    _submit(ls, [params.text_document.uri])


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def watched_files_changed(ls: NeedleServer, params: types.DidChangeWatchedFilesParams) -> None:
    _submit(ls, [c.uri for c in params.changes])


def _submit(ls: NeedleServer, uris: list[str]) -> None:
    by_folder: dict[int, tuple[Folder, list[Path]]] = {}
    for uri in uris:
        path = uri_to_path(uri)
        folder = ls.workspaces.folder_for(path) if path is not None else None
        if folder is not None and path is not None:
            by_folder.setdefault(id(folder), (folder, []))[1].append(path)
    for folder, paths in by_folder.values():
        folder.submit(paths)


# -- queries ---------------------------------------------------------------------------------------
def run_search(ls: NeedleServer, query: str, k: int, lang: Any = None, glob: str | None = None,
               exclude: Any = None, rerank: bool | None = None, kind: Any = None,
               within: dict[Path, list[str]] | None = None) -> list[dict]:
    """Search every folder, merge the ranked lists: ``[{uri, range, name, kind, language, score, weak, snippet}]``."""
    encoding = ls.encoding()
    return [{**to_lsp(root, r, encoding), **({"partial": True} if partial else {})}
            for root, r, partial in search_folders(ls, query, k, lang, glob, exclude, rerank, kind, within)]


def within_folders(ls: NeedleServer, uris: list[str]) -> dict[Path, list[str]]:
    """``needle.search``'s ``within`` URIs per workspace folder (its root -> paths relative to it, "" for all of
    it); a folder none of them is in is not searched. InvalidParams for a URI outside the workspace."""
    named = [ls.path_in_workspace(uri)[1] for uri in uris]
    within: dict[Path, list[str]] = {}
    for folder in ls.workspaces.all():
        for path in named:
            rel = folder.relative(path)
            if rel is None and _holds(path, folder.root):
                rel = ""  # a workspace folder inside the one named: all of it
            if rel is not None:
                within.setdefault(folder.root, []).append(rel)
    return within


def _holds(path: Path, root: Path) -> bool:
    return root.is_relative_to(path) or root.resolve().is_relative_to(path.resolve())


def search_folders(ls: NeedleServer, query: str, k: int, lang: Any = None, glob: str | None = None,
                   exclude: Any = None, rerank: bool | None = None, kind: Any = None,
                   within: dict[Path, list[str]] | None = None) -> list[tuple[Path, SearchResult, bool]]:
    """Search every folder (those ``within`` names, when given), merge the ranked lists: the best ``k`` as (folder
    root, result, folder still partial)."""
    answered: list[tuple[Folder, list[SearchResult]]] = []
    errors: list[str] = []
    for folder in ls.workspaces.all():
        if within is not None and folder.root not in within:
            continue
        try:
            answered.append((folder, folder.search(query, k, lang, glob, exclude, rerank, kind,
                                                   within[folder.root] if within is not None else None)))
        except (NeedleError, ValueError) as exc:  # ValueError: e.g. a glob pathspec cannot parse
            errors.append(f"{folder.root}: {exc}")
    per_folder: list[list[tuple[Path, SearchResult, bool]]] = []
    # A folder inside another answers for its own files: the outer one's copies would repeat them (unless the inner
    # one could not answer: then the outer copies are all there is).
    for (folder, results), inner in zip(answered, inner_roots([f.root for f, _ in answered]), strict=True):
        results = [r for r in results if not held_by_inner(r.path, inner)]
        # Results from a folder still being indexed (or left partial) say so, hit by hit.
        partial = bool(results) and folder.partial()
        per_folder.append([(folder.root, r, partial) for r in results])
    if errors and not any(per_folder):
        raise JsonRpcException(message="; ".join(errors), code=REQUEST_FAILED)
    # Each folder's list is in its ranking rules' order, which a sort by score would undo.
    return merge_ranked(per_folder, k, score=lambda hit: head_score(hit[1]))


@server.command(cmd.SEARCH)
@server.thread()
def search_command(ls: NeedleServer, *arguments: Any) -> list[dict]:
    ls.require_ready()
    args = cmd.parse_arguments(cmd.SEARCH, list(arguments), cmd.SearchArgs)
    cmd.check_search(args)
    _require_folders(ls)
    pending, ls.pending_note = ls.pending_note, None
    if pending is not None:
        pending.cancel()  # another search came: the user is still typing
    within = within_folders(ls, args.within) if args.within is not None else None
    hits = run_search(ls, args.query, args.k, args.lang, args.glob, args.exclude, args.rerank, args.kind, within)
    if not hits and within:
        notes = [note for folder in ls.workspaces.all() if folder.root in within
                 and (note := folder.index.within_note(within[folder.root]) if folder.index else None)]
        if notes:
            ls.show(types.MessageType.Info, f"Needle: {'; '.join(notes)}")
    if not hits and args.glob:
        _say_glob_matches_nothing(ls, args.glob)
    return hits


def _say_glob_matches_nothing(ls: NeedleServer, glob: str) -> None:
    """No results because no indexed file matches the glob (a path written from the wrong folder): say so, as the
    CLI does, rather than leave an empty list to explain itself. Said after GLOB_NOTE_DELAY_S unless another
    search comes first: search-as-you-type sends every partial glob (``glob:s``, ``glob:sr``, ...)."""
    from codeneedle.indexer.collection import glob_note

    note = glob_note([f.index for f in ls.workspaces.all()], glob)
    if note:
        timer = threading.Timer(GLOB_NOTE_DELAY_S, ls.show, (types.MessageType.Info, f"Needle: {note}"))
        timer.daemon = True
        ls.pending_note = timer
        timer.start()


@server.command(cmd.SIMILAR)
@server.thread()
def similar_command(ls: NeedleServer, *arguments: Any) -> list[dict]:
    ls.require_ready()
    args = cmd.parse_arguments(cmd.SIMILAR, list(arguments), cmd.SimilarArgs)
    folder, path = ls.path_in_workspace(args.uri)
    try:
        cell = args.cell + 1 if args.cell is not None else 0  # the library counts cells from 1, as lines
        results = folder.similar(path, args.position.line + 1, args.k, args.text, cell)
    except PathOutsideRootError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    except NeedleError as exc:
        raise JsonRpcException(message=str(exc), code=REQUEST_FAILED) from None
    encoding = ls.encoding()
    return [to_lsp(folder.root, r, encoding) for r in results]


@server.command(cmd.REINDEX)
@server.thread()
def reindex_command(ls: NeedleServer, *arguments: Any) -> dict:
    ls.require_ready()
    args = cmd.parse_arguments(cmd.REINDEX, list(arguments), cmd.ReindexArgs)
    folders = [ls.path_in_workspace(args.uri)[0]] if args.uri is not None else ls.workspaces.all()
    _require_folders(ls)
    # A read-only index (its folder cannot be written, or another needle process is its writer) is not updated
    # from here: say so, rather than "reindexing started" and nothing.
    blocked = {}
    for folder in folders:
        st = folder.live.status(counts=False)
        if st.read_only:
            blocked[str(folder.root)] = st.message or "the index is read-only"
        else:
            folder.reindex()
    if blocked and len(blocked) == len(folders):
        raise JsonRpcException(message="; ".join(f"{root}: {why}" for root, why in blocked.items()),
                               code=REQUEST_FAILED)
    return {"started": True, "folders": [str(f.root) for f in folders if str(f.root) not in blocked],
            **({"not_reindexed": blocked} if blocked else {})}


@server.command(cmd.STATUS)
@server.thread()
def status_command(ls: NeedleServer, *arguments: Any) -> dict:
    ls.require_ready()
    cmd.parse_arguments(cmd.STATUS, list(arguments), cmd.StatusArgs)
    folders = [f.status() for f in ls.workspaces.all()]
    out: dict[str, Any] = {"state": _overall_state(folders), "folders": folders, "version": __version__}
    if not folders:
        out["message"] = _no_folder_reason(ls)
    elif out["state"] in ("partial", "error"):
        wanted = "cancelled" if out["state"] == "partial" else "error"
        out["message"] = "; ".join(f"{f['name']}: {f.get('message') or 'indexing was cancelled'}"
                                   for f in folders if f["state"] == wanted)
    return out


def _overall_state(folders: list[dict]) -> str:
    """indexing (a folder is opening or indexing) | partial (one was cancelled: results cover what it indexed) |
    error (every folder failed) | ready | none (no folder is indexed)."""
    states = {f["state"] for f in folders}
    if states & {"starting", "indexing"}:
        return "indexing"
    if "cancelled" in states:
        return "partial"
    if states == {"error"}:
        return "error"
    return "ready" if folders else "none"


def _no_folder_reason(ls: NeedleServer) -> str:
    if ls.refused:
        return "nothing is indexed: " + "; ".join(ls.refused.values())
    return "no workspace folder: nothing is indexed"


@server.command(cmd.OPENED)
@server.thread()
def opened_command(ls: NeedleServer, *arguments: Any) -> dict:
    ls.require_ready()
    args = cmd.parse_arguments(cmd.OPENED, list(arguments), cmd.OpenedArgs)
    from codeneedle.server.feedback import record

    return record(ls, args)


@server.feature(types.WORKSPACE_SYMBOL)
@server.thread()
def workspace_symbol(ls: NeedleServer, params: types.WorkspaceSymbolParams) -> list[types.SymbolInformation]:
    """Every editor's symbol picker becomes semantic search: the query goes through the same hybrid search."""
    ls.require_ready()
    query = params.query.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise JsonRpcInvalidParams(f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})")
    if not query:
        return []
    encoding = ls.encoding()
    # Symbol search runs on every keystroke: the first stage alone, within a keystroke's budget.
    return [to_symbol(root, r, encoding) for root, r, _ in search_folders(ls, query, SYMBOL_RESULTS, rerank=False)]


def _require_folders(ls: NeedleServer) -> None:
    if not len(ls.workspaces):
        why = ("; ".join(ls.refused.values()) if ls.refused
               else "open a project folder (the client sent no root)")
        raise JsonRpcException(message=f"Needle has no workspace folder to search: {why}", code=REQUEST_FAILED)


# -- plumbing ---------------------------------------------------------------------------------------
def _clip(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


class _ClientLogHandler(logging.Handler):
    """Send the server's own log lines to the client's log (window/logMessage). A line that went is marked, and
    stderr leaves it out: editors keep the server's stderr in the same log, where each line showed twice."""

    def __init__(self, ls: NeedleServer):
        super().__init__(logging.INFO)
        self.ls = ls
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):  # a failed send logs, which would send again
            return
        self._busy.on = True
        try:
            record.needle_sent_to_client = self.ls.log_to_client(record.levelno, self.format(record))
        except Exception:  # noqa: BLE001
            pass
        finally:
            self._busy.on = False


def serve_stdio() -> None:
    """Run the server on stdin/stdout until the client exits (the CLI's `needle lsp`)."""
    # Keep fd 1 for LSP alone: anything else that writes to stdout (a library's print, native code) lands on
    # stderr instead of corrupting the stream.
    sys.stdout.flush()
    lsp_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    level = os.environ.get("NEEDLE_LOG", "info").upper()
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level, logging.INFO),
                        format="needle-lsp %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_client_errors)
        handler.addFilter(lambda record: not getattr(record, "needle_sent_to_client", False))
    logging.getLogger("codeneedle").addHandler(_ClientLogHandler(server))
    run(server, FdReader(sys.stdin.fileno()), lsp_out)


def _quiet_client_errors(record: logging.LogRecord) -> bool:
    """Drop pygls' tracebacks for errors that are the client's (invalid params, unknown method): they are
    answered, and logged on one line by report_server_error."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, JsonRpcException) and not isinstance(exc, JsonRpcInternalError))


def run(ls: NeedleServer, stdin: FdReader | BinaryIO, stdout: BinaryIO) -> None:
    """Serve ``ls`` over the given binary streams."""
    from pygls.io_ import StdoutWriter

    stop = threading.Event()
    ls._stop_event = stop
    ls.protocol.set_writer(StdoutWriter(stdout))
    try:
        asyncio.run(serve(ls.protocol, stdin, stop))
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        ls.stopping = True
        ls.refitter.stop()
        ls.workspaces.close_all()
        ls.shutdown()
