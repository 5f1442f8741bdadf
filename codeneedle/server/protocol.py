"""The JSON-RPC edge: framing on stdio and a protocol that answers every malformed request with an error.

pygls drops a request whose params fail to deserialize (the client then waits forever) and reports invalid
JSON only through window/showMessage. Here a reader thread frames messages (with a size cap), and
``NeedleProtocol.receive`` turns each failure into the JSON-RPC error the spec asks for: Parse error for
invalid JSON, Invalid Request for a non-object or a wrong ``jsonrpc``/``id``, Invalid params (naming the bad
field) for params that do not fit the method. Notifications get no answer, by definition; they are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol

log = logging.getLogger("codeneedle.server")

# A 60 MB message peaked at 2.9 GB RSS (json.loads of many small objects: ~48x its size) and kept most of it.
# No client message comes near 8 MiB: the server asks for no document text (sync kind None), and a
# didChangeWatchedFiles of 50k changes is ~5 MB. Larger bodies are skipped unread and answered.
MAX_BODY_BYTES = 8 << 20
MAX_HEADER_BYTES = 8192
_EOF = object()
_NO_ID = object()  # a notification (no id), as opposed to a request whose id is null
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _HandlerTable(dict):
    """pygls' table of running handlers, whose ``items()`` is a snapshot.

    Shutdown walks the table cancelling what is pending, and a pending thread handler's cancel() runs its
    done-callbacks at once, pygls' own answer among them, which takes it out of the table: "dictionary changed
    size during iteration", so shutdown failed whenever a command waited for a worker, and `exit` ended the server
    with status 1."""

    def items(self):  # type: ignore[override]
        return list(super().items())


class NeedleProtocol(LanguageServerProtocol):
    """pygls' LSP protocol with strict, always-answering handling of malformed input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_futures = _HandlerTable(self._request_futures)

    def get_result_type(self, method: str) -> Any:
        # workspace/configuration answers are read leniently (clients disagree on their shape).
        if method == types.WORKSPACE_CONFIGURATION:
            return None
        return super().get_result_type(method)

    def receive(self, data: Any) -> None:
        """Route one decoded JSON body."""
        if not isinstance(data, dict):
            self.reply_error(None, JsonRpcInvalidRequest(
                f"Invalid Request: a message must be a JSON object, got {type(data).__name__}"))
            return
        has_id = "id" in data
        msg_id = data.get("id")
        id_ok = _valid_id(msg_id)
        method = data.get("method")
        if "method" in data and not isinstance(method, str):
            if has_id:
                self.reply_error(msg_id if id_ok else None, JsonRpcInvalidRequest("Invalid Request: method must be a string"))
            return
        if data.get("jsonrpc") != "2.0":
            if method is not None and has_id:
                self.reply_error(msg_id if id_ok else None, JsonRpcInvalidRequest('Invalid Request: jsonrpc must be "2.0"'))
            else:
                log.warning("ignored a message without jsonrpc 2.0")
            return
        if has_id and not id_ok and not (msg_id is None and "error" in data):
            if method is not None:
                self.reply_error(None, JsonRpcInvalidRequest("Invalid Request: id must be an integer or a string"))
            return
        if method is None and not has_id:
            log.warning("ignored a message with neither method nor id")
            return
        if method is not None and "params" in data and not isinstance(data["params"], dict | list | None):
            if has_id:
                self.reply_error(msg_id, JsonRpcInvalidParams(f"Invalid params for {method}: params must be an object or an array"))
            return
        if method == types.WORKSPACE_EXECUTE_COMMAND and (problem := _command_arguments_problem(data.get("params"))):
            # cattrs would read an object's keys, or a string's characters, as the list of arguments: a search for
            # "query" answered `"arguments": {"query": "..."}` (an Emacs plist written without its vector).
            if has_id:
                self.reply_error(msg_id, JsonRpcInvalidParams(f"Invalid params for {method}: {problem}"))
            return
        try:
            message = self.structure_message(data)
        except JsonRpcException as exc:
            detail = _detail(exc)
            if method is not None and has_id:
                self.reply_error(msg_id, JsonRpcInvalidParams(f"Invalid params for {method}: {detail}"))
            else:
                log.warning("ignored a malformed %s: %s", f"{method} notification" if method else "response", detail)
            return
        if not self._lifecycle_allows(method, msg_id if has_id else _NO_ID):
            return
        if self._shutdown and method not in (None, types.EXIT):
            if has_id:
                self.reply_error(msg_id, JsonRpcInvalidRequest("Invalid Request: the server is shutting down"))
            return
        try:
            self.handle_message(message)
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the server
            log.exception("failed to handle %s", method or "a response")
            if method is not None and has_id:
                self.reply_error(msg_id, JsonRpcInternalError(f"Internal error: {exc}"))

    def _lifecycle_allows(self, method: str | None, msg_id: Any) -> bool:
        """The spec's order: nothing but ``initialize`` (and ``exit``) before ``initialize``, which comes once.

        A request before it gets -32002 ServerNotInitialized (a ``shutdown`` there used to be answered and then
        every ``initialize`` refused); a second ``initialize`` is refused rather than opening another root.
        """
        if method is None or method == types.EXIT:
            return True
        if method == types.INITIALIZE:
            if getattr(self, "_initialize_seen", False):
                if msg_id is not _NO_ID:
                    self.reply_error(msg_id, JsonRpcInvalidRequest("Invalid Request: initialize may be sent only once"))
                return False
            self._initialize_seen = True
            return True
        if not getattr(self, "_initialize_seen", False):
            if msg_id is not _NO_ID:
                self.reply_error(msg_id, JsonRpcServerNotInitialized(
                    f"Server not initialized: {method} before initialize"))
            return False
        return True

    def _execute_handler(self, msg_id: Any, handler: Any, callback: Any, args: Any = None,
                         kwargs: Any = None) -> None:
        """pygls' handler call, forgetting the handler's future once it is done.

        pygls 2.1.1 files the future of each handler it runs in ``_request_futures`` (where $/cancelRequest finds
        it) but takes it out only when it answers a request: a notification's handler (filed under a fresh uuid)
        and the command a built-in handler hands on to (workspace/executeCommand runs ours under another uuid)
        stayed there for good, each with its result: every search's hits, every didOpen/didClose. 2,000 searches
        grew the server by 19 KB each, 9 KB with this (the bounded line cache filling up). Remove this when pygls
        forgets them itself.
        """
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs this protocol: nothing else walks the table meanwhile
            future.add_done_callback(lambda done: self._forget(msg_id, done))
            return
        # Forgotten on the loop, never where the callback runs: a thread handler's runs on its worker thread, and a
        # pending one's at once inside cancel(), which shutdown calls while it walks this very table ("dictionary
        # changed size during iteration": shutdown failed, and `exit` ended the server with status 1).
        future.add_done_callback(lambda done: _call_soon(loop, self._forget, msg_id, done))

    def _forget(self, msg_id: Any, future: Any) -> None:
        # Only that very future: a client may use an id again once its request was answered.
        if self._request_futures.get(msg_id) is future:
            self._request_futures.pop(msg_id, None)

    def reply_error(self, msg_id: Any, error: JsonRpcException) -> None:
        """Send an error response; ``msg_id`` None is written as ``"id": null``, as JSON-RPC requires.

        pygls' converter drops None fields, so its own response would lose the ``id`` member altogether.
        """
        body = self._converter.unstructure(error.to_response_error())
        self._send_data({"jsonrpc": JsonRPCProtocol.VERSION, "id": msg_id, "error": body})

    def _send_data(self, data: Any) -> None:
        """pygls' send, with no lone surrogate left in the JSON text (U+FFFD in its place).

        A folder whose name is not UTF-8 reaches Python as lone surrogates (surrogateescape), and json.dumps
        writes them as ``"\\udcff"``: valid JSON to Python and JavaScript, but Neovim's decoder refuses the whole
        message ("invalid unicode escape code"), so `:NeedleStatus` never answered and log lines were lost there.
        URIs keep every byte (percent-encoded, ``results.file_uri``); only text shown to people changes.
        """
        if data and "\\ud" in json.dumps(data, default=self._serialize_message):
            text = json.dumps(data, default=self._serialize_message, ensure_ascii=False)
            if _LONE_SURROGATE.search(text):  # else the escapes were pairs: a character outside the BMP
                data = json.loads(_LONE_SURROGATE.sub("\ufffd", text))
        super()._send_data(data)


