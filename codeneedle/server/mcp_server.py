"""`needle mcp`: the index as MCP tools (``search``, ``similar``, ``status``) over stdio for coding assistants.

A thin door over ``codeneedle.indexer.index.Index``. The repository root is the ``root`` argument, else the
``NEEDLE_ROOT`` environment variable, else the working directory. An index is opened, built or brought up to
date on first use and refreshed (stat-only, cheap) before later calls. Failures become tool errors
(``isError`` results) the assistant can read; stdout carries nothing but MCP.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import anyio
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from codeneedle import __version__
from codeneedle.errors import NeedleError
from codeneedle.indexer.filters import kind_filter, split_globs
from codeneedle.indexer.indexdir import too_broad
from codeneedle.indexer.live import LiveEvents, LiveIndex, innermost
from codeneedle.indexer.progress import progress_text
from codeneedle.indexer.root import find_root
from codeneedle.indexer.scores import good_match, no_match_note
from codeneedle.indexer.search import language_filter
from codeneedle.indexer.settings import IndexSettings, seconds_from_env
from codeneedle.server.mcp_guard import MAX_QUERY_CHARS, argument_problems, check_value, params_problems
from codeneedle.server.mcp_wire import ScreenedLines, ScreenedStream, claimed_stdin, text_lines

try:  # mcp >= 2
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as _MCPServer
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
    from mcp.shared.exceptions import MCPError
except ImportError:  # pragma: no cover - mcp 1.x names the same API FastMCP
    from mcp.server.fastmcp import Context  # type: ignore[no-redef]
    from mcp.server.fastmcp import FastMCP as _MCPServer  # type: ignore[no-redef]
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]
    from mcp.shared.exceptions import McpError as MCPError  # type: ignore[no-redef]

    UnexpectedToolError = ToolError  # type: ignore[misc,assignment] # 1.x: its texts are left as they are

if TYPE_CHECKING:
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.types import Progress

log = logging.getLogger("codeneedle.mcp")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

ROOT_ENV = "NEEDLE_ROOT"
# More repositories searched with the root when `search` names no path (os.pathsep-separated folders).
EXTRA_ROOTS_ENV = "NEEDLE_EXTRA_ROOTS"
WAIT_ENV = "NEEDLE_MCP_WAIT"
# How long a tool call waits for an index build before answering over what is indexed so far.
DEFAULT_WAIT_S = 45.0
# How long `status` waits: enough for a stat-only refresh of a large repository, not for a build.
STATUS_WAIT_S = 2.0
MAX_K = 100
INVALID_PARAMS = -32602
# How often a call waiting on an index build looks at its progress (notifications/progress to a progressToken).
PROGRESS_INTERVAL_S = 0.5

INSTRUCTIONS = (
    "Needle is local semantic code search over the user's repository. Use `search` with a natural-language "
    "description or identifiers to find functions, classes and code blocks (returns path, 1-based lines, "
    "name and a snippet); `similar` for code like the function at path:line; `status` for what is indexed."
)


class _Progress(NamedTuple):
    """A repository's build progress as a waiting call reports it."""

    count: int  # progress events so far (a call reports only builds that moved while it waited)
    percentage: int
    message: str
    # Every update walks the tree and saves: only one with files to read or chunks to embed is worth a word, and
    # only one that embeds is worth saying after the fact.
    works: bool
    embeds: bool


class _Events(LiveEvents):
    """The latest progress of a repository's index builds (set from its worker thread, read by waiting calls)."""

    def __init__(self) -> None:
        self.latest: Progress | None = None
        self.count = 0

    def progress(self, progress: Progress) -> None:
        if progress.phase != "done":
            self.latest, self.count = progress, self.count + 1


