"""The server's edge logic without a server: settings parsing, command arguments, framing, URIs, ranges."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from codeneedle.indexer.search import SearchResult
from codeneedle.indexer.settings import DEFAULT_MAX_FILE_BYTES
from codeneedle.server import commands as cmd
from codeneedle.server.protocol import FdReader, NeedleProtocol, _json_body, read_frames
from codeneedle.server.results import file_uri, result_range
from codeneedle.server.settings import NeedleSettings, parse_configuration, parse_settings
from codeneedle.server.uris import uri_to_path


# -- settings -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    {"model": "minilm", "indexDir": "/tmp/x", "maxFileBytes": 2048, "exclude": ["a/**", "b"]},  # Neovim: one object
    {"needle": {"model": "minilm", "indexDir": "/tmp/x", "maxFileBytes": 2048, "exclude": ["a/**", "b"]}},
])
def test_settings_plain_or_wrapped(raw):
    settings, warnings = parse_settings(raw)
    assert settings == NeedleSettings("minilm", "/tmp/x", 2048, ("a/**", "b")) and warnings == []


def test_invalid_settings_fall_back_one_by_one_with_warnings():
    settings, warnings = parse_settings({"model": 5, "maxFileBytes": -3, "exclude": [1, 2], "indexDir": "ok",
                                         "search": {"maxResults": 20}})
    assert settings == NeedleSettings(index_dir="ok")
    assert len(warnings) == 3 and all("using the default" in w for w in warnings)
    assert any("needle.maxFileBytes" in w and str(DEFAULT_MAX_FILE_BYTES) in w for w in warnings)


def test_null_and_empty_mean_default_without_warnings():
    base = NeedleSettings(model="minilm", max_file_bytes=10)
    settings, warnings = parse_settings({"model": None, "maxFileBytes": None, "exclude": None, "indexDir": ""}, base)
    assert settings == NeedleSettings() and warnings == []
    assert parse_settings(None, base) == (base, [])
    assert parse_settings([1], base)[0] == base and parse_settings([1], base)[1]


def test_configuration_answers_per_folder_list_or_one_object():
    base = NeedleSettings(model="minilm")
    per_folder, _ = parse_configuration([{"exclude": ["x"]}, None], 2, base)  # VS Code: one item per folder
    assert per_folder == [NeedleSettings(model="minilm", exclude=("x",)), base]
    shared, _ = parse_configuration({"needle": {"maxFileBytes": 99}}, 2, base)  # one object for all
    assert shared == [NeedleSettings(model="minilm", max_file_bytes=99)] * 2


def test_relative_index_dir_is_per_folder(tmp_path):
    s = NeedleSettings(index_dir=".cache/needle", model="./models/mine").for_root(tmp_path)
    assert s.index_dir == tmp_path / ".cache/needle" and s.model == str(tmp_path / "models/mine")
    assert NeedleSettings(model="minilm").for_root(tmp_path).model == "minilm"


# -- command arguments ----------------------------------------------------------------------------------------
def test_search_arguments():
    args = cmd.parse_arguments(cmd.SEARCH, [{"query": "q", "k": 3, "lang": ["py", "go"], "glob": "src/**"}],
                               cmd.SearchArgs)
    assert args == cmd.SearchArgs("q", 3, ["py", "go"], "src/**")
    assert args.rerank is None  # absent: the folder's settings decide
    assert cmd.parse_arguments(cmd.SEARCH, [{"query": "q", "rerank": False}], cmd.SearchArgs).rerank is False
    assert cmd.parse_arguments(cmd.STATUS, None, cmd.StatusArgs) == cmd.StatusArgs()
    assert cmd.parse_arguments(cmd.REINDEX, [{}], cmd.ReindexArgs).uri is None


@pytest.mark.parametrize("arguments, message", [
    ([{"query": True}], "'query': expected string, got boolean"),
    ([{"query": "q", "k": True}], "'k': expected integer, got boolean"),
    ([{"query": "q", "k": 1.0}], "'k': expected integer, got number"),
    ([{"query": "q", "k": 5000}], "k must be between 1 and 1000"),
    ([{"query": "q", "extra": 1}], "unknown field(s) extra"),
    ([{"query": "q", "rerank": "no"}], "'rerank': expected boolean, got string"),
    # An empty list searched no folder and answered nothing, with no word why (Lua's {} is sent as []).
    ([{"query": "q", "within": []}], "within lists no folder or file"),
    ([{"query": "q"}, {}], "expected one argument object, got 2"),
    ([[1]], "must be an object"),
])
def test_bad_search_arguments(arguments, message):
    with pytest.raises(JsonRpcInvalidParams) as err:
        cmd.parse_arguments(cmd.SEARCH, arguments, cmd.SearchArgs)
    assert message in err.value.message


def test_bad_similar_arguments_name_the_field():
    with pytest.raises(JsonRpcInvalidParams) as err:
        cmd.parse_arguments(cmd.SIMILAR, [{"uri": 3, "position": {"line": -1}}], cmd.SimilarArgs)
    assert "'uri': expected string" in err.value.message
    with pytest.raises(JsonRpcInvalidParams) as err:
        cmd.parse_arguments(cmd.SIMILAR, [{"uri": "file:///x", "position": {"line": 1, "col": 2}}], cmd.SimilarArgs)
    assert "unknown field(s) col in 'position'" in err.value.message
    with pytest.raises(JsonRpcInvalidParams) as err:
        cmd.parse_arguments(cmd.SIMILAR, [{"uri": "file:///x", "position": {"line": 1}, "text": 7}], cmd.SimilarArgs)
    assert "'text': expected string" in err.value.message
    too_long = "x" * (cmd.MAX_TEXT_CHARS + 1)
    with pytest.raises(JsonRpcInvalidParams, match="text is too long"):
        cmd.parse_arguments(cmd.SIMILAR, [{"uri": "file:///x", "position": {"line": 1}, "text": too_long}],
                            cmd.SimilarArgs)


# -- URIs -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("uri, path", [
    ("file:///tmp/a%20b.py", "/tmp/a b.py"),
    ("file://localhost/tmp/x.py", "/tmp/x.py"),
    ("file:///tmp/../etc/passwd", "/etc/passwd"),
    ("http://example.com/x.py", None),
    ("file://host/share/x.py", None),
    ("untitled:Untitled-1", None),
    ("file:///tmp/nul%00byte", None),
    ("", None),
    ("file:" + "a" * 10_000, None),
])
def test_uri_to_path(uri, path):
    got = uri_to_path(uri)
    assert (str(got) if got else None) == path


# File names a cloned repository may hold, and a folder named in Latin-1 (bytes that are not UTF-8: lone
# surrogates in Python, `%E9` in a URI as Neovim's vim.uri_from_fname writes it).
ODD_NAMES = ["a b.py", "hash#frag?q=1.py", "100%.py", "a%20b.py", "-rf.py", "evil.py:12: fake", "new\nline.py",
             "esc\x1b]0;title\x07.py", "rtl\u202eyp.exe.py", "caf\udce9/x.py", "\udcff\udcfe.py"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_result_uri_opens_the_very_file_it_names(name):
    """uri -> path gives back every byte of the path a URI was made from: `#`, `?` and `%` are not a fragment, a
    query or an escape, and a byte that is not UTF-8 is that byte, not U+FFFD (a path nowhere)."""
    path = Path("/w/repo") / name
    uri = file_uri(path)
    assert uri.startswith("file:///w/repo/") and "#" not in uri and "?" not in uri and "\n" not in uri
    assert uri_to_path(uri) == path
    if "\udce9" in name:
        assert uri == "file:///w/repo/caf%E9/x.py"
        assert uri_to_path("file:///w/repo/caf%e9/x.py") == path  # Neovim writes the escape in lower case


def test_a_frame_with_bytes_that_are_not_utf8_keeps_them_as_python_reads_such_a_path():
    """Neovim sends a folder named in Latin-1 as its raw bytes inside the JSON: read as the path it is, rather
    than refused as a parse error (the server then never started there); what is no JSON stays an error."""
    body = b'{"rootPath": "/w/caf\xe9", "rootUri": "file:///w/caf%e9"}'
    assert _json_body(body) == {"rootPath": "/w/caf\udce9", "rootUri": "file:///w/caf%e9"}
    assert Path(_json_body(body)["rootPath"]) == uri_to_path("file:///w/caf%e9")
    with pytest.raises(ValueError):
        _json_body(b"\xff\xfe\x00garbage")


# -- ranges in each position encoding -------------------------------------------------------------------------
def test_range_end_is_the_last_line_length_in_the_client_encoding(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    return 'é😀'\n")
    hit = SearchResult("m.py", 1, 2, "f", "function", "python", 1.0, "def f():")
    ends = {enc: result_range(tmp_path, hit, enc)["end"] for enc in ("utf-8", "utf-16", "utf-32")}
    assert ends == {"utf-8": {"line": 1, "character": 19}, "utf-16": {"line": 1, "character": 16},
                    "utf-32": {"line": 1, "character": 15}}
    gone = SearchResult("gone.py", 3, 4, "g", "function", "python", 1.0, "")
    assert result_range(tmp_path, gone, "utf-16") == {"start": {"line": 2, "character": 0},
                                                       "end": {"line": 4, "character": 0}}


def test_a_line_rewritten_in_the_clock_tick_it_was_read_in_is_measured_anew(tmp_path):
    """Line lengths are cached by (path, mtime, size): a rewrite of the same size in the same tick of the file
    system's clock kept the old line's length, and the editor's range ended mid-line or past it."""
    import os

    path = tmp_path / "m.py"
    path.write_text("def f():\n    return 'aaaaaa'\n")
    hit = SearchResult("m.py", 1, 2, "f", "function", "python", 1.0, "def f():")
    assert result_range(tmp_path, hit, "utf-16")["end"] == {"line": 1, "character": 19}
    st = path.stat()
    path.write_text("def f():\n    return 'é😀'\n")  # the same 29 bytes, 15 UTF-16 units on the last line
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert result_range(tmp_path, hit, "utf-16")["end"] == {"line": 1, "character": 16}


