"""End-to-end tests of `needle lsp` through pytest-lsp, as Neovim 0.11 and VS Code (their recorded capabilities).

One server per client kind (module scope) over its own copy of the minirepo fixture: it builds the index in
the background with the real encoder, and every test talks to it the way that editor would.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codeneedle.indexer.models import default_model_name
from tests.conftest import FIXTURES, NEEDLE, run_needle
from tests.lsp.rawclient import RawClient

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CLIENTS = ["neovim@v0.11", "visual-studio-code"]
READY_TIMEOUT = 240


def line_of(path: Path, prefix: str) -> int:
    """0-based index of the first line starting with ``prefix``."""
    for i, line in enumerate(path.read_text().splitlines()):
        if line.startswith(prefix):
            return i
    raise AssertionError(f"{prefix!r} not in {path}")


@pytest_lsp.fixture(
    scope="module", params=CLIENTS,
    config=ClientServerConfig(server_command=[str(NEEDLE), "lsp"]),
)
async def client(request, lsp_client: LanguageClient, tmp_path_factory):
    kind = request.param
    repo = tmp_path_factory.mktemp(kind.split("@")[0]) / "repo"
    shutil.copytree(FIXTURES / "minirepo", repo)
    lsp_client.repo = repo
    lsp_client.kind = kind
    lsp_client.registrations = []

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(params.registrations)

    if kind.startswith("visual-studio-code"):
        # VS Code answers workspace/configuration per folder; this one leaves lib/ out of the index and has
        # turned the feedback log off.
        lsp_client.set_configuration({"exclude": ["lib/**"], "search": {"maxResults": 20}, "feedback": False},
                                     section="needle")
        options = None
    else:
        # Neovim users pass one object as init_options; an invalid value falls back with a warning, and so
        # does a model folder that is not there (the settings are evolved to the default model).
        options = {"maxFileBytes": "lots", "model": "./no-such-model"}
    params = types.InitializeParams(
        capabilities=client_capabilities(kind),
        root_uri=repo.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name="repo")],
        initialization_options=options,
    )
    started = time.perf_counter()
    result = await lsp_client.initialize_session(params)
    lsp_client.init_seconds = time.perf_counter() - started
    lsp_client.init_result = result
    yield
    await lsp_client.shutdown_session()


async def status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="needle.status", arguments=[]))


async def wait_ready(client: LanguageClient, timeout: float = READY_TIMEOUT, states=("ready",)) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = await status(client)
        if st["state"] in states or time.monotonic() > deadline:
            return st
        await asyncio.sleep(0.25)


async def search(client: LanguageClient, query: str, **extra) -> list[dict]:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="needle.search", arguments=[{"query": query, **extra}]))


async def test_initialize_is_fast_and_advertises_commands(client: LanguageClient):
    caps = client.init_result.capabilities
    assert set(caps.execute_command_provider.commands) >= {
        "needle.search", "needle.similar", "needle.reindex", "needle.status"}
    assert caps.workspace_symbol_provider
    assert caps.text_document_sync.save
    # Includes spawning Python and importing pygls; torch & co would add seconds. The pure initialize
    # round trip (server already up) is checked against < 1 s in test_server_fuzz.py.
    assert client.init_seconds < 3.0, f"initialize took {client.init_seconds:.2f}s"


async def test_server_modules_import_nothing_heavy():
    code = ("import sys, codeneedle.server.app; "
            "print(sorted(m for m in ('torch', 'transformers', 'usearch', 'numpy', 'sqlite_utils') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_queries_are_answered_while_indexing(client: LanguageClient):
    """Straight after initialize the index may be empty or partial, but every query is answered (never an error
    or a wait for the build), and once the build is done the described function leads."""
    retry = (client.repo / "src/net/retry.go").as_uri()
    answers: list[tuple[str, list[tuple[str, str]]]] = []
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        state = (await status(client))["state"]
        hits = await search(client, "retry with backoff")
        answers.append((state, [(h["uri"], h["name"]) for h in hits]))
        if state == "ready" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert all(uri.startswith(client.repo.as_uri()) for _, hits in answers for uri, _ in hits), answers
    final_state, final_hits = answers[-1]
    assert final_state == "ready" and final_hits[0] == (retry, "RetryWithBackoff"), answers


async def test_progress_begins_and_ends(client: LanguageClient):
    st = await wait_ready(client)
    assert st["state"] == "ready", st
    begins = [(t, v) for t, vs in client.progress_reports.items() for v in vs
              if isinstance(v, types.WorkDoneProgressBegin)]
    assert begins, client.progress_reports
    token = begins[0][0]
    kinds = [type(v).__name__ for v in client.progress_reports[token]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd", kinds
    assert "indexing" in begins[0][1].title and begins[0][1].cancellable
    # Progress is counted in files while reading them, then in chunks while embedding; it never goes back.
    reports = [v for v in client.progress_reports[token] if isinstance(v, types.WorkDoneProgressReport)]
    assert any("chunks" in (r.message or "") for r in reports), [r.message for r in reports]
    percentages = [r.percentage for r in reports if r.percentage is not None]
    assert percentages == sorted(percentages), percentages


async def test_status_reports_the_index(client: LanguageClient):
    st = await wait_ready(client)
    (folder,) = st["folders"]
    assert folder["root"] == str(client.repo)
    assert folder["indexDir"] == str((client.repo / ".needle").resolve())
    assert folder["state"] == "ready" and not folder["readOnly"]
    assert folder["files"] >= 5 and folder["chunks"] >= 10
    assert folder["lastUpdate"] and folder["model"].startswith(default_model_name())
    assert isinstance(folder["skipped"], dict)


async def test_settings_from_each_client(client: LanguageClient):
    st = await wait_ready(client)
    languages = st["folders"][0]["languages"]
    if client.kind.startswith("visual-studio-code"):
        assert "ruby" not in languages, "needle.exclude from workspace/configuration was ignored"
    else:
        assert "ruby" in languages
        warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
        assert any("needle.maxFileBytes" in w and "default" in w for w in warnings), warnings
        assert any("needle.model" in w and "no-such-model" in w and "using the default model" in w
                   for w in warnings), warnings
        assert "no-such-model" not in st["folders"][0]["model"]  # indexed with the default model instead


async def test_file_watching_is_registered_when_supported(client: LanguageClient):
    await wait_ready(client)
    methods = [r.method for r in client.registrations]
    if client.kind.startswith("visual-studio-code"):  # dynamicRegistration: true
        assert methods == [types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    else:
        assert methods == []


async def test_search_returns_uris_and_ranges(client: LanguageClient):
    await wait_ready(client)
    hits = await search(client, "retry a failing call with exponential backoff", k=5)
    top = hits[0]
    path = client.repo / "src/net/retry.go"
    assert top["uri"] == path.as_uri()
    assert top["name"] == "RetryWithBackoff" and top["kind"] == "function" and top["language"] == "go"
    start = line_of(path, "func RetryWithBackoff")
    end = start + path.read_text().splitlines()[start:].index("}")
    assert top["range"] == {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 1}}
    assert "RetryWithBackoff" in top["snippet"] and 0 < top["score"] <= 1
    assert len(hits) <= 5 and all(h["uri"].startswith(client.repo.as_uri()) for h in hits)


async def test_search_filters(client: LanguageClient):
    await wait_ready(client)
    hits = await search(client, "configuration", lang="python", k=20)
    assert hits and all(h["language"] == "python" for h in hits)
    hits = await search(client, "cache", kind="class", k=20)
    assert hits and all(h["kind"] == "class" for h in hits)
    hits = await search(client, "cache", glob="src/main/**", k=20)
    assert hits and all("/src/main/" in h["uri"] for h in hits)
    # Exclusion at search time: a negated glob, or the exclude argument.
    for exclusion in ({"glob": "!src/**"}, {"exclude": ["src/**"]}, {"exclude": "src/**"}):
        hits = await search(client, "cache", k=20, **exclusion)
        assert hits and not any("/src/" in h["uri"] for h in hits), exclusion
    # A glob that matches no indexed file: no results, and the editor is told why, once typing stops (search as
    # you type sends each partial glob: only the last one is said).
    assert await search(client, "cache", glob="m") == []
    assert await search(client, "cache", glob="main/**") == []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("matches the glob 'main/**'" in m.message for m in client.messages):
        await asyncio.sleep(0.05)
    assert any("no indexed file matches the glob 'main/**'" in m.message for m in client.messages)
    assert not any("matches the glob 'm'" in m.message for m in client.messages)


async def test_results_keep_the_ranking_rules_order(client: LanguageClient):
    # The class LruCache has the higher cosine, but the rules put the method that evicts first (a class is a
    # summary of methods with chunks of their own); sorting the editor's list by score used to undo that. The
    # first stage alone: late interaction, this question's second stage, agrees with the cosine here.
    await wait_ready(client)
    hits = await search(client, "least recently used cache eviction", k=5, rerank=False)
    assert hits[0]["name"] == "LruCache.removeEldestEntry"
    summary = next(h for h in hits if h["name"] == "LruCache" and h["kind"] == "class")
    assert summary["score"] > hits[0]["score"]


async def test_the_editor_gets_the_clis_order_with_and_without_the_reranker_setting(client: LanguageClient):
    """One library call behind every door: `rerank: false` in needle.search is `--no-rerank`, and both defaults
    agree (the re-ranker when one is installed, else the first stage)."""
    await wait_ready(client)
    query = "read the settings from a configuration file"
    for flags, extra in (((), {}), (("--no-rerank",), {"rerank": False})):
        hits = await search(client, query, k=5, **extra)
        proc = await asyncio.to_thread(run_needle, "search", query, "--path", str(client.repo), "--json",
                                       "--no-refresh", "-k", "5", *flags)
        assert proc.returncode == 0, proc.stderr
        cli = json.loads(proc.stdout)["results"]
        assert [(h["name"], h["range"]["start"]["line"]) for h in hits] == \
            [(r["name"], r["start_line"] - 1) for r in cli], flags


async def test_scores_are_cosines_and_weak_hits_are_flagged(client: LanguageClient):
    await wait_ready(client)
    good = await search(client, "crc32 checksum of bytes", k=3)
    assert good[0]["name"] == "crc32_checksum" and not good[0]["weak"] and 0.35 <= good[0]["score"] < 0.99
    nonsense = await search(client, "zzqx blorf", k=5)
    assert nonsense and all(h["weak"] and h["score"] < 0.35 for h in nonsense)


async def test_similar_excludes_the_function_itself(client: LanguageClient):
    await wait_ready(client)
    path = client.repo / "src/config/loader.py"
    line = line_of(path, "def merge_settings")
    hits = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="needle.similar",
        arguments=[{"uri": path.as_uri(), "position": {"line": line + 2, "character": 4}, "k": 5}]))
    assert hits
    assert not any(h["uri"] == path.as_uri() and h["range"]["start"]["line"] == line for h in hits)
    assert all(set(h) == {"uri", "range", "name", "kind", "language", "score", "weak", "snippet"} for h in hits)


async def test_similar_reads_unsaved_text_the_client_sends(client: LanguageClient):
    await wait_ready(client)
    path = client.repo / "src/config/loader.py"
    edited = "# an unsaved line\n" + path.read_text().replace("result = dict(base)", "result = {**base}")
    line = edited.splitlines().index("def merge_settings(base, override):") + 2
    hits = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="needle.similar",
        arguments=[{"uri": path.as_uri(), "position": {"line": line, "character": 4}, "k": 5, "text": edited}]))
    assert hits
    assert all(h["name"] != "merge_settings" for h in hits), [h["name"] for h in hits]  # its saved version
    with pytest.raises(JsonRpcException, match="no code at"):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="needle.similar", arguments=[{"uri": path.as_uri(), "position": {"line": 400}, "text": edited}]))


async def test_an_opened_result_is_logged_for_training_unless_turned_off(client: LanguageClient):
    await wait_ready(client)
    query = "retry a failing call with exponential backoff"
    hits = await search(client, query, k=5)
    opened = hits[2]
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="needle.opened", arguments=[{
            "query": query, "uri": opened["uri"], "line": opened["range"]["start"]["line"], "name": opened["name"],
            "above": [{"uri": h["uri"], "line": h["range"]["start"]["line"]} for h in hits[:2]]}]))
    log = client.repo / ".needle" / "feedback.jsonl"
    if client.kind.startswith("visual-studio-code"):  # its configuration says "feedback": false
        assert answer == {"recorded": False, "adapting": False} and not log.exists()
        return
    assert answer == {"recorded": True, "adapting": False}  # one open: too few to learn from yet
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    rel = lambda h: h["uri"].removeprefix(client.repo.as_uri() + "/")  # noqa: E731
    assert event["query"] == query
    assert event["opened"] == {"path": rel(opened), "start_line": opened["range"]["start"]["line"] + 1,
                               "name": opened["name"]}
    assert [a["path"] for a in event["above"]] == [rel(h) for h in hits[:2]]
    with pytest.raises(JsonRpcException) as err:
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="needle.opened", arguments=[{"query": query, "uri": "file:///etc/passwd", "line": 0}]))
    assert err.value.code == -32602 and "outside the workspace" in err.value.message
    # a path people read, and the folders it is not in
    assert err.value.message.startswith("/etc/passwd is outside") and str(client.repo) in err.value.message
    with pytest.raises(JsonRpcException) as err:
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="needle.opened", arguments=[{"query": query, "uri": opened["uri"], "line": -1}]))
    assert err.value.code == -32602 and "line must be >= 0" in err.value.message


async def test_the_server_learns_from_opened_results_without_re_embedding(client: LanguageClient):
    """Once enough results were opened (the test above opened one), the server refits the folder's query adapter
    in the background; its next searches put what the user chose first."""
    if client.kind.startswith("visual-studio-code"):
        return  # its configuration turned the feedback log off, and with it the learning
    await wait_ready(client)
    query = "load and merge configuration files"
    hits = await search(client, query, k=5)
    wanted = hits[1]  # the user wanted loading (load_json_config), not merging (merge_settings, first)
    assert (hits[0]["name"], wanted["name"]) == ("merge_settings", "load_json_config")
    adapter = client.repo / ".needle" / "query_adapter.npz"
    answers = []
    try:
        for _ in range(4):
            answers.append(await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="needle.opened", arguments=[{
                    "query": query, "uri": wanted["uri"], "line": wanted["range"]["start"]["line"],
                    "name": wanted["name"]}])))
        assert [a["adapting"] for a in answers] == [False, False, False, True]  # the fifth open starts a fit
        deadline = time.monotonic() + 120
        while not adapter.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert adapter.exists()
        folder = (await status(client))["folders"][0]
        assert folder["queryAdapter"]["inUse"] and folder["queryAdapter"]["events"] == 5
        # The same query again: what the user opened comes first, whatever the re-ranker prefers (remembered.py;
        # the adapter's own effect on the ranking is tested through the CLI in test_query_adapter.py).
        for rerank in (True, False):
            first = (await search(client, query, k=5, rerank=rerank))[0]
            assert (first["uri"], first["range"]) == (wanted["uri"], wanted["range"])
    finally:
        # the later tests expect the encoder's own ranking, with nothing learned or remembered
        adapter.unlink(missing_ok=True)
        (client.repo / ".needle" / "feedback.jsonl").unlink(missing_ok=True)


async def test_workspace_symbol_is_semantic_search(client: LanguageClient):
    await wait_ready(client)
    symbols = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="crc checksum of bytes"))
    assert symbols
    top = symbols[0]
    path = client.repo / "src/hash/checksum.c"
    assert top.name == "crc32_checksum" and top.kind == types.SymbolKind.Function
    assert top.location.uri == path.as_uri()
    assert top.location.range.start.line == line_of(path, "uint32_t crc32_checksum")
    assert top.container_name == "src/hash/checksum.c"
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="")) == []


async def test_did_save_then_search_sees_the_change(client: LanguageClient):
    await wait_ready(client)
    path = client.repo / "src/config/loader.py"
    path.write_text(path.read_text() + '''

def convert_celsius_to_fahrenheit(celsius):
    """Convert a temperature from degrees Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32