class _Repo:
    """One repository's live index, refreshed before each call: no watching, and the writer lock only while an
    update runs (an editor's language server may want it between calls)."""

    def __init__(self, index: Index):
        self.events = _Events()
        self.live = LiveIndex(index.root, index=index, events=self.events, watch=False, hold_writer=False).start()
        self.index = index

    def refresh(self, wait: float) -> None:
        """Bring the index up to date (stat-only when little changed), waiting up to ``wait`` seconds."""
        self.live.refresh(wait)
        st = self.live.status(counts=False)
        if st.state == "error" and self.index.stored_model is None:
            raise ToolError(st.message or f"indexing {self.index.root} failed")

    def close(self) -> None:
        """Cancel a running update, then close the index."""
        self.live.close()
        self.live.wait_closed(10)

    def progress(self) -> _Progress | None:
        """How far this repository's latest index build is: what a call waiting on it reports (None: no build
        has said)."""
        p = self.events.latest
        if p is None:
            return None
        text, pct = progress_text(p.phase, p.files_done, p.files_total, p.chunks_embedded, p.chunks_to_embed,
                                  p.rate, p.eta_s)
        return _Progress(self.events.count, pct, f"indexing {self.live.root}: {text}",
                         bool(p.files_total or p.chunks_to_embed), p.chunks_to_embed > 0)

    def state(self) -> dict[str, Any]:
        """``indexing``/``ready`` plus progress and notes, merged into every answer."""
        st = self.live.status(counts=False)
        out: dict[str, Any] = {"root": st.root, "state": st.state, "partial": st.partial}
        progress = st.to_dict().get("progress")
        if progress is not None or (st.state == "indexing" and not st.read_only):  # (a build not begun yet: none)
            eta = (progress or {}).get("eta_seconds")
            out.update({"progress": progress} if progress is not None else {})
            out["note"] = ("indexing is still running; results cover what is indexed so far: ask again "
                           + (f"in about {eta} s" if eta else "shortly") + " for all of it")
        elif st.partial:
            out["note"] = f"results are partial: the index is {self.index.completeness().message()}"
        elif st.read_only:
            out["note"] = (f"{st.message}; results come from the index as it is" if st.message else
                           "the index is being written by another needle process; results come from it as it is")
        if st.state == "error":
            out["error"] = st.message
        return out


