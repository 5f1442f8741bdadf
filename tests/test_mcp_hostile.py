"""`needle mcp` against hostile requests: it serves its configured root only and answers every bad message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, copy_fixture

mcp = pytest.importorskip("mcp")

from tests.test_mcp import _params, _text, mcp_session  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the served repository holding a private key, as ~/.ssh would."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    (folder / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n")
    (folder / "notes.py").write_text("def private_notes():\n    return 'outside the served root'\n")
    return folder


async def test_search_outside_the_served_root_is_refused_and_writes_nothing(tmp_path: Path, outside: Path) -> None:
    repo = copy_fixture("minirepo", tmp_path / "repo")
    home_index = (Path.home() / ".needle").exists()
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        for path in [str(outside), str(outside / ".ssh"), "../home", "~", "/etc", str(repo / ".." / "home")]:
            result = await session.call_tool("search", {"query": "private key", "path": path})
            assert result.is_error, path
            assert "is not a folder this server serves" in _text(result)
            assert "BEGIN OPENSSH" not in _text(result)
        refused = await session.call_tool("status", {})
        assert not refused.is_error  # the served root still works
    assert not (outside / ".needle").exists() and not (outside / ".ssh" / ".needle").exists()
    assert not Path("/etc/.needle").exists()
    assert (Path.home() / ".needle").exists() == home_index


def _raw_server(root: Path, **env: str) -> subprocess.Popen:
    env = {**os.environ, "NEEDLE_ROOT": str(root), **env}
    return subprocess.Popen([str(NEEDLE), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=root)


def _exchange(proc: subprocess.Popen, line: str | bytes) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")) + b"\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def _call(msg_id: int, tool: str, arguments_json: str) -> str:
    head = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "tools/call"})[:-1]
    return f'{head}, "params": {{"name": "{tool}", "arguments": {arguments_json}}}}}'


def _initialize(proc: subprocess.Popen) -> None:
    init = _exchange(proc, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}))
    assert init["result"]["serverInfo"]["name"] == "needle"
    proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')


def _close(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(timeout=30)


def test_every_malformed_message_gets_an_error_that_names_the_problem(tmp_path: Path) -> None:
    """Raw JSON lines on stdin (an SDK client cannot send these): each gets an answer, the server keeps going."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    proc = _raw_server(repo)
    try:
        _initialize(proc)

        cases = [
            ("{not json", None, -32700, "Parse error"),
            ("[1, 2]", None, -32600, "must be a JSON object, got list"),
            ('"hello"', None, -32600, "must be a JSON object, got str"),
            (_call(7, "search", '{"query":"\\ud800 parse"}'), 7, -32700, "query contains a lone surrogate"),
            (_call(8, "search", '{"query":"x","glob":"\\udfff"}'), 8, -32700, "glob contains a lone surrogate"),
            # a byte that is not UTF-8 is refused like the other doors refuse it, not searched as U+FFFD
            (_call(13, "search", '{"query":"conf@ig"}').encode().replace(b"@", b"\xff"), 13, -32700,
             "query contains a lone surrogate or bytes that are not UTF-8"),
        ]
        for line, msg_id, code, words in cases:
            answer = _exchange(proc, line)
            assert answer["id"] == msg_id, line
            assert answer["error"]["code"] == code, answer
            assert words in answer["error"]["message"], answer

        tool_errors = [
            (_call(9, "search", '{"query":"x","glob":"src\\\\*.py"}'), "glob contains a backslash"),
            (_call(10, "similar", '{"path":"src/a\\u0000b.py","line":1}'), "path contains a NUL character"),
            (_call(11, "search", '{"query":"x","path":"a\\u0000b"}'), "path contains a NUL character"),
            (_call(12, "search", json.dumps({"query": "x" * 10_000_000})), "query is too long (10000000 characters"),
        ]
        for line, words in tool_errors:
            answer = _exchange(proc, line)
            assert answer["result"]["isError"] is True, answer
            assert words in answer["result"]["content"][0]["text"], answer

        listed = _exchange(proc, '{"jsonrpc":"2.0","id":99,"method":"tools/list"}')
        assert {t["name"] for t in listed["result"]["tools"]} == {"search", "similar", "status"}
    finally:
        _close(proc)
    assert not (repo / ".needle").exists()  # every bad request was refused before any indexing