def test_a_hit_holding_the_query_s_chinese_words_is_not_weak_whatever_its_cosine(tmp_path):
    from codeneedle.server.results import to_lsp

    (tmp_path / "m.py").write_text('def f():\n    """读取配置文件。"""\n')
    low = SearchResult("m.py", 1, 2, "f", "function", "python", 0.2, "def f():")
    assert to_lsp(tmp_path, low, "utf-16")["weak"] is True
    held = SearchResult("m.py", 1, 2, "f", "function", "python", 0.2, "def f():", verbatim=True)
    assert to_lsp(tmp_path, held, "utf-16")["weak"] is False


def test_a_line_renamed_over_with_the_same_size_and_mtime_is_measured_anew(tmp_path):
    """A file renamed over another of the same size and mtime (two files one checkout wrote in a tick) kept the
    replaced file's line lengths in the cache: its key is the ctime, which the rename sets anew."""
    import os
    import time

    path, other = tmp_path / "m.py", tmp_path / "n.py"
    path.write_text("def f():\n    return 'aaaaaa'\n")
    other.write_text("def f():\n    return 'é😀'\n")  # the same 29 bytes, 15 UTF-16 units on the last line
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))  # long settled
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    hit = SearchResult("m.py", 1, 2, "f", "function", "python", 1.0, "def f():")
    later = time.time_ns() + 3600 * 10**9  # read an hour after the utime: settled, so cached
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time_ns", lambda: later)
        assert result_range(tmp_path, hit, "utf-16")["end"] == {"line": 1, "character": 19}
    time.sleep(0.05)  # past a tick of ext4's coarse clock (a jiffy), as between a checkout and a `mv`
    os.rename(other, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns - 3600 * 10**9)
    assert result_range(tmp_path, hit, "utf-16")["end"] == {"line": 1, "character": 16}