class NeedleMCP:
    """The tools' logic, independent of the transport (tests may call it directly)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, settings: IndexSettings | None = None,
                 wait: float | None = None, extra_roots: list[str] | None = None, explicit: Iterable[str] = ()):
        # The root is found the way git finds its work tree (nearest .needle/, else .git, else the folder);
        # a missing folder is reported by the first tool call, not by a server that fails to start.
        # Nothing named: the working folder, unless the client says which folders it has open (client_roots).
        self.root_from_cwd = not (root or os.environ.get(ROOT_ENV))
        self._set_root(root or os.environ.get(ROOT_ENV) or os.getcwd())
        if extra_roots is None:
            extra_roots = [p for p in os.environ.get(EXTRA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
        self.extra_named = bool(extra_roots)
        self._named_extras = list(extra_roots)
        self._set_extra_roots(extra_roots)
        self.settings = settings or IndexSettings()
        # Settings a command line gave; none by default: an MCP client has no settings of its own, so the stored
        # ones stand (sticky.py reads None as an editor's configuration, which would reset what an editor stored).
        self.explicit = tuple(explicit)
        self.wait = wait if wait is not None else seconds_from_env(WAIT_ENV, DEFAULT_WAIT_S)
        self._repos: dict[Path, _Repo] = {}
        self._lock = threading.Lock()
        # Repositories the client's roots no longer hold, each with the calls that were running when it left:
        # closed once those have ended (one of them may be searching it). Guarded by _calls_lock, taken after
        # _lock where both are (a call's start and end take only _calls_lock: _lock is held while an index opens).
        self._retired: list[tuple[Path, _Repo, frozenset[int]]] = []
        self._calls: set[int] = set()
        self._call_ids = itertools.count()
        self._calls_lock = threading.Lock()

    def _set_root(self, given: str | os.PathLike[str]) -> None:
        path = Path(given).expanduser()
        try:
            self.root = find_root(path)
        except NeedleError:
            self.root = path.resolve()

    def _set_extra_roots(self, extra_roots: Iterable[str | os.PathLike[str]]) -> None:
        self.extra_roots = [r for r in dict.fromkeys(Path(p).expanduser().resolve() for p in extra_roots)
                            if r != self.root]

    def client_roots(self, folders: list[Path]) -> None:
        """Serve the folders the client has open (its roots/list) instead of the working folder: the first is the
        root, the others extra roots (unless extra roots were named). Where no root was named only. Called again
        when the client says its roots changed: repositories still served stay open as they are, the others are
        closed, at once or, where a call running now may be searching one, when the calls running now have ended."""
        if not folders or not self.root_from_cwd:
            return
        with self._lock:
            before = self.roots()
            self._set_root(folders[0])
            self._set_extra_roots(self._named_extras if self.extra_named else folders[1:])
            if self.roots() == before:
                return
            with self._calls_lock:
                # A folder dropped and offered again before its index was closed: that index serves it again.
                for root, repo, _ in self._retired:
                    if self._serves(root):
                        self._repos.setdefault(root, repo)
                self._retired = [entry for entry in self._retired if self._repos.get(entry[0]) is not entry[1]]
                gone = [root for root in self._repos if not self._serves(root)]
                self._retired += [(root, self._repos.pop(root), frozenset(self._calls)) for root in gone]
                idle = self._take_idle()
        log.info("serving the client's roots: %s", ", ".join(map(str, self.roots())))
        for repo in idle:
            repo.close()

    def _serves(self, path: Path) -> bool:
        return any(path == r or path.is_relative_to(r) for r in self.roots())

    def _take_idle(self) -> list[_Repo]:
        """The retired repositories no running call may still be using, taken off the list (under _calls_lock)."""
        idle = [repo for _, repo, waits in self._retired if not waits & self._calls]
        self._retired = [entry for entry in self._retired if entry[2] & self._calls]
        return idle

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """A tool call's body (on its worker thread, to the end even when the client cancelled the call): the
        repositories the client's roots drop meanwhile are closed after it."""
        call = next(self._call_ids)
        with self._calls_lock:
            self._calls.add(call)
        try:
            yield
        finally:
            with self._calls_lock:
                self._calls.discard(call)
                idle = self._take_idle()
            for repo in idle:
                repo.close()

    def repo(self, path: str | None = None) -> _Repo:
        """The repository at ``path`` (default: the server's root), opened once and kept."""
        from codeneedle.indexer.index import Index

        root = self.root if not path else Path(path).expanduser()
        if not root.is_absolute():
            root = self.root / root
        root = root.resolve()
        if not self._serves(root):
            # Any folder an assistant names would otherwise be indexed, get a .needle/ written into it and have
            # its contents returned (a key under ~/.ssh came back): serve the configured root(s) only.
            served = ", ".join(str(r) for r in self.roots())
            raise ToolError(f"path {path!r} is not a folder this server serves ({served}); omit path to search "
                            "it, or start the server with NEEDLE_ROOT set to that folder")
        if path:
            found = find_root(root, files=True)
            # Root discovery walks up: it must not climb out of the served root either.
            served_by = [r for r in self.roots() if root == r or root.is_relative_to(r)]
            root = found if any(found == r or found.is_relative_to(r) for r in served_by) else served_by[0]
        with self._lock:
            repo = self._repos.get(root)
            if repo is None and not self._serves(root):
                # The client's roots changed while this call ran (a call that began before the change).
                raise ToolError(f"{root} is no longer a folder this server serves: the client's roots changed "
                                "during this call; ask again")
            if repo is None:
                try:
                    index = Index.open(root, self.settings, notify=_notify, explicit=self.explicit)
                except NeedleError as exc:
                    if too_broad(root) is None:
                        raise
                    # The library's advice is a person's (open or name a folder); an agent's is a path.
                    raise NeedleError(f"{exc}. Here: give `path` the project's folder (absolute), or set "
                                      f"{ROOT_ENV} to it in this server's configuration") from None
                repo = self._repos[root] = _Repo(index)
        return repo

    def roots(self) -> list[Path]:
        """The folders this server serves (its configured root and extra roots); nothing else is opened or written."""
        return [self.root, *self.extra_roots]

    def search(self, query: str, k: int = 10, lang: str | list[str] | None = None, glob: str | None = None,
               path: str | None = None, exclude_glob: str | list[str] | None = None,
               kind: str | list[str] | None = None) -> dict[str, Any]:
        if not query.strip():
            raise ToolError("query is empty: describe the code you are looking for")
        _check_k(k)
        # Bad arguments are answered before any indexing work.
        language_filter(lang)
        kind_filter(kind)
        split_globs(glob, exclude_glob)
        if path is None and self.extra_roots:
            return self._search_all(query, k, lang, glob, exclude_glob, kind)
        repo = self.repo(path)
        within = self._within(repo, path)
        repo.refresh(self.wait)
        results = repo.live.search(query, k=k, lang=lang, glob=glob, exclude=exclude_glob, kind=kind, within=within)
        out = {**repo.state(), "query": query, "results": [r.to_dict() for r in results],
               "good_match": good_match(results)}
        note = no_match_note(results) if results else (repo.index.within_note(within) or repo.index.glob_note(glob)
                                                        or _nothing_found(lang, kind, glob, exclude_glob, path))
        if note:
            out["note"] = f"{out['note']}; {note}" if out.get("note") else note
        return out

    def _within(self, repo: _Repo, path: str | None) -> tuple[str, ...] | None:
        """The folder or file ``path`` names inside ``repo``, relative to its root: the search answers from there
        (None or (): ``path`` is the repository itself, or not given)."""
        from codeneedle.indexer.filters import within_of
        from codeneedle.indexer.root import named_path

        if not path:
            return None
        named = Path(path).expanduser()
        return within_of(repo.index.root, [named_path(named if named.is_absolute() else self.root / named)])

    def _search_all(self, query: str, k: int, lang: str | list[str] | None, glob: str | None,
                    exclude_glob: str | list[str] | None, kind: str | list[str] | None = None) -> dict[str, Any]:
        """The root and every extra root, merged (each keeps its ranking order); each result names its ``repo``."""
        from codeneedle.indexer.collection import glob_note, search_indexes

        repos, left_out = self._all_repos()
        results = search_indexes([r.index for r in repos], query, k=k, lang=lang, glob=glob, exclude=exclude_glob,
                                 kind=kind)
        out = {**repos[0].state(), "repos": [r.state() for r in repos], "query": query,
               "results": [r.to_dict() for r in results], "good_match": good_match(results)}
        # As a search of one repository says: weak matches, or a glob no repository's files match.
        notes = [no_match_note(results) if results else (glob_note([r.index for r in repos], glob)
                                                         or _nothing_found(lang, kind, glob, exclude_glob))]
        if left_out:
            notes.append(f"not searched: {'; '.join(left_out)}")
        for note in filter(None, notes):
            out["note"] = f"{out['note']}; {note}" if out.get("note") else note
        return out

    def similar(self, path: str, line: int, k: int = 10, cell: int | None = None) -> dict[str, Any]:
        _check_k(k)
        if line < 1:
            raise ToolError(f"line must be at least 1 (lines are 1-based), got {line}")
        if cell is not None and cell < 1:
            raise ToolError(f"cell must be at least 1 (cells are counted from 1, as results say), got {cell}")
        path = self._served_file(path)
        repo = self._repo_holding(path)
        repo.refresh(self.wait)
        results = repo.index.similar(path, line, k=k, cell=cell or 0)
        return {**repo.state(), "path": repo.index.relative(path), "line": line, **({"cell": cell} if cell else {}),
                "results": [r.to_dict() for r in results]}

    def _served_file(self, path: str) -> str:
        """``path`` as ``similar`` reads it: a relative path is the root's file, else (none there) the first extra
        root's that has it, as a search over every root gives it (``path`` relative to its ``repo``)."""
        p = Path(path).expanduser()
        if p.is_absolute() or (self.root / p).exists():
            return path
        return next((str(r / p) for r in self.extra_roots if (r / p).is_file()), path)

    def _all_repos(self, wait: float | None = None) -> tuple[list[_Repo], list[str]]:
        """The root's repository and every extra root's, refreshed (waiting up to ``wait``, default the server's),
        and the extra roots that cannot open (why)."""
        repos, left_out = [self.repo()], []
        for root in self.extra_roots:
            try:
                repo = self.repo(str(root))
            except NeedleError as exc:  # a missing or unreadable extra root: the others still answer
                left_out.append(f"{root} ({exc})")
                continue
            if all(repo is not other for other in repos):  # an extra root inside another's repository
                repos.append(repo)
        for repo in repos:
            repo.refresh(self.wait if wait is None else wait)
        return repos, left_out

    def status(self, path: str | None = None) -> dict[str, Any]:
        """The repository at ``path`` (default: the root); with extra roots and no ``path``, each one under
        ``repos`` too, as a search over all of them answers."""
        # Status says how far indexing is: it waits for a stat-only refresh, not for a build to end.
        wait = min(self.wait, STATUS_WAIT_S)
        if path is None and self.extra_roots:
            repos, left_out = self._all_repos(wait)
            each = [{**r.live.status().to_dict(), **r.state()} for r in repos]
            return {**each[0], "repos": each, **({"not_open": left_out} if left_out else {})}
        repo = self.repo(path)
        repo.refresh(wait)
        return {**repo.live.status().to_dict(), **repo.state()}

    def _repo_holding(self, path: str) -> _Repo:
        """The repository whose root holds ``path`` (absolute): an open one, else the served root (an extra root
        too, opened now: no search need have opened it first); a relative path is the server's own root's."""
        p = Path(path).expanduser()
        if p.is_absolute():
            with self._lock:
                found = innermost([r.live for r in self._repos.values()], p)
            if found is not None:
                return self._repos[found.real_root]
            holders = [r for r in self.roots() if p.is_relative_to(r)]
            if holders:
                return self.repo(str(max(holders, key=lambda r: len(r.parts))))
        return self.repo()

    def progress(self) -> dict[Path, _Progress]:
        """Each open repository's latest index build progress (``_Repo.progress``), by root. Read on the event loop,
        so without the lock, which ``repo`` holds while an index opens: a dict's copy is atomic in CPython."""
        repos = self._repos.copy()
        return {root: p for root, p in ((root, repo.progress()) for root, repo in repos.items()) if p is not None}

    def close(self) -> None:
        with self._lock, self._calls_lock:
            for repo in [*self._repos.values(), *(repo for _, repo, _ in self._retired)]:
                repo.close()
            self._repos.clear()
            self._retired.clear()


