"""`needle lsp` as editors with no Needle plugin meet it: Helix, Emacs (eglot, lsp-mode), Sublime Text LSP, Kate.

Emacs talks to the server through pytest-lsp with its recorded capabilities (Emacs 29.1: eglot offers the position
encodings utf-32, utf-8, utf-16, in that order); the others are hand-written clients sending what those editors send,
read from their sources: Helix offers utf-8 first and sends `:lsp-workspace-command needle.search "..."` as a list of
plain values; Sublime LSP's `lsp_execute` expands `$file_uri`, `$position` or `$text_document_position` only as whole
arguments; Helix, Kate, Sublime LSP and Zed push their `settings` block as it is written (usually without the `needle`
wrapper) and answer workspace/configuration's section `needle` with null. A real server over a tiny repository
holding non-ASCII lines, the real encoder.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import NEEDLE
from tests.lsp.rawclient import RawClient

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

READY_TIMEOUT = 240

FILES = {
    "src/accents.py": '''def saluer(nom):
    """Dit bonjour en français, poliment."""
    return f"Bonjour {nom}, ça va? café é"


def emoji_party(guests):
    """Throw a party for the guests with balloons."""
    return "🎉" * len(guests) + "🎈🎈 fête"
''',
    "src/retry.py": '''import time


def retry_with_backoff(call, attempts=5):
    """Retry a failing call, waiting twice as long after each failure."""
    delay = 0.1
    for _ in range(attempts):
        try:
            return call()
        except Exception:
            time.sleep(delay)
            delay *= 2
    raise RuntimeError("gave up")
''',
    "cmd/greet.go": '''package main

import "fmt"

// Greet prints a friendly greeting for a name.
func Greet(name string) {
	fmt.Println("hello", name)
}
''',
}


def make_repo(path: Path) -> Path:
    (path / ".git").mkdir(parents=True)
    for rel, text in FILES.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text, encoding="utf-8")
    return path


def last_line(path: Path, name: str) -> tuple[int, str]:
    """0-based index and text of the last line of the function ``name`` (its body ends the file or a blank line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next((i - 1 for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines) - 1)
    return end, lines[end]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("editors") / "repo")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[str(NEEDLE), "lsp"]))
async def emacs(lsp_client: LanguageClient, repo: Path):
    lsp_client.repo = repo

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:  # eglot watches files for servers that ask
        pass

    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("emacs"),
        root_uri=repo.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name="repo")],
    ))
    lsp_client.init_result = result
    deadline = time.monotonic() + READY_TIMEOUT
    while (await execute(lsp_client, "needle.status"))["state"] != "ready" and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    yield
    await lsp_client.shutdown_session()


async def execute(client: LanguageClient, command: str, *arguments):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=list(arguments)))


async def test_emacs_gets_ranges_in_utf32_code_points_on_lines_with_accents_and_emoji(emacs: LanguageClient):
    assert emacs.init_result.capabilities.position_encoding == "utf-32"  # eglot's first choice
    path = emacs.repo / "src/accents.py"
    for name, query in (("emoji_party", "throw a party with balloons"), ("saluer", "say hello in French")):
        end, text = last_line(path, name)
        hit = next(h for h in await execute(emacs, "needle.search", {"query": query}) if h["name"] == name)
        assert hit["range"]["end"] == {"line": end, "character": len(text)}, (name, text)
        symbol = next(s for s in await emacs.workspace_symbol_async(types.WorkspaceSymbolParams(query=query))
                      if s.name == name)
        assert (symbol.location.range.end.line, symbol.location.range.end.character) == (end, len(text))