# -- framing --------------------------------------------------------------------------------------------------
def frames(data: bytes) -> tuple[list[bytes], list[str]]:
    got, errors = [], []
    read_frames(io.BytesIO(data), got.append, lambda e: errors.append(e.message))
    return got, errors


def test_framing_recovers_from_bad_headers():
    body = json.dumps({"jsonrpc": "2.0", "method": "x"}).encode()
    ok = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    data = (ok + b"Content-Type: text/plain\r\n\r\n" + b"Content-Length: nope\r\n\r\n" + b"\r\n"
            + b"content-length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n%s"
            % (len(body), body))
    got, errors = frames(data)
    assert got == [body, body]
    assert len(errors) == 2 and all("Content-Length" in e for e in errors)


def test_framing_skips_oversized_bodies(monkeypatch):
    from codeneedle.server import protocol

    monkeypatch.setattr(protocol, "MAX_BODY_BYTES", 10)
    got, errors = frames(b"Content-Length: 20\r\n\r\n" + b"x" * 20 + b"Content-Length: 2\r\n\r\n{}")
    assert got == [b"{}"] and "exceeds" in errors[0]


def test_fd_reader(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"line one\nline two\n" + b"z" * 100_000)
    with open(path, "rb", buffering=0) as fh:
        r = FdReader(fh.fileno())
        assert r.readline(8192) == b"line one\n"
        assert r.readline(4) == b"line"
        assert r.readline(8192) == b" two\n"
        assert len(r.read(100_000)) == 100_000 and r.read(5) == b"" and r.readline(10) == b""