def _nothing_found(lang: Any, kind: Any, glob: str | None, exclude_glob: Any, path: str | None = None) -> str:
    """Why a search answered no results at all, when no other note says: the filters it named (an empty list
    alone reads as "no such code exists"), or an index with nothing in it yet."""
    named = [f"{name}={value!r}" for name, value in (("lang", lang), ("kind", kind), ("glob", glob),
                                                      ("exclude_glob", exclude_glob), ("path", path)) if value]
    if named:
        return (f"no results: no indexed code fits {', '.join(named)}; widen or drop a filter (`status` lists the "
                "indexed languages)")
    return "no results: the index holds no code yet (`status` says what is indexed and skipped)"


def _check_k(k: int) -> None:
    # Checked here rather than by pydantic bounds, whose error is a raw validation dump.
    if not 1 <= k <= MAX_K:
        raise ToolError(f"k must be between 1 and {MAX_K}, got {k}")


def _notify(message: str) -> None:
    log.warning("%s", message)


class _ClientRoots:
    """The folders the client has open, asked (roots/list) before the first tool call where the server was given no
    root (no NEEDLE_ROOT, no --path): a client may start it in any folder (the home folder, ``/``), and its roots
    say which project the user means. Asked again before the first call after the client says they changed
    (notifications/roots/list_changed: a folder added to or removed from the workspace, another project opened in
    the window). A client without the roots capability keeps the working folder; one whose roots/list fails keeps
    the folders it had."""

    ASK_TIMEOUT_S = 10.0

    def __init__(self, needle: NeedleMCP):
        self.needle = needle
        self.due = needle.root_from_cwd
        self.asked = False
        self._lock = anyio.Lock()

    async def changed(self, *_: Any) -> None:
        """notifications/roots/list_changed: roots/list is asked by the next call, not here. The SDK runs this
        handler beside the calls (mcp 1.x and 2.x alike), so a call sent right after the notification could be
        served the old folders while an answer asked for here is on its way; asked by the call, the call waits
        for it. A burst of changes (a workspace opened folder by folder) is asked about once. The SDK starts
        handlers in the order it reads the messages, and this one sets the flag before any await: a call sent
        after the notification finds it set."""
        if self.needle.root_from_cwd:
            self.due = True

    async def adopt(self, ctx: Context | None) -> None:
        if not self.needle.root_from_cwd or ctx is None:
            return
        async with self._lock:  # calls that come meanwhile wait for the answer, not serve the old folders
            if not self.due:
                return
            self.due = False  # a change said while asking is asked about on the call after
            try:
                folders = await _client_folders(ctx, self.ASK_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a client that cannot answer keeps the folders served now
                log.warning("the client offers roots but roots/list failed (%s); serving %s", exc,
                            ", ".join(map(str, self.needle.roots())) if self.asked else "the working folder")
                folders = []
            except BaseException:  # the call was cancelled while asking: the next call asks
                self.due = True
                raise
            if folders:
                # On a worker thread: the repositories no longer served are closed here (their update cancelled).
                await anyio.to_thread.run_sync(self.needle.client_roots, folders)
            self.asked = True


def _on_roots_changed(server: _MCPServer, handler: Callable[..., Any]) -> None:
    """Call ``handler`` on notifications/roots/list_changed (a roots capability is the client's: the server
    advertises nothing for it)."""
    from mcp import types

    low = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server", None)
    if hasattr(low, "add_notification_handler"):  # mcp >= 2: by method, handler(ctx, params)
        low.add_notification_handler("notifications/roots/list_changed", types.NotificationParams, handler)
    elif hasattr(low, "notification_handlers"):  # pragma: no cover - mcp 1.x: by type, handler(notification)
        low.notification_handlers[types.RootsListChangedNotification] = handler


async def _client_folders(ctx: Context, timeout: float) -> list[Path]:
    """The client's roots that are local folders (file:// URIs), in its order; [] when it offers none (raises when
    it offers roots but roots/list fails or takes longer than ``timeout``)."""
    import warnings

    from codeneedle.server.uris import uri_to_path

    try:
        capabilities = ctx.client_capabilities if hasattr(ctx, "client_capabilities") else \
            ctx.session.client_params.capabilities
    except (AttributeError, ValueError):
        return []
    if capabilities is None or getattr(capabilities, "roots", None) is None:
        return []
    with anyio.fail_after(timeout), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mcp marks roots deprecated from protocol 2026-07-28 on
        listed = await ctx.session.list_roots()
    return [path for root in listed.roots if (path := uri_to_path(str(root.uri))) is not None]


async def _answer(ctx: Context | None, needle: NeedleMCP, fn: Callable[..., dict[str, Any]],
                  **kwargs: Any) -> dict[str, Any]:
    """A tool body (``_guard(fn, **kwargs)``) on a worker thread, while the event loop stays free for pings and
    cancellations. A call that waits on an index build (the first on a cold repository waits up to
    NEEDLE_MCP_WAIT) sends notifications/progress when the client gave a progressToken, so it is not a silent
    block. A cancelled call (notifications/cancelled, or the client gone) returns at once, its thread left to
    finish on its own: what it waits on is the build, which belongs to the server (closed with it), not to the
    call."""
    def body() -> dict[str, Any]:
        with needle.calling():
            return _guard(fn, **kwargs)

    if ctx is None or _progress_token(ctx) is None:
        return await anyio.to_thread.run_sync(body, abandon_on_cancel=True)
    done, outcome = anyio.Event(), []
    before = {root: p.count for root, p in needle.progress().items()}  # taken before the body can start a build
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_report_progress, ctx, needle, before, done)
        try:  # the body's error is raised below, as it is: inside the group it would come out wrapped in a group
            outcome.append(await anyio.to_thread.run_sync(body, abandon_on_cancel=True))
        except Exception as exc:  # noqa: BLE001 - re-raised below
            outcome.append(exc)
        finally:
            done.set()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def _progress_token(ctx: Context) -> str | int | None:
    try:
        meta = ctx.request_context.meta
    except (AttributeError, ValueError):  # no request behind this context
        return None
    if not isinstance(meta, dict):  # mcp 1.x: a model
        meta = {"progress_token": getattr(meta, "progressToken", None)}
    token = meta.get("progress_token")
    return token if token is not None else meta.get("progressToken")


