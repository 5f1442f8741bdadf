"""LSP fuzzing over a raw stdio pipe: malformed JSON-RPC gets errors, never silence or a crash.

A seeded storm of bad messages (invalid JSON, non-objects, bad ids and versions, wrong param types, missing
fields, huge strings, unknown methods, out-of-workspace and nonsense URIs) is sent to one `needle lsp`. Every
request with a usable id must be answered (an error, except for the few random ones that happen to be valid),
input without a usable id gets an id-null error where JSON-RPC asks for one, the process stays up, and a
search afterwards still finds the right code.
"""

from __future__ import annotations

import json
import random
import shutil
import time

import pytest

from tests.conftest import FIXTURES
from tests.lsp.rawclient import RawClient

pytestmark = pytest.mark.slow  # a real language server

SEED = 20240605
STORM = 300
KNOWN_REQUESTS = ["workspace/symbol", "workspace/executeCommand", "textDocument/hover", "textDocument/definition",
                  "shutdown_not", "initialize", "workspace/willRenameFiles", "textDocument/documentSymbol"]
KNOWN_NOTIFICATIONS = ["textDocument/didSave", "workspace/didChangeWatchedFiles", "textDocument/didOpen",
                       "textDocument/didClose", "workspace/didChangeConfiguration", "$/cancelRequest",
                       "$/setTrace", "window/workDoneProgress/cancel", "workspace/didChangeWorkspaceFolders"]
COMMANDS = ["needle.search", "needle.similar", "needle.reindex", "needle.status", "needle.nope", "", "x" * 300]
BAD_URIS = ["file:///etc/passwd", "file:///tmp/../etc/shadow", "http://example.com/a.py", "untitled:1", "",
            "file://remote-host/share/x.py", "file:///%00nul", "::::", "file:" + "a" * 20000, "\udcff", 42, None]