async def test_commands_take_the_arguments_generic_clients_can_build(emacs: LanguageClient):
    """The object form is what the plugins send; a client without one sends the fields in order (Helix's
    `:lsp-workspace-command needle.search "..."`, Sublime's `["$file_uri", "$position"]`) or LSP's
    TextDocumentPositionParams for the cursor (Sublime's `$text_document_position`, eglot's and lsp-mode's helpers).
    Each form answers what the object answers."""
    repo = emacs.repo
    query = "retry a failing call with backoff"
    as_object = await execute(emacs, "needle.search", {"query": query, "k": 2})
    assert as_object[0]["name"] == "retry_with_backoff"
    assert await execute(emacs, "needle.search", query, 2) == as_object
    assert await execute(emacs, "needle.search", query) == await execute(emacs, "needle.search", query, None)
    # Emacs Lisp's "not given" is nil, sent as null: a field left at its default, as in the settings
    assert await execute(emacs, "needle.search", {"query": query, "k": None, "lang": None}) == \
        await execute(emacs, "needle.search", {"query": query})

    uri = (repo / "src/accents.py").as_uri()
    position = {"line": 7, "character": 12}  # on the first emoji of emoji_party's last line
    similar = await execute(emacs, "needle.similar", {"uri": uri, "position": position})
    assert similar and all(h["name"] != "emoji_party" for h in similar)  # the function itself is left out
    assert await execute(emacs, "needle.similar", uri, position) == similar
    assert await execute(emacs, "needle.similar",
                         {"textDocument": {"uri": uri, "version": 3}, "position": position}) == similar
    assert len(await execute(emacs, "needle.similar", uri, position, 1)) == 1

    started = await execute(emacs, "needle.reindex", repo.as_uri())
    assert started == {"started": True, "folders": [str(repo)]}
    for arguments in ((), ({},), (None,)):
        assert (await execute(emacs, "needle.status", *arguments))["folders"][0]["root"] == str(repo)

    # A form that fits no command still says what was wrong, naming the fields.
    for command, arguments, message in (
        ("needle.search", (query, 2, "python"), "expected at most 2 arguments (query, k) or one object, got 3"),
        ("needle.search", (query, "5"), "'k': expected integer, got string"),
        ("needle.similar", ({"textDocument": uri, "position": position},), 'textDocument must be an object with a "uri"'),
        ("needle.status", (uri,), "the argument must be an object"),
    ):
        with pytest.raises(JsonRpcException) as err:
            await execute(emacs, command, *arguments)
        assert err.value.code == -32602 and message in err.value.message, (command, arguments, err.value.message)


async def test_arguments_that_are_not_an_array_are_refused_not_misread(tmp_path):
    """An Emacs plist written without its vector (`:arguments (:query "...")`) arrives as an object: it is refused
    with the form to use, where it used to be read as the list of its keys (a search for "query")."""
    c = RawClient()
    try:
        c.initialize(make_repo(tmp_path / "repo"))
        for arguments, kind in (({"query": "retry a failing call"}, "an object"), ("retry", "a string")):
            error = c.request("workspace/executeCommand", {"command": "needle.search", "arguments": arguments})["error"]
            assert error["code"] == -32602 and error["message"].endswith(
                f'arguments must be an array, as in "arguments": [{{"query": "..."}}], got {kind}'), error
    finally:
        assert c.close() == 0


async def test_helix_gets_ranges_in_utf8_bytes(tmp_path):
    """Helix offers utf-8 first."""
    repo = make_repo(tmp_path / "repo")
    c = RawClient()
    try:
        init = c.initialize(repo, capabilities={"general": {"positionEncodings": ["utf-8", "utf-32", "utf-16"]},
                                                "window": {"workDoneProgress": True}})
        assert init["result"]["capabilities"]["positionEncoding"] == "utf-8"
        c.wait_ready(READY_TIMEOUT)
        end, text = last_line(repo / "src/accents.py", "emoji_party")
        symbols = c.request("workspace/symbol", {"query": "throw a party with balloons"})["result"]
        symbol = next(s for s in symbols if s["name"] == "emoji_party")
        assert symbol["location"]["range"]["end"] == {"line": end, "character": len(text.encode("utf-8"))}
    finally:
        assert c.close() == 0