async def _report_progress(ctx: Context, needle: NeedleMCP, before: dict[Path, int], done: anyio.Event) -> None:
    """notifications/progress while the call waits on index builds: a percentage out of 100, which only grows as
    MCP requires, and what is being done (``indexing /repo: embedding 300/1200 chunks``). Only builds that made
    progress during this call and have files to read or chunks to embed count (a stat-only refresh that found
    nothing changed says nothing), and a build that embedded chunks is reported once more before the answer (one
    quicker than a look is still said)."""
    sent = -1
    while True:
        with anyio.move_on_after(PROGRESS_INTERVAL_S):
            await done.wait()
        moved = [p for root, p in needle.progress().items() if p.count > before.get(root, 0)
                 and (p.embeds if done.is_set() else p.works)]  # the final look: builds that embedded something
        if moved and (pct := min(p.percentage for p in moved)) > sent:
            sent = pct
            await ctx.report_progress(pct, 100, "; ".join(p.message for p in moved))
        if done.is_set():
            return


def _guard(fn, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a tool body, turning Needle's own errors into tool errors with their one-line message.

    String arguments are checked first (size caps, NUL, lone surrogates, backslashes in globs), so a bad
    request is refused by name before any work; an unexpected failure still names its cause.
    """
    for name, value in kwargs.items():
        problem = check_value(name, value)
        if problem:
            raise ToolError(problem)
    try:
        return _wire_safe(fn(*args, **kwargs))
    except NeedleError as exc:
        raise ToolError(_wire_safe(str(exc))) from None
    except ToolError as exc:
        if (text := _wire_safe(str(exc))) == str(exc):
            raise
        raise ToolError(text) from exc.__cause__
    except (ValueError, OSError) as exc:
        raise ToolError(_wire_safe(f"{fn.__name__} failed: {exc}")) from None


def _wire_safe(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD. A repository in a folder whose name
    is not UTF-8 (``caf\\xe9/``) has its root and messages in lone surrogates (surrogateescape), which no UTF-8
    JSON can carry: the SDK failed every tool with "Error executing tool search". Text without any (every
    result's path, name and snippet, all of them UTF-8) is returned as it is."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_wire_safe(k): _wire_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire_safe(v) for v in value]
    return value


class _NeedleServer(_MCPServer):
    """The SDK's server with tool errors worded for the model: ``search: "query" must be a string``.

    The SDK answers arguments that do not fit a tool with pydantic's multi-line dump (ending in a link to
    errors.pydantic.dev) and prefixes every tool error with "Error executing tool NAME:".
    """

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        extra = () if context is None else (context,)  # mcp 1.x's call_tool takes no context
        for field in ("k", "line"):
            # pydantic's lax mode reads true as 1: a client sending a boolean there has a bug worth naming.
            if isinstance((arguments or {}).get(field), bool):
                raise ToolError(f'{name}: "{field}" must be an integer, not {str(arguments[field]).lower()}')
        properties = (await self._input_schema(name)).get("properties")
        unknown = [key for key in arguments or {} if key not in (properties or {}) and not key.startswith("_")]
        if properties is not None and unknown:
            # pydantic drops them: `exclude` (the language server's name) would search with no exclusion at all.
            # Keys starting with "_" (`_meta`) are a client's own and pass.
            takes = f"it takes {', '.join(properties)}" if properties else "it takes no arguments"
            raise ToolError(f"{name}: unknown argument{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))}; {takes}")
        try:
            return await super().call_tool(name, arguments, *extra)
        except UnexpectedToolError:
            raise  # a crash: the SDK keeps its text off the wire
        except ToolError as exc:
            # The cause stays a ValidationError where it was one: the SDK then logs the fields, not the values.
            raise ToolError(await self._tool_error_text(name, exc)) from exc.__cause__

    async def _tool_error_text(self, name: str, exc: ToolError) -> str:
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            return f"{name}: {argument_problems(cause.errors(), await self._input_schema(name))}"
        text = str(exc)
        prefix = f"Error executing tool {name}: "
        return f"{name}: {text[len(prefix):]}" if text.startswith(prefix) else text

    async def _input_schema(self, name: str) -> dict[str, Any]:
        """The input schema tools/list advertises for ``name`` (what argument errors are worded from). Read once:
        every call checks its argument names against it, and the tools are all registered before serving."""
        schemas: dict[str, dict[str, Any]] | None = getattr(self, "_schemas", None)
        if schemas is None:
            schemas = self._schemas = {
                tool.name: dict(getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None) or {})
                for tool in await self.list_tools()}
        return schemas.get(name, {})


async def _explain_refusals(ctx: Any, call_next: Any) -> Any:
    """Middleware: the SDK's bare -32602 "Invalid request parameters" (data "") said as what is wrong.

    The SDK gives that answer to a request before ``initialize`` and to params that do not fit the method. The
    code stays -32602, the one the SDK pins for both: MCP defines no "not initialized" code, and LSP's -32002
    (ServerNotInitialized) is a number MCP retired from its own use (resource not found), so it would mislead.
    """
    try:
        return await call_next(ctx)
    except MCPError as exc:
        if ctx.request_id is None or exc.error.code != INVALID_PARAMS or ctx.method == "initialize" \
                or getattr(ctx.session, "client_params", None) is not None:
            raise
        raise MCPError(INVALID_PARAMS, f"the server is not initialized: send initialize first ({ctx.method} "
                                       "came before it)") from None
    except ValidationError as exc:
        # Only the SDK's check of a request's params ("CallToolRequest", "...RequestParams"); any other
        # ValidationError is not the client's params and keeps the SDK's answer.
        if ctx.request_id is None or not exc.title.endswith(("Request", "RequestParams")):
            raise
        raise MCPError(INVALID_PARAMS, f"Invalid params for {ctx.method}: {params_problems(exc.errors())}") from None


def _new_server() -> _MCPServer:
    try:
        return _NeedleServer(name="needle", instructions=INSTRUCTIONS, version=__version__,
                             middleware=[_explain_refusals])
    except (TypeError, ValueError):  # pragma: no cover - older SDKs take no version and no middleware
        return _NeedleServer(name="needle", instructions=INSTRUCTIONS)


# The bounds the tools check, advertised in their input schemas too (a client or model that reads the schema
# sends a valid call the first time); checked by the tools themselves, whose errors say more than pydantic's.
_K_RANGE = {"minimum": 1, "maximum": MAX_K}
# What a client may assume of every tool (MCP's defaults say the opposite: may change and destroy things, reaches
# out to the world): they read the repository and write nothing of the user's, only Needle's own index (.needle/,
# a cache git ignores), and nothing leaves the machine. Clients use this to run such calls side by side and to
# ask fewer confirmations.
_LOOKS_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def build_server(needle: NeedleMCP | None = None) -> _MCPServer:
    """The MCP server with Needle's three tools registered over ``needle`` (default: root from env or cwd)."""
    needle = needle or NeedleMCP()
    server = _new_server()
    roots = _ClientRoots(needle)
    _on_roots_changed(server, roots.changed)

    @server.tool(title="Search code", annotations=_LOOKS_ONLY, description=(
        "Semantic + keyword search over the repository's code. Describe what the code does "
        "(e.g. 'parse a config file') or name identifiers. Returns the best matching functions, classes "
        "and blocks, best first: path (relative to the root, or to repo where a result names one), "
        "start_line/end_line (1-based), name, kind, language, score (the cosine similarity of query and code; "
        "the order also weighs keywords and a re-ranker, so scores need not decrease; good_match is false when "
        "even the best is below the match threshold and none is verbatim: true, holding the query's Chinese, "
        "Japanese or Korean words as typed), snippet (the first lines only: read start_line-end_line "
        "of the file for the rest); in a Jupyter notebook also cell (1-based) and cell_start_line/cell_end_line "
        "(lines in that cell)."))
    async def search(
        query: Annotated[str, Field(description="what you are looking for, in words or identifiers",
                                    json_schema_extra={"minLength": 1, "maxLength": MAX_QUERY_CHARS})],
        k: Annotated[int, Field(description=f"number of results, 1 to {MAX_K}", json_schema_extra=_K_RANGE)] = 10,
        lang: Annotated[str | list[str] | None, Field(description=(
            "only these languages: 'python,go' or ['python', 'go']; a format ('vue', 'svelte', 'jupyter', "
            "'markdown') selects its files, code and text alike"))] = None,
        glob: Annotated[str | None, Field(description=(
            "only paths matching this glob, read as in .gitignore: without a '/' it matches names at any depth "
            "('*.py', 'loader.py'), with one it is relative to the root ('src/*.py': files directly in src; "
            "'src/**/*.py' or 'src/': anywhere under src); '!dist/**' leaves paths out"))] = None,
        path: Annotated[str | None, Field(description=(
            "a repository folder to search, or a folder or file inside one to search there only (relative to the "
            "root or absolute; default: the server's root and its extra roots)"))] = None,
        exclude_glob: Annotated[str | list[str] | None, Field(description=(
            "leave out paths matching this glob or these, e.g. 'dist/**' or ['dist/**', '**/*.test.js']"))] = None,
        kind: Annotated[str | list[str] | None, Field(description=(
            "only these kinds of code: 'function', 'method', 'class', 'block', 'text', or 'def' for every named "
            "definition; 'function,method' or a list"))] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        await roots.adopt(ctx)
        return await _answer(ctx, needle, needle.search, query=query, k=k, lang=lang, glob=glob, path=path,
                             exclude_glob=exclude_glob, kind=kind)

    @server.tool(title="Find similar code", annotations=_LOOKS_ONLY, description=(
        "Code most similar to the function or block at path:line (the chunk itself excluded), "
        "e.g. to find duplicates or other implementations of the same idea."))
    async def similar(
        path: Annotated[str, Field(description=(
            "file path as a search result gives it (relative to its repo, or to the root) or absolute"))],
        line: Annotated[int, Field(description="1-based line inside the function", json_schema_extra={"minimum": 1})],
        k: Annotated[int, Field(description=f"number of results, 1 to {MAX_K}", json_schema_extra=_K_RANGE)] = 10,
        cell: Annotated[int | None, Field(description=(
            "in a Jupyter notebook: the cell (1-based, as results give it); line is then a line of that cell"),
            json_schema_extra={"minimum": 1})] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        await roots.adopt(ctx)
        return await _answer(ctx, needle, needle.similar, path=path, line=line, k=k, cell=cell)

    @server.tool(title="Index status", annotations=_LOOKS_ONLY, description=(
        "What the index holds: root, index folder, model, file and chunk counts, languages, last update, "
        "skipped files, and state (indexing or ready); with extra roots, each repository's under repos."))
    async def status(ctx: Context | None = None) -> dict[str, Any]:
        await roots.adopt(ctx)
        return await _answer(ctx, needle, needle.status)

    return server


def serve_mcp(root: str | os.PathLike[str] | None = None, settings: IndexSettings | None = None,
              extra_roots: list[str] | None = None, explicit: Iterable[str] = ()) -> None:
    """Serve MCP on stdio until the client closes the connection (the CLI's `needle mcp`).

    ``root`` defaults to ``$NEEDLE_ROOT``, then the working directory; ``extra_roots`` to ``$NEEDLE_EXTRA_ROOTS``;
    ``explicit``: the index settings its command line gave (the others are each index's stored ones).
    """
    needle = NeedleMCP(root, settings, extra_roots=extra_roots, explicit=explicit)
    try:
        anyio.run(_run_stdio, build_server(needle))
    finally:
        needle.close()


async def _run_stdio(server: _MCPServer) -> None:
    """The SDK's stdio loop, with bad lines answered (see mcp_wire) instead of silently dropped or misread."""
    from mcp.server.stdio import stdio_server

    low = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server", None)
    if low is None:  # pragma: no cover - an SDK without the low-level server attribute: plain loop
        await server.run_stdio_async()
        return
    with claimed_stdin() as wire:
        lines = ScreenedLines(text_lines(wire))
        async with stdio_server(stdin=lines) as (read, write):  # type: ignore[arg-type]
            lines.answer_to(write)
            await low.run(ScreenedStream(read, write), write, low.create_initialization_options())