def junk(rng: random.Random, depth: int = 0):
    """A random JSON value."""
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return rng.choice([0, -1, 2**63, -(2**70), 1.5, float(rng.randrange(100))])
    if choice == 1:
        return rng.choice(["", "x", "é漢字🙂", "\u0000", "a" * rng.randrange(1, 5000), "../../etc/passwd"])
    if choice == 2:
        return rng.choice([True, False])
    if choice in (3, 4, 5):
        return None if choice == 3 else rng.choice(BAD_URIS)
    if choice == 6:
        return [junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["query", "k", "uri", "position", "textDocument", "changes", "settings", "command", "arguments",
            "event", "id", "token", "value", "line", "character", "lang", "glob"]
    return {rng.choice(keys): junk(rng, depth + 1) for _ in range(rng.randrange(5))}


def bad_command_args(rng: random.Random):
    return rng.choice([
        [{"query": junk(rng)}], [{"query": "ok", "k": junk(rng)}], [{"query": "ok", "lang": junk(rng)}],
        [{"uri": rng.choice(BAD_URIS), "position": {"line": 0, "character": 0}}],
        [{"uri": rng.choice(BAD_URIS), "position": junk(rng)}], [{"uri": rng.choice(BAD_URIS)}],
        [junk(rng)], junk(rng), [{"query": "x" * 2_000_000}], [{}, {}], "not a list",
    ])


def storm(rng: random.Random, n: int):
    """Yield (frame bytes, expectation): ("id", id) an answer is due, ("null", None) an id-null error is due,
    or (None, None) nothing is due (a notification)."""
    ids = iter(range(10_000, 10_000 + 10 * n))
    for _ in range(n):
        kind = rng.randrange(12)
        if kind == 0:  # not JSON at all
            body = rng.choice([b"{", b"{not json}", b"\xff\xfe\x00garbage", b"[" * 100_000, b'{"a": 1,}',
                               b"\x00" * 64, "é".encode("latin-1"), b'{"jsonrpc": "2.0", "id": 1, "method": "x"'])
            yield body, ("null", None)
        elif kind == 1:  # JSON, but not an object
            yield json.dumps(rng.choice([[], [1, 2], 5, "str", None, True, [{"jsonrpc": "2.0"}]])).encode(), ("null", None)
        elif kind == 2:  # bad envelope with a usable id
            msg_id = next(ids)
            msg = rng.choice([
                {"jsonrpc": "1.0", "id": msg_id, "method": "workspace/symbol", "params": {"query": "x"}},
                {"id": msg_id, "method": "workspace/symbol", "params": {"query": "x"}},
                {"jsonrpc": "2.0", "id": msg_id, "method": 12},
                {"jsonrpc": "2.0", "id": msg_id, "method": None, "params": {}},
                {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/symbol", "params": "a string"},
            ])
            yield json.dumps(msg).encode(), ("id", msg_id)
        elif kind == 3:  # bad id types: answered with id null
            yield json.dumps({"jsonrpc": "2.0", "id": rng.choice([[1], {"a": 1}, 1.5, True]),
                              "method": "workspace/symbol", "params": {"query": "x"}}).encode(), ("null", None)
        elif kind == 4:  # unknown methods
            msg_id = next(ids)
            method = rng.choice(["needle/unknown", "textDocument/nothing", "", "$/needle", "é" * 10, "m" * 100_000])
            yield json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": junk(rng)}).encode(), \
                ("id", msg_id)
        elif kind in (5, 6, 7):  # executeCommand with bad arguments
            msg_id = rng.choice([next(ids), f"s-{next(ids)}"])
            params = {"command": rng.choice(COMMANDS), "arguments": bad_command_args(rng)}
            if rng.random() < 0.2:
                params = junk(rng) if rng.random() < 0.5 else {"arguments": []}
            yield json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand",
                              "params": params}).encode(), ("id", msg_id)
        elif kind == 8:  # known requests, random params
            msg_id = next(ids)
            method = rng.choice(KNOWN_REQUESTS)
            params = junk(rng) if method == "initialize" else rng.choice([junk(rng), {"query": junk(rng)}])
            if method == "initialize" and isinstance(params, dict):
                params = {"capabilities": 5, **params}  # never a valid re-initialize
            yield json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode(), \
                ("id", msg_id)
        elif kind == 9:  # known notifications, random params: no answer, no crash
            method = rng.choice(KNOWN_NOTIFICATIONS)
            params = rng.choice([junk(rng), {"textDocument": {"uri": rng.choice(BAD_URIS)}},
                                 {"changes": [{"uri": rng.choice(BAD_URIS), "type": rng.choice([1, 2, 3, 9])}]},
                                 {"event": {"added": [{"uri": rng.choice(["http://x/y", "file:///no/such/dir"]),
                                                       "name": "x"}], "removed": junk(rng)}}])
            yield json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode(), (None, None)
        elif kind == 10:  # huge strings where small ones belong
            msg_id = next(ids)
            yield json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/symbol",
                              "params": {"query": "q" * rng.choice([10_000, 1_000_000])}}).encode(), ("id", msg_id)
        else:  # responses to requests the server never sent
            yield json.dumps({"jsonrpc": "2.0", "id": rng.choice([999_999, "nope", None]),
                              "result": junk(rng)}).encode(), (None, None)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path_factory.mktemp("fuzz") / "repo")
    client = RawClient()
    client.initialize(repo)
    client.repo = repo
    yield client
    client.close()


def test_initialize_answers_in_under_a_second_once_python_is_up():
    client = RawClient()
    try:
        # Any request answered means Python started and pygls is imported; before `initialize` the server
        # must refuse our own commands rather than hang.
        early = client.command("needle.status", timeout=30)
        assert early["error"]["code"] == -32002
        started = time.perf_counter()
        reply = client.initialize(None)
        elapsed = time.perf_counter() - started
        assert "capabilities" in reply["result"]
        assert elapsed < 1.0, f"initialize took {elapsed:.3f}s"
    finally:
        client.close()