def test_a_bad_envelope_is_answered_with_the_request_s_id_and_what_is_wrong(tmp_path: Path) -> None:
    """A nested field at fault (the version, the params) is named, and the answer carries the request's id."""
    proc = _raw_server(copy_fixture("minirepo", tmp_path / "repo"))
    try:
        _initialize(proc)
        cases = [
            ('{"jsonrpc":"1.0","id":3,"method":"tools/list"}', 3, '"jsonrpc" must be "2.0", got "1.0"'),
            ('{"id":"s-4","method":"tools/list"}', "s-4", '"jsonrpc" must be "2.0", and it is missing'),
            ('{"jsonrpc":"2.0","id":27,"method":"tools/call","params":"str"}', 27,
             '"params" must be an object, got a string'),
            ('{"jsonrpc":"2.0","id":28,"method":"tools/call","params":[1]}', 28, '"params" must be an object'),
            ('{"jsonrpc":"2.0","id":29,"method":7}', 29, '"method" must be a string'),
            ('{"jsonrpc":"2.0","id":30}', 30, 'a message needs a "method"'),
        ]
        for line, msg_id, words in cases:
            answer = _exchange(proc, line)
            assert answer["id"] == msg_id, (line, answer)
            assert answer["error"]["code"] == -32600, answer
            assert words in answer["error"]["message"], answer
    finally:
        _close(proc)


def test_a_request_whose_id_is_not_a_string_or_integer_is_answered_with_id_null(tmp_path: Path) -> None:
    """The SDK took these for notifications and never answered; a real notification still gets nothing."""
    proc = _raw_server(copy_fixture("minirepo", tmp_path / "repo"))
    try:
        _initialize(proc)
        for bad_id in ("null", "true", "1.5", '{"a":1}', "[2]"):
            answer = _exchange(proc, f'{{"jsonrpc":"2.0","id":{bad_id},"method":"tools/list"}}')
            assert "id" in answer and answer["id"] is None, answer
            assert answer["error"]["code"] == -32600, answer
            assert '"id" must be a string or an integer' in answer["error"]["message"], answer
        # No answer to the notification: the next line out answers the ping sent after it.
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"tools/list"}\n')
        assert _exchange(proc, '{"jsonrpc":"2.0","id":40,"method":"ping"}') == {"jsonrpc": "2.0", "id": 40,
                                                                                 "result": {}}
    finally:
        _close(proc)


def test_a_tool_call_before_initialize_says_to_initialize_first(tmp_path: Path) -> None:
    proc = _raw_server(copy_fixture("minirepo", tmp_path / "repo"))
    try:
        early = _exchange(proc, _call(5, "status", "{}"))
        assert early["id"] == 5 and early["error"]["code"] == -32602, early
        assert early["error"]["message"] == ("the server is not initialized: send initialize first "
                                             "(tools/call came before it)"), early
        _initialize(proc)
        assert _exchange(proc, '{"jsonrpc":"2.0","id":6,"method":"tools/list"}')["result"]["tools"]
    finally:
        _close(proc)