async def test_a_client_that_declares_nothing_is_sent_nothing_it_did_not_ask_for(tmp_path):
    """No window.workDoneProgress, no workspace.configuration, no dynamic registration (a minimal client): the
    server indexes and answers all the same, and never sends $/progress, workspace/configuration or
    client/registerCapability, which such a client would take for protocol errors."""
    repo = make_repo(tmp_path / "repo")
    c = RawClient()
    try:
        c.initialize(repo, capabilities={})
        c.wait_ready(READY_TIMEOUT)
        assert c.request("workspace/symbol", {"query": "retry a failing call"})["result"][0]["name"] == \
            "retry_with_backoff"
        assert c.server_requests == []
        assert not [n for n in c.notifications if n["method"] == "$/progress"]
    finally:
        assert c.close() == 0


async def test_settings_pushed_without_the_needle_wrapper_are_used(tmp_path):
    """Kate, Sublime LSP, Zed and Helix send their `settings` block through workspace/didChangeConfiguration as the
    user wrote it, right after `initialized`, and answer workspace/configuration's section `needle` with null: the
    pushed block is read as initializationOptions are, wrapped in `needle` or not."""
    repo = make_repo(tmp_path / "repo")
    c = RawClient(configuration=None)  # the answer to workspace/configuration: null for the section
    try:
        c.initialize(repo, capabilities={"workspace": {"configuration": True,
                                                       "didChangeConfiguration": {"dynamicRegistration": True}}})
        c.notify("workspace/didChangeConfiguration", {"settings": {"exclude": ["cmd/**"]}})
        st = c.wait_status(lambda st: st["state"] == "ready" and bool(st["folders"])
                           and "go" not in st["folders"][0].get("languages", ["go"]), 120)
        (folder,) = st["folders"]
        assert folder["state"] == "ready" and "python" in folder["languages"] and "go" not in folder["languages"], folder
        assert not c.command("needle.search", {"query": "print a friendly greeting", "glob": "cmd/**"})["result"]
        # These editors send their whole block each time: a setting the user deleted is gone (it stayed in force
        # until the server restarted); the block replaces the one pushed before, over initializationOptions.
        c.notify("workspace/didChangeConfiguration", {"settings": {"rerank": False}})
        st = c.wait_status(lambda st: st["state"] == "ready" and bool(st["folders"])
                           and "go" in st["folders"][0].get("languages", []), 120)
        assert c.command("needle.search", {"query": "print a friendly greeting", "glob": "cmd/**"})["result"]
    finally:
        assert c.close() == 0