''')
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri())))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hits = await search(client, "convert celsius temperature to fahrenheit", k=3)
        if hits and hits[0]["name"] == "convert_celsius_to_fahrenheit":
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail(f"the saved function never became searchable: {hits}")
    assert hits[0]["uri"] == path.as_uri()
    assert hits[0]["range"]["start"]["line"] == line_of(path, "def convert_celsius_to_fahrenheit")


async def test_cli_runs_beside_the_server_leave_its_index_working(client: LanguageClient):
    """A terminal's one-shot `needle search` / `needle status` read the index the editor's server writes (VS Code's
    settings differ from the CLI's defaults), and afterwards the server still answers and still writes.

    A reader's exit used to delete the server's -wal and -shm files: every later request of the server failed
    with "disk I/O error" and what it wrote went to a deleted file.
    """
    await wait_ready(client)
    assert (await search(client, "retry with backoff", k=3))[0]["name"] == "RetryWithBackoff"
    repo = str(client.repo)
    for args in (["search", "--no-refresh"], ["search"]):  # the second would update; the server is the writer
        proc = await asyncio.to_thread(run_needle, *args, "--json", "--path", repo, "crc32 checksum of bytes")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["results"][0]["name"] == "crc32_checksum"
    proc = await asyncio.to_thread(run_needle, "status", "--json", "--path", repo)
    assert proc.returncode == 0 and json.loads(proc.stdout)["files"] >= 5, proc.stderr
    index_dir = client.repo / ".needle"
    assert (index_dir / "index.db-wal").exists() and (index_dir / "index.db-shm").exists()
    # Index settings on a reader's command line are not stored: the settings file is the server's.
    stored = (index_dir / "settings.json").read_text() if (index_dir / "settings.json").exists() else None
    proc = await asyncio.to_thread(run_needle, "search", "--exclude", "web/**", "--json", "--path", repo, "crc32")
    assert proc.returncode == 0 and "index settings not stored" in proc.stderr, proc.stderr
    assert ((index_dir / "settings.json").read_text() if (index_dir / "settings.json").exists() else None) == stored

    hits = await search(client, "retry a failing call with exponential backoff", k=3)
    assert hits[0]["name"] == "RetryWithBackoff"
    path = client.repo / "src/config/units.py"
    path.write_text('def miles_to_kilometres(miles):\n    """Convert a distance in miles to kilometres."""\n'
                    "    return miles * 1.609344\n")
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri())))
    query = "convert a distance from miles to kilometres"
    deadline = time.monotonic() + 60
    while not (hits := await search(client, query, k=3)) or hits[0]["name"] != "miles_to_kilometres":
        assert time.monotonic() < deadline, f"the new function never became searchable: {hits}"
        await asyncio.sleep(0.25)
    # What the server wrote is in the shared database, not in a deleted log: the next CLI finds it too.
    proc = await asyncio.to_thread(run_needle, "search", "--no-refresh", "--json", "--path", repo, query)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["name"] == "miles_to_kilometres"


async def test_watched_file_deletion_leaves_the_index(client: LanguageClient):
    await wait_ready(client)
    path = client.repo / "src/hash/checksum.c"
    assert (await search(client, "crc32 checksum", k=3))[0]["uri"] == path.as_uri()
    path.unlink()
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=path.as_uri(), type=types.FileChangeType.Deleted)]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hits = await search(client, "crc32 checksum", k=10)
        if not any(h["uri"] == path.as_uri() for h in hits):
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail("the deleted file is still in the results")


@pytest.mark.parametrize("arguments, fragment", [
    ([{"query": 42}], "'query': expected string, got integer"),
    ([{"query": "x", "k": "ten"}], "'k': expected integer"),
    ([{"query": "x", "k": 0}], "k must be between 1"),
    ([{"qurey": "x"}], "missing required field 'query'"),
    ([7], "must be an object"),
    # a list of plain values is read as the fields in order (Helix, Sublime LSP): one too many is named
    (["just a string", 3, "python"], "expected at most 2 arguments (query, k) or one object, got 3"),
    ([{"query": "x" * 10_000}], "query is too long"),
    ([{"query": "x", "lang": "pyhton"}], "unknown language 'pyhton'; known: python, javascript"),
    ([{"query": "x", "lang": ","}], "lang ',' names no language"),
    ([{"query": "x", "kind": "funtion"}], "unknown kind 'funtion'"),
    ([{"query": "   "}], "the query is empty"),
    ([{"query": "x", "exclude": 7}], "'exclude': expected a string or a list of strings"),
])
async def test_bad_search_arguments_are_invalid_params(client: LanguageClient, arguments, fragment):
    with pytest.raises(JsonRpcException) as err:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="needle.search", arguments=arguments))
    assert err.value.code == -32602 and fragment in err.value.message, err.value.message


async def test_unknown_command_and_outside_uris_are_refused(client: LanguageClient):
    await wait_ready(client)
    with pytest.raises(JsonRpcException) as err:
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command="needle.nope"))
    assert err.value.code == -32602 and "needle.nope" in err.value.message
    outside = [
        "file:///etc/passwd",
        (client.repo / ".." / ".." / "etc" / "passwd").as_uri(),
        "https://example.com/x.py",
        "untitled:Untitled-1",
        "not a uri",
    ]
    for uri in outside:
        for command, args in (("needle.similar", {"uri": uri, "position": {"line": 0, "character": 0}}),
                              ("needle.reindex", {"uri": uri})):
            with pytest.raises(JsonRpcException) as err:
                await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command=command, arguments=[args]))
            assert err.value.code == -32602, (command, uri, err.value.message)
    # ... and the server keeps serving.
    hits = await search(client, "least recently used cache")
    assert hits and hits[0]["uri"].endswith("LruCache.java")


async def test_symlink_escape_is_refused(client: LanguageClient, tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("def leak():\n    return 1\n")
    link = client.repo / "escape.py"
    os.symlink(secret, link)
    try:
        with pytest.raises(JsonRpcException) as err:
            await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="needle.similar", arguments=[{"uri": link.as_uri(), "position": {"line": 0}}]))
        assert err.value.code == -32602
    finally:
        link.unlink()


async def test_no_network_sockets(client: LanguageClient):
    await wait_ready(client)
    pid = client._server.pid
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    network = set()
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        network |= {row.split()[9] for row in rows if len(row.split()) > 9}
    assert not inodes & network, "the server opened a network socket"


async def test_multi_root_folders_come_and_go(client: LanguageClient, tmp_path):
    if not client.kind.startswith("visual-studio-code"):
        pytest.skip("one client is enough for workspace folder changes")
    other = tmp_path / "other"
    other.mkdir()
    (other / "geometry.py").write_text(
        'def area_of_circle(radius):\n    """Area of a circle from its radius."""\n    return 3.14159 * radius ** 2\n')
    folder = types.WorkspaceFolder(uri=other.as_uri(), name="other")
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = await status(client)
        if len(st["folders"]) == 2 and st["state"] == "ready":
            break
        await asyncio.sleep(0.25)
    assert {f["root"] for f in st["folders"]} == {str(client.repo), str(other)}
    hits = await search(client, "area of a circle", k=3)
    assert hits[0]["uri"] == (other / "geometry.py").as_uri()
    assert hits[0]["range"]["start"] == {"line": 0, "character": 0}

    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])))
    await asyncio.sleep(0.5)
    st = await status(client)
    assert [f["root"] for f in st["folders"]] == [str(client.repo)]
    hits = await search(client, "area of a circle", k=10)
    assert not any(h["uri"].startswith(other.as_uri()) for h in hits)


async def test_a_folder_inside_a_repository_indexes_the_repository(client: LanguageClient, tmp_path):
    if not client.kind.startswith("visual-studio-code"):
        pytest.skip("one client is enough for workspace folder changes")
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "docs").mkdir()
    (project / "web").mkdir()
    (project / "tools.py").write_text('def sharpen_pencil(pencil):\n    """Sharpen a pencil."""\n    return pencil\n')
    # two workspace folders of one repository (a monorepo opened as frontend/ and backend/): one index
    docs, web = (types.WorkspaceFolder(uri=(project / n).as_uri(), name=n) for n in ("docs", "web"))
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[docs, web], removed=[])))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = await status(client)
            if len(st["folders"]) >= 2 and st["state"] == "ready":
                break
            await asyncio.sleep(0.25)
        assert [f["root"] for f in st["folders"]].count(str(project)) == 1
        hits = await search(client, "sharpen a pencil", k=3)
        assert hits[0]["uri"] == (project / "tools.py").as_uri()
        assert [h["uri"] for h in hits].count(hits[0]["uri"]) == 1  # not once per workspace folder
        assert (project / ".needle").is_dir() and not (project / "docs" / ".needle").exists()
        assert [p.name for p in (project / ".needle").iterdir() if p.is_dir()] == []  # no second index inside

        # one of them closed: the other still searches the repository
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[docs])))
        await asyncio.sleep(0.5)
        # named after the folder that still holds it (a later settings change re-opens it under that URI)
        assert [f["name"] for f in (await status(client))["folders"] if f["root"] == str(project)] == ["web"]
        assert (await search(client, "sharpen a pencil", k=3))[0]["uri"] == (project / "tools.py").as_uri()
    finally:
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[docs, web])))
        await asyncio.sleep(0.5)


async def test_indexing_can_be_cancelled(client: LanguageClient, tmp_path):
    if not client.kind.startswith("visual-studio-code"):
        pytest.skip("one client is enough for cancellation")
    big = tmp_path / "big"
    big.mkdir()
    for i in range(400):
        (big / f"mod_{i}.py").write_text(f"def function_{i}(x):\n    return x + {i}  # zebrafish\n")
    before = set(client.progress_reports)
    folder = types.WorkspaceFolder(uri=big.as_uri(), name="big")
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])))
    def big_tokens() -> list[str]:  # the workspace's own folder may be (re)indexing beside it, under its own token
        return [t for t in set(client.progress_reports) - before
                if any(getattr(r, "title", None) == "Needle: indexing big" for r in client.progress_reports[t])]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not big_tokens():
        await asyncio.sleep(0.01)
    (token,) = big_tokens()
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    st = await wait_ready(client, 120, states=("ready", "partial"))
    (entry,) = [f for f in st["folders"] if f["root"] == str(big)]
    # Lexical first: the cancel may land after every file was read, but never after every chunk was embedded.
    assert entry["state"] == "cancelled" and (entry["files"] < 400 or entry["chunksEmbedded"] < entry["chunks"])
    assert "cancelled" in entry["message"]
    if entry["chunks"]:  # the cancel may land before the first batch of files was committed
        # Any committed file answers "zebrafish" by its keywords alone, embedded or not ("function" would not:
        # it is a stopword). Which files made it before the cancel is a matter of timing.
        hits = await search(client, "zebrafish", k=5, glob="mod_*.py")
        assert hits and all(h.get("partial") is True for h in hits), hits[:3]

    def big_entry(st: dict) -> dict:
        return next(f for f in st["folders"] if f["root"] == str(big))

    # The cancel stops the work, not only its progress: the backlog is not embedded behind the user's back, while
    # a file saved from now on is indexed and embedded as ever.
    (big / "kingfisher.py").write_text('def dive_for_fish(river):\n    """Dive into the river for a fish."""\n')
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        hits = await search(client, "dive into the river for a fish", k=3, glob="kingfisher.py")
        if hits:
            break
        await asyncio.sleep(0.25)
    assert hits and hits[0]["name"] == "dive_for_fish"
    await asyncio.sleep(2)
    st = await status(client)
    later = big_entry(st)
    assert later["state"] == "cancelled" and later["chunksEmbedded"] <= entry["chunksEmbedded"] + 1
    assert st["state"] == "partial" and "big: indexing was cancelled" in st["message"], st
    assert later["files"] < 401 or later["chunksEmbedded"] < later["chunks"]

    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="needle.reindex", arguments=[{"uri": big.as_uri()}]))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and big_entry(st := await status(client))["state"] != "ready":
        await asyncio.sleep(0.25)
    done = big_entry(st)
    assert done["state"] == "ready" and done["files"] == 401 and done["chunksEmbedded"] == done["chunks"]
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])))


# -- servers started without pytest-lsp: odd start-ups ---------------------------------------------------
async def test_null_root_gets_a_clear_message_not_a_crash():
    c = RawClient()
    try:
        init = c.initialize(None)
        assert "result" in init
        st = c.command("needle.status")["result"]
        assert st["folders"] == [] and "no workspace folder" in st["message"]
        err = c.command("needle.search", {"query": "anything"})["error"]
        assert err["code"] == -32803 and "no workspace folder" in err["message"]
        assert c.request("workspace/symbol", {"query": "anything"})["result"] == []
        shown = [n["params"]["message"] for n in c.notifications if n["method"] == "window/showMessage"]
        assert any("rootUri is null" in m for m in shown), shown
    finally:
        assert c.close() == 0


async def test_home_folder_is_not_indexed():
    c = RawClient()
    try:
        c.initialize(Path.home())
        st = c.command("needle.status")["result"]
        # not "ready": nothing is, and status says why (the client did send a root; the server refused it)
        assert st["folders"] == [] and st["state"] == "none" and "home folder" in st["message"], st
        err = c.command("needle.search", {"query": "anything"})["error"]
        assert "home folder" in err["message"] and "sent no root" not in err["message"], err
        shown = [n["params"]["message"] for n in c.notifications if n["method"] == "window/showMessage"]
        assert any("not indexing" in m for m in shown), shown
    finally:
        assert c.close() == 0


async def test_a_folder_that_cannot_be_indexed_makes_the_status_error_not_ready(tmp_path):
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    (repo / ".needle").write_text("a file where the index folder would go")
    c = RawClient()
    try:
        c.initialize(repo)
        deadline = time.monotonic() + 30
        while (st := c.command("needle.status")["result"])["state"] == "indexing" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert st["state"] == "error" and st["message"].startswith("repo: "), st
    finally:
        assert c.close() == 0


async def test_locked_index_is_served_read_only(tmp_path):
    from codeneedle.indexer.lock import WriterLock

    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    (repo / ".needle").mkdir()
    lock = WriterLock(repo / ".needle")
    lock.acquire()  # as `needle watch` would
    c = RawClient()
    try:
        c.initialize(repo)
        # Not "ready": with no index yet and another writer, the folder waits for it, serving reads meanwhile.
        st = c.wait_status(lambda st: any(f.get("readOnly") for f in st["folders"]), 60)
        (folder,) = st["folders"]
        assert folder["readOnly"] and "another needle process" in folder["message"], folder
        assert c.command("needle.search", {"query": "retry"})["result"] == []

        def shown() -> list[str]:
            return [n["params"]["message"] for n in c.notifications if n["method"] == "window/showMessage"]

        deadline = time.monotonic() + 30  # the notice is sent once the status says read-only
        while not any("another needle process" in m for m in shown()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("another needle process" in m for m in shown()), shown()
    finally:
        c.close()
        lock.release()


async def test_hits_from_a_partial_index_say_so(tmp_path, monkeypatch):
    """An index left partial (an update cancelled after its first vectors), served read-only while another
    process holds the writer lock: every hit carries ``partial``, and status counts the chunks embedded."""
    import threading

    from codeneedle.indexer import embedding
    from codeneedle.indexer.index import Index

    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    monkeypatch.setattr(embedding, "FIRST_GROUP", 4)
    cancel = threading.Event()
    with Index.open(repo) as index:
        stats = index.update(progress=lambda p: p.chunks_embedded and cancel.set(), cancel=cancel)
        assert stats.cancelled
        with index.writing():  # as a `needle index` still running elsewhere would
            c = RawClient()
            try:
                c.initialize(repo)
                # Never "ready": the writer lock is held elsewhere, so the folder stays read-only and partial.
                (folder,) = c.wait_status(lambda st: any(f.get("readOnly") and f.get("chunksEmbedded")
                                                         for f in st["folders"]), 120)["folders"]
                assert folder["readOnly"] and 0 < folder["chunksEmbedded"] < folder["chunks"], folder
                hits = c.command("needle.search", {"query": "retry with backoff"})["result"]
                assert hits and all(h["partial"] is True for h in hits), hits[:2]
            finally:
                c.close()
