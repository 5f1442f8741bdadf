"""Every bad MCP request gets an answer that names the problem.

The SDK's stdio transport drops a line it cannot parse (invalid JSON, a non-object, a lone surrogate such as
``"\\ud800"``, which its JSON parser rejects) after logging it at debug level: the client waits forever. Here
the transport's read stream is screened: such a line gets a JSON-RPC error (Parse error or Invalid Request,
with the request's id when it can be read) and the server goes on. Tool arguments are checked before any
work: sizes are capped (the LSP caps queries at 4,096 characters; an unbounded 10 MB MCP query once took
300 s and 2.4 GB), and NUL characters or lone surrogates are refused by name.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger("codeneedle.mcp")

MAX_QUERY_CHARS = 4096  # indexer.index's cap, restated: the servers start without importing the index
MAX_PATH_CHARS = 4096
MAX_GLOB_CHARS = 1024
MAX_LANG_CHARS = 256
MAX_LINE_BYTES = 1 << 20  # one MCP message; a tool call is a few hundred bytes

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
_SURROGATE = re.compile("[\ud800-\udfff]")
_LIMITS = {"query": MAX_QUERY_CHARS, "path": MAX_PATH_CHARS, "glob": MAX_GLOB_CHARS, "lang": MAX_LANG_CHARS}


def check_argument(name: str, value: str | None) -> str | None:
    """The problem with one string argument, or None: too long, a lone surrogate, a NUL character."""
    if value is None:
        return None
    limit = _LIMITS.get(name, MAX_QUERY_CHARS)
    if len(value) > limit:
        return f"{name} is too long ({len(value)} characters, at most {limit})"
    found = _SURROGATE.search(value)
    if found:
        return (f"{name} contains a lone surrogate (\\u{ord(found.group()):04x} at character {found.start()}), "
                "which is not valid Unicode")
    if "\0" in value:
        return f"{name} contains a NUL character (at character {value.index(chr(0))})"
    if name == "glob" and "\\" in value:
        return "glob contains a backslash: use '/' between folders (globs match POSIX paths relative to the root)"
    return None


def problem_with_line(line: str) -> tuple[Any, int, str] | None:
    """(id, code, message) for a transport line the SDK could not take, or None when it is fine JSON-RPC."""
    if len(line) > MAX_LINE_BYTES:
        return None, INVALID_REQUEST, f"Invalid Request: message of {len(line)} characters exceeds {MAX_LINE_BYTES}"
    try:
        data = json.loads(line)  # Python's parser accepts lone surrogates: the id can still be found
    except (ValueError, RecursionError) as exc:
        return None, PARSE_ERROR, f"Parse error: {str(exc)[:200]}"
    if not isinstance(data, dict):
        return None, INVALID_REQUEST, f"Invalid Request: a message must be a JSON object, got {type(data).__name__}"
    msg_id = data.get("id")
    if not isinstance(msg_id, int | str) or isinstance(msg_id, bool):
        msg_id = None
    found = _find_surrogate(data)
    if found is not None:
        return msg_id, PARSE_ERROR, f"Parse error: {found} contains a lone surrogate, which is not valid Unicode"
    return msg_id, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request, notification or response"


def _find_surrogate(value: Any, where: str = "message", depth: int = 0) -> str | None:
    if depth > 64:
        return None
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            if _SURROGATE.search(k):
                return f"a key of {where}"
            found = _find_surrogate(v, k if where in ("message", "params", "arguments") else f"{where}.{k}", depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_surrogate(v, f"{where}[{i}]", depth + 1)
            if found:
                return found
    return None


class ScreenedStream:
    """The SDK's read stream, with every line it failed to parse answered by a JSON-RPC error."""

    def __init__(self, inner: Any, write: Any):
        self._inner = inner
        self._write = write

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._answer(item)

    async def _answer(self, exc: Exception) -> None:
        from mcp.shared.message import SessionMessage

        try:
            from mcp_types import ErrorData, JSONRPCError
        except ImportError:  # pragma: no cover - mcp 1.x keeps them in mcp.types
            from mcp.types import ErrorData, JSONRPCError  # type: ignore[no-redef]
        line = _raw_input(exc)
        found = problem_with_line(line) if line is not None else None
        msg_id, code, message = found or (None, PARSE_ERROR, f"Parse error: {str(exc).splitlines()[0][:200]}")
        log.warning("answered a bad message: %s", message)
        error = JSONRPCError(jsonrpc="2.0", id=msg_id, error=ErrorData(code=code, message=message))
        await self._write.send(SessionMessage(error))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> ScreenedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except Exception as exc:  # anyio's end-of-stream
            if type(exc).__name__ in ("EndOfStream", "ClosedResourceError", "BrokenResourceError"):
                raise StopAsyncIteration from None
            raise

    async def __aenter__(self) -> ScreenedStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _raw_input(exc: Exception) -> str | None:
    """The line a pydantic ValidationError was raised for (its first error's input), when it is a string."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return None
    try:
        first = errors()[0]
    except Exception:  # noqa: BLE001
        return None
    raw = first.get("input")
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if first.get("type") == "json_invalid":
        return raw if isinstance(raw, str) else None  # the line itself
    try:
        return json.dumps(raw)  # the parsed value that did not fit a JSON-RPC message
    except (TypeError, ValueError):
        return None