def _command_arguments_problem(params: Any) -> str | None:
    """What is wrong with workspace/executeCommand's ``arguments`` (an array, or absent), or None."""
    arguments = params.get("arguments") if isinstance(params, dict) else None
    if arguments is None or isinstance(arguments, list):
        return None
    kind = ("an object" if isinstance(arguments, dict) else "a string" if isinstance(arguments, str)
            else "a boolean" if isinstance(arguments, bool) else "a number")
    return f'arguments must be an array, as in "arguments": [{{"query": "..."}}], got {kind}'


def _valid_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _detail(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.BaseValidationError):
        try:
            text = "; ".join(cattrs.transform_error(cause))
        except Exception:  # noqa: BLE001
            text = str(cause)
    else:
        text = str(cause or exc) or type(cause or exc).__name__
    text = text.replace("$.params.", "").replace("$.params", "params")
    return text if len(text) <= 500 else text[:497] + "..."


class FdReader:
    """``readline``/``read`` straight on a file descriptor.

    A daemon thread blocked in a BufferedReader holds its lock and makes interpreter shutdown abort; plain
    ``os.read`` holds nothing.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def readline(self, limit: int) -> bytes:
        while True:
            end = self.buf.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self.buf) >= limit or not self._fill():
                return self._take(min(limit, len(self.buf)))

    def read(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        return self._take(min(n, len(self.buf)))

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def read_frames(stdin: FdReader | BinaryIO, on_frame, on_error) -> None:
    """Read LSP frames (``Content-Length`` headers + body) until EOF; runs in the reader thread."""
    while True:
        length: int | None = None
        headers = 0
        while True:
            line = stdin.readline(MAX_HEADER_BYTES)
            if not line:
                return
            if not line.strip():
                break
            headers += 1
            name, sep, value = line.partition(b":")
            if sep and name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = -1
        if length is None or length < 0:
            if headers:  # a header block without a usable length (a stray blank line is just skipped)
                on_error(JsonRpcParseError("Parse error: missing or invalid Content-Length header"))
            continue
        if length > MAX_BODY_BYTES:
            left = length
            while left > 0:  # skip the body to stay in sync with the stream
                chunk = stdin.read(min(left, 1 << 20))
                if not chunk:
                    return
                left -= len(chunk)
            on_error(JsonRpcParseError(f"Parse error: message of {length} bytes exceeds {MAX_BODY_BYTES}"))
            continue
        body = stdin.read(length)
        if len(body) < length:
            return
        on_frame(body)


async def serve(protocol: NeedleProtocol, stdin: FdReader | BinaryIO, stop: threading.Event) -> None:
    """Feed frames from ``stdin`` to ``protocol`` on the event loop until EOF, ``exit`` or ``stop``."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(inbox.put_nowait, item)

    def reader() -> None:
        try:
            read_frames(stdin, put, lambda err: put(err))
        except Exception:  # noqa: BLE001
            log.exception("reading stdin failed")
        finally:
            put(_EOF)

    # A daemon thread: a blocked read must never keep the process alive after `exit`.
    threading.Thread(target=reader, name="needle-stdin", daemon=True).start()
    while not stop.is_set():
        item = await inbox.get()
        if item is _EOF:
            log.info("client closed the connection")
            return
        if isinstance(item, JsonRpcException):
            protocol.reply_error(None, item)
            continue
        try:
            data = _json_body(item)
        except (ValueError, RecursionError) as exc:
            protocol.reply_error(None, JsonRpcParseError(f"Parse error: {str(exc)[:200]}"))
            continue
        protocol.receive(data)


def _json_body(body: bytes) -> Any:
    """A frame's JSON. Bytes that are not UTF-8 inside it are kept as lone surrogates (surrogateescape), as Python
    reads such a file name: Neovim sends a folder named in Latin-1 as those raw bytes (``"rootPath":
    "/src/caf\\xe9"``), and refusing the message as a parse error stopped the server before it began. What is no
    JSON either way is still a parse error."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        return json.loads(body.decode("utf-8", "surrogateescape"))


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: the process is ending, nothing to forget
        loop.call_soon_threadsafe(fn, *args)