def test_an_unreadable_frame_is_answered_with_an_id_null_error():
    """JSON-RPC 2.0: when the id cannot be determined, the error response carries "id": null (not no id)."""
    client = RawClient()
    try:
        frames = [(b"[]", None, -32600), (b"", b"Content-Length: abc\r\n\r\n", -32700), (b"{oops", None, -32700),
                  (b'{"jsonrpc":"2.0","id":1.5,"method":"workspace/symbol"}', None, -32600)]
        for body, header, code in frames:
            client.send_raw(body, header=header)
            answer = client.wait_orphan(timeout=30)
            assert "id" in answer and answer["id"] is None, answer
            assert answer["error"]["code"] == code, answer
        known = client.request("workspace/symbol", {"query": "x"}, raw_id=7)  # a usable id is echoed
        assert known["id"] == 7 and known["error"]["code"] == -32002, known
    finally:
        client.close()


def test_storm_of_malformed_messages(server: RawClient):
    rng = random.Random(SEED)
    due_ids, boxes, due_nulls = [], {}, 0
    sent = 0
    for body, (what, msg_id) in storm(rng, STORM):
        if what == "id":
            due_ids.append(msg_id)
            boxes[msg_id] = server.expect(msg_id)
        elif what == "null":
            due_nulls += 1
        server.send_raw(body)
        sent += 1
    # A frame without Content-Length, then a well-formed request: the stream stays in sync.
    server.send_raw(b"", header=b"Content-Type: application/json\r\n\r\n")
    due_nulls += 1

    answers = {}
    for msg_id in due_ids:
        answers[msg_id] = server.wait_response(msg_id, boxes[msg_id], timeout=60)
    assert server.proc.poll() is None, "the server died"
    unanswered = [i for i in due_ids if i not in answers]
    assert not unanswered
    errors = [a for a in answers.values() if "error" in a]
    # Nearly everything in the storm is invalid; the odd random request may be valid and get a result.
    assert len(errors) >= 0.9 * len(answers), f"{len(errors)} errors for {len(answers)} requests"
    assert all(isinstance(a["error"]["code"], int) and a["error"]["message"] for a in errors)
    codes = {a["error"]["code"] for a in errors}
    assert {-32600, -32601, -32602} <= codes, codes

    deadline = time.monotonic() + 30
    while len(server.orphans) < due_nulls and time.monotonic() < deadline:
        time.sleep(0.05)
    nulls = [o for o in server.orphans if "id" in o and o["id"] is None and "error" in o]
    assert len(nulls) >= due_nulls, f"{len(nulls)} id-null errors for {due_nulls} unusable frames"
    assert {o["error"]["code"] for o in nulls} <= {-32700, -32600}
    assert sent == STORM


def test_search_still_works_after_the_storm(server: RawClient):
    status = server.wait_ready(240)
    assert status["state"] == "ready"
    repo_folder = [f for f in status["folders"] if f["root"] == str(server.repo)]
    assert repo_folder and repo_folder[0]["state"] == "ready", status
    hits = server.command("needle.search", {"query": "retry a failing call with exponential backoff"})["result"]
    assert hits[0]["uri"] == (server.repo / "src/net/retry.go").as_uri()
    assert server.proc.poll() is None


def test_a_query_that_is_not_valid_unicode_is_refused_by_name(server: RawClient):
    """JSON may carry a lone surrogate ("\\ud800"); no tokenizer and no UTF-8 feedback log can take one."""
    server.wait_ready(240)
    for command, args in (("needle.search", {"query": "read \ud800 file"}),
                          ("needle.opened", {"query": "read \ud800 file", "uri": (server.repo / "a.py").as_uri(),
                                             "line": 1})):
        answer = server.command(command, args)
        assert answer["error"]["code"] == -32602 and "lone surrogate" in answer["error"]["message"], answer
    symbols = server.request("workspace/symbol", {"query": "read \ud800 file"})
    assert "lone surrogate" in json.dumps(symbols), symbols
    nul = server.request("workspace/symbol", {"query": "read\u0000 file"})  # as needle.search and MCP refuse it
    assert "NUL character" in json.dumps(nul), nul
    assert server.command("needle.search", {"query": "read a file"})["result"]