async def test_a_query_adapter_fit_does_not_outlive_the_server(tmp_path):
    """Opening results starts a fit in a child process; an editor that closes the pipe then (quitting, or killing
    the session) leaves no process behind: the fit goes with the server."""
    repo = make_repo(tmp_path / "repo")
    c = RawClient()
    fits: list[int] = []
    try:
        c.initialize(repo)
        c.wait_ready(READY_TIMEOUT)
        query = "retry a failing call with backoff"
        hit = c.command("needle.search", {"query": query})["result"][0]
        opened = {"query": query, "uri": hit["uri"], "line": hit["range"]["start"]["line"], "name": hit["name"]}
        answers = [c.command("needle.opened", opened)["result"] for _ in range(5)]
        assert answers[-1] == {"recorded": True, "adapting": True}, answers  # the fifth open starts a fit
        deadline = time.monotonic() + 30
        while not fits and time.monotonic() < deadline:
            fits = [pid for pid, args in _children(c.proc.pid) if "--adapter" in args]
            time.sleep(0.02)
        assert fits, "the fit never started"
    finally:
        c.proc.stdin.close()  # the editor goes, without shutdown or exit
        assert c.proc.wait(60) == 0
        c.close()
    left = [pid for pid in fits if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    assert not left, f"the fit {left} outlived the server"


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of each child process of ``pid``, from /proc."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            if ppid == pid:
                found.append((int(proc.name), (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def _zombie(pid: int) -> bool:
    """Dead, not yet reaped by whoever adopted it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


async def test_range_ends_count_the_characters_the_editor_shows(tmp_path):
    """A Python file in a declared legacy encoding (PEP 263; Emacs honours the same cookie) is text in that
    encoding to an editor, and a byte-order mark is no character of the first line: a utf-8 client (Helix, Neovim)
    counts the UTF-8 bytes of the characters it shows."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "prix.py").write_bytes(
        "# -*- coding: latin-1 -*-\n\ndef prix_du_café(tasses):\n"
        '    """Le prix total du café pour un nombre de tasses."""\n'
        "    return tasses * 2.5  # coût en écus à la crème\n".encode("latin-1"))
    (repo / "bom.py").write_bytes("\ufeffdef saluer_le_matin(): return 'bonjour, ça va'\n".encode("utf-8"))
    c = RawClient()
    try:
        c.initialize(repo, capabilities={"general": {"positionEncodings": ["utf-8"]}})
        c.wait_ready(READY_TIMEOUT)
        for query, name, line, text in (
            ("total price of the coffee", "prix_du_café", 4, "    return tasses * 2.5  # coût en écus à la crème"),
            ("say good morning", "saluer_le_matin", 0, "def saluer_le_matin(): return 'bonjour, ça va'"),
        ):
            hit = next(h for h in c.command("needle.search", {"query": query})["result"] if h["name"] == name)
            assert hit["range"]["end"] == {"line": line, "character": len(text.encode("utf-8"))}, name
    finally:
        assert c.close() == 0


class HeldConfigurationClient(RawClient):
    """A client whose answers to workspace/configuration wait while ``hold`` is set, until ``answer_held()``: an
    editor slow to answer while the user goes on changing its workspace."""

    hold = False

    def __init__(self, *args, **kwargs):
        self.held: list[dict] = []
        super().__init__(*args, **kwargs)

    def _dispatch(self, msg: dict) -> None:
        if self.hold and msg.get("method") == "workspace/configuration" and "id" in msg:
            self.held.append(msg)
            return
        super()._dispatch(msg)

    def wait_held(self, timeout: float = 30.0) -> bool:
        """Whether a workspace/configuration request came (and is held) within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.held and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(self.held)

    def answer_held(self) -> None:
        for msg in self.held:
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": self._answer(msg)})
        self.held.clear()


async def test_a_folder_removed_while_its_settings_are_asked_for_stays_removed(tmp_path):
    """A settings change asks the client for each open folder's settings; a folder the client removes before it
    answers was opened again (indexed and watched, though no longer in the editor) when the answer came."""
    repo = make_repo(tmp_path / "repo")
    c = HeldConfigurationClient(configuration=None)
    try:
        c.initialize(repo, capabilities={"workspace": {"configuration": True, "workspaceFolders": True}})
        assert c.wait_status(lambda st: bool(st["folders"]), READY_TIMEOUT)["folders"]
        c.hold = True
        c.notify("workspace/didChangeConfiguration", {"settings": {"exclude": ["cmd/**"]}})
        assert c.wait_held(), "the server asked for no settings after the change"
        c.notify("workspace/didChangeWorkspaceFolders",
                 {"event": {"added": [], "removed": [{"uri": repo.as_uri(), "name": repo.name}]}})
        assert not c.wait_status(lambda st: not st["folders"], 30)["folders"]
        c.answer_held()
        assert not c.command("needle.status")["result"]["folders"]
        # The same for a folder added, then removed before its settings came.
        c.notify("workspace/didChangeWorkspaceFolders",
                 {"event": {"added": [{"uri": repo.as_uri(), "name": repo.name}], "removed": []}})
        assert c.wait_held(), "the server asked for no settings for the added folder"
        c.notify("workspace/didChangeWorkspaceFolders",
                 {"event": {"added": [], "removed": [{"uri": repo.as_uri(), "name": repo.name}]}})
        c.hold = False
        c.answer_held()
        assert not c.command("needle.status")["result"]["folders"]
    finally:
        assert c.close() == 0