def test_paths_helper_refuses_escapes(tmp_path):
    from codeneedle.server.workspaces import Folder

    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    folder = Folder("file:///ws", root, "ws", NeedleSettings(), NeedleSettings().for_root(root), host=None)
    assert folder.relative(root / "src/a.py") == "src/a.py"
    assert folder.relative(root) == ""
    assert folder.relative(tmp_path / "ws/../outside/x") is None
    assert folder.contains(root / "src/a.py") and not folder.contains(root / "link/x.py")
    assert not folder.contains(Path("/etc/passwd"))


# -- a long-lived server --------------------------------------------------------------------------------------
async def test_the_server_keeps_no_record_of_messages_it_has_handled():
    """An editor's session sends thousands of notifications (didOpen, didClose, settings pushed) and commands
    (every search is workspace/executeCommand, which pygls hands on to the command under a second id). Once
    handled, none of them may stay behind: pygls 2.1.1 kept each one's future, a search's hits included."""
    ls = LanguageServer("leak-check", "1", protocol_cls=NeedleProtocol)
    answered = threading.Semaphore(0)
    pushed: list[object] = []

    @ls.command("check.echo")
    @ls.thread()
    def echo(ls: LanguageServer, *arguments) -> list:
        return ["hit" * 100] * 10

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration(ls: LanguageServer, params: types.DidChangeConfigurationParams) -> None:
        pushed.append(params.settings)

    class Sink(io.BytesIO):
        def write(self, data: bytes) -> int:
            if b'"result"' in data:
                answered.release()
            return len(data)

    ls.protocol.set_writer(StdoutWriter(Sink()))
    ls.protocol.receive({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                         "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    ls.protocol.receive({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    rounds = 200
    for i in range(rounds):
        uri = f"file:///src/mod{i}.py"
        ls.protocol.receive({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n" * 100}}})
        ls.protocol.receive({"jsonrpc": "2.0", "method": "textDocument/didClose",
                             "params": {"textDocument": {"uri": uri}}})
        ls.protocol.receive({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                             "params": {"settings": {"round": i}}})
        ls.protocol.receive({"jsonrpc": "2.0", "id": i, "method": "workspace/executeCommand",
                             "params": {"command": "check.echo", "arguments": [i]}})
    for _ in range(rounds + 1):  # initialize's answer and each command's
        assert await asyncio.to_thread(answered.acquire, timeout=30)
    for _ in range(100):  # the async handlers' last steps and the done-callbacks run on this loop
        if not ls.protocol._request_futures and len(pushed) == rounds:
            break
        await asyncio.sleep(0.01)
    assert len(pushed) == rounds and not ls.workspace.text_documents
    assert ls.protocol._request_futures == {}


async def test_shutdown_with_a_command_still_queued_answers_and_lets_the_server_exit_cleanly():
    """Shutdown cancels the handlers still pending; a cancelled thread handler's done-callback runs at once, and
    forgetting its record then changed pygls' table of handlers while shutdown walked it: shutdown failed, and the
    editor's `exit` ended the server with status 1."""
    ls = LanguageServer("shutdown-check", "1", protocol_cls=NeedleProtocol, max_workers=1)
    release = threading.Event()
    written: list[bytes] = []

    @ls.command("check.block")
    @ls.thread()
    def block(ls: LanguageServer, *arguments) -> str:
        release.wait(30)
        return "done"

    class Sink(io.BytesIO):
        def write(self, data: bytes) -> int:
            written.append(data)
            return len(data)

    ls.protocol.set_writer(StdoutWriter(Sink()))
    ls.protocol.receive({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                         "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    ls.protocol.receive({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    for i in range(2):  # the first holds the only worker; the second waits in the pool's queue
        ls.protocol.receive({"jsonrpc": "2.0", "id": f"block{i}", "method": "workspace/executeCommand",
                             "params": {"command": "check.block", "arguments": []}})
    await asyncio.sleep(0.2)
    try:
        ls.protocol.receive({"jsonrpc": "2.0", "id": "bye", "method": "shutdown", "params": None})
        for _ in range(100):
            if any(b'"bye"' in w for w in written):
                break
            await asyncio.sleep(0.01)
    finally:
        release.set()
    answer = next(json.loads(w.split(b"\r\n\r\n", 1)[1]) for w in written if b'"bye"' in w)
    assert "error" not in answer and answer["result"] is None
    assert ls.protocol._shutdown