def test_bad_arguments_and_params_are_one_sentence_per_problem(tmp_path: Path) -> None:
    """Not pydantic's multi-line dump with its errors.pydantic.dev link: the argument and what it must be."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    proc = _raw_server(repo)
    try:
        _initialize(proc)
        tool_errors = [
            (_call(2, "search", '{"query":123}'), 'search: "query" must be a string'),
            (_call(3, "search", "{}"), 'search: "query" is required'),
            (_call(4, "search", '{"query":"x","lang":["python",5]}'),
             'search: "lang" must be a string or a list of strings'),
            (_call(5, "search", '{"query":"x","exclude_glob":7}'),
             'search: "exclude_glob" must be a string or a list of strings'),
            (_call(6, "search", '{"query":"x","k":1.5}'), 'search: "k" must be an integer'),
            (_call(7, "similar", '{"path":5}'), 'similar: "path" must be a string; "line" is required'),
            (_call(8, "search", '{"query":"x","k":0}'), "search: k must be between 1 and 100, got 0"),
            (_call(9, "search", json.dumps({"query": "x", "exclude_glob": ["a"] * 65})),
             "search: exclude_glob lists 65 items, at most 64"),
            (_call(10, "search", '{"query":"x","lang":["py\\u0000"]}'),
             "search: lang contains a NUL character (at character 2)"),
            (_call(11, "search", '{"query":"x","k":true}'), 'search: "k" must be an integer, not true'),
            (_call(12, "similar", '{"path":"a.py","line":false}'), 'similar: "line" must be an integer, not false'),
        ]
        for line, text in tool_errors:
            answer = _exchange(proc, line)
            assert answer["result"]["isError"] is True, answer
            assert answer["result"]["content"][0]["text"] == text, answer

        params = _exchange(proc, '{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"arguments":"s"}}')
        error = params["error"]
        assert error["code"] == -32602 and error["message"].startswith("Invalid params for tools/call: "), params
        assert set(error["message"].split(": ", 1)[1].split("; ")) == {'"name" is required',
                                                                        '"arguments" must be an object'}, params
    finally:
        _close(proc)
    assert not (repo / ".needle").exists()  # refused before any indexing


async def test_lang_and_exclude_glob_take_a_string_or_a_list_as_the_schema_says(tmp_path: Path) -> None:
    repo = copy_fixture("minirepo", tmp_path / "repo")
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        schema = {t.name: t for t in (await session.list_tools()).tools}["search"].input_schema
        for name in ("lang", "exclude_glob"):
            kinds = [alt.get("type") for alt in schema["properties"][name]["anyOf"]]
            assert kinds == ["string", "array", "null"], (name, schema["properties"][name])
        for lang in ("python,go", ["python", "go"]):
            result = await session.call_tool("search", {"query": "retry with backoff", "lang": lang})
            assert not result.is_error, _text(result)
            assert {r["language"] for r in json.loads(_text(result))["results"]} <= {"python", "go"}
        for exclude in ("web/**", ["web/**"], "!web/**"):
            result = await session.call_tool("search", {"query": "format money", "exclude_glob": exclude})
            paths = [r["path"] for r in json.loads(_text(result))["results"]]
            assert paths and not any(p.startswith("web/") for p in paths), (exclude, paths)


async def test_a_repository_in_a_folder_named_in_latin1_is_served(tmp_path: Path) -> None:
    """A folder name that is not UTF-8 (`café` in Latin-1) is lone surrogates in Python, which no UTF-8 JSON can
    carry: every tool failed with "Error executing tool search". The root is shown with U+FFFD in their place;
    the results (paths relative to it) are exact."""
    repo = tmp_path / os.fsdecode(b"caf\xe9") / "repo"
    repo.mkdir(parents=True)
    (repo / "add.py").write_text("def add_one(value):\n    return value + 1\n")
    shown_root = f"{tmp_path}/caf\ufffd/repo"
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        found = await session.call_tool("search", {"query": "add one to a value"})
        assert not found.is_error, _text(found)
        answer = json.loads(_text(found))
        assert answer["root"] == shown_root and answer["results"][0]["path"] == "add.py"
        similar = await session.call_tool("similar", {"path": "add.py", "line": 1})
        assert not similar.is_error, _text(similar)
        status = await session.call_tool("status", {})
        assert not status.is_error and json.loads(_text(status))["root"] == shown_root, _text(status)
        refused = await session.call_tool("search", {"query": "add one", "path": "/etc"})
        assert refused.is_error and "is not a folder this server serves" in _text(refused), _text(refused)


def test_every_door_caps_queries_at_the_library_s_length():
    """The servers restate the library's cap so that they start without importing the index; the two must agree."""
    from codeneedle.indexer.index import MAX_QUERY_CHARS as library
    from codeneedle.server.mcp_guard import MAX_QUERY_CHARS as doors

    assert doors == library


def test_the_language_server_allows_as_many_results_as_the_library_and_mcp_fewer():
    """The language server restates the library's k cap (it starts without the indexer); MCP keeps a model's
    context small."""
    from codeneedle.indexer.filters import MAX_K as library
    from codeneedle.server.commands import MAX_K as language_server
    from codeneedle.server.mcp_server import MAX_K as mcp

    assert language_server == library and mcp <= library
