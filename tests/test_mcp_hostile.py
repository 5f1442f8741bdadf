"""`needle mcp` against hostile requests: it serves its configured root only and answers every bad message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, copy_fixture

mcp = pytest.importorskip("mcp")
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from tests.test_mcp import _params, _text  # noqa: E402

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
    with open(tmp_path / "server.log", "w") as errlog:
        async with stdio_client(_params(repo, cwd=tmp_path), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
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


def _raw_server(root: Path) -> subprocess.Popen:
    env = {**os.environ, "NEEDLE_ROOT": str(root)}
    return subprocess.Popen([str(NEEDLE), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=root)


def _exchange(proc: subprocess.Popen, line: str) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line.encode("utf-8", "surrogatepass") + b"\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def _call(msg_id: int, tool: str, arguments_json: str) -> str:
    head = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "tools/call"})[:-1]
    return f'{head}, "params": {{"name": "{tool}", "arguments": {arguments_json}}}}}'


def test_every_malformed_message_gets_an_error_that_names_the_problem(tmp_path: Path) -> None:
    """Raw JSON lines on stdin (an SDK client cannot send these): each gets an answer, the server keeps going."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    proc = _raw_server(repo)
    try:
        init = _exchange(proc, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}))
        assert init["result"]["serverInfo"]["name"] == "needle"
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

        cases = [
            ("{not json", None, -32700, "Parse error"),
            ("[1, 2]", None, -32600, "must be a JSON object, got list"),
            ('"hello"', None, -32600, "must be a JSON object, got str"),
            (_call(7, "search", '{"query":"\\ud800 parse"}'), 7, -32700, "query contains a lone surrogate"),
            (_call(8, "search", '{"query":"x","glob":"\\udfff"}'), 8, -32700, "glob contains a lone surrogate"),
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
        proc.stdin.close()
        proc.wait(timeout=30)
    assert not (repo / ".needle").exists()  # every bad request was refused before any indexing


def test_every_door_caps_queries_at_the_library_s_length():
    """The servers restate the library's cap so that they start without importing the index; the two must agree."""
    from codeneedle.indexer.index import MAX_QUERY_CHARS as library
    from codeneedle.server.mcp_guard import MAX_QUERY_CHARS as doors

    assert doors == library
