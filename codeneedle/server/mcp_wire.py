"""The MCP stdio wire, screened: every line the SDK would drop or misread is answered here (see mcp_guard).

``ScreenedLines`` sits between stdin and the SDK's stdio transport and answers a bad line before the SDK sees
it: the SDK drops what it cannot parse and takes a request with a null (or boolean, fractional, object) id for
a notification, leaving the client waiting either way. ``ScreenedStream`` wraps the transport's read stream
and answers anything the SDK still refuses (a malformed response, an oversized line) instead of dropping it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import AsyncIterable, Iterator
from typing import Any, BinaryIO

import anyio

from codeneedle.server.mcp_guard import (
    INVALID_REQUEST,
    MAX_LINE_BYTES,
    NOT_A_MESSAGE,
    PARSE_ERROR,
    Problem,
    problem_with_line,
    problem_with_message,
    usable_id,
)

log = logging.getLogger("codeneedle.mcp")


@contextlib.contextmanager
def claimed_stdin() -> Iterator[BinaryIO]:
    """The client's stream on a private descriptor, with fd 0 on the null device while serving.

    The SDK does this for the stdin it opens; given ours, it does not: a child process reading its inherited
    stdin would otherwise eat MCP messages. The private descriptor is never closed: a worker thread may still
    be blocked reading it after the transport exits.
    """
    try:
        wire = os.dup(0)
        null = os.open(os.devnull, os.O_RDONLY)
    except OSError:  # no stdin at all: nothing to read
        yield io.BytesIO()
        return
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    try:
        yield os.fdopen(wire, "rb", closefd=False)
    finally:
        with contextlib.suppress(OSError):
            os.dup2(wire, 0)


def text_lines(binary: BinaryIO) -> AsyncIterable[str]:
    """Lines decoded as UTF-8, read on a worker thread. A byte that is not UTF-8 becomes a lone surrogate
    (surrogateescape), which the screening refuses by name: replaced by U+FFFD, as the SDK decodes, a query would
    be searched with a character the client never sent."""
    return anyio.wrap_file(io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape"))


async def send_error(write: Any, problem: Problem) -> None:
    """Write one JSON-RPC error response on the transport's write stream."""
    from mcp.shared.message import SessionMessage

    try:
        from mcp_types import ErrorData, JSONRPCError
    except ImportError:  # pragma: no cover - mcp 1.x keeps them in mcp.types
        from mcp.types import ErrorData, JSONRPCError  # type: ignore[no-redef]
    log.warning("answered a bad message: %s", problem.message)
    error = JSONRPCError(jsonrpc="2.0", id=problem.id, error=ErrorData(code=problem.code, message=problem.message))
    await write.send(SessionMessage(error))


class ScreenedLines:
    """stdin's lines for the SDK's transport, less those answered here (``answer_to`` names the write stream)."""

    def __init__(self, lines: AsyncIterable[str]):
        self._lines = lines.__aiter__()
        self._write: Any = None
        self._ready = anyio.Event()

    def answer_to(self, write: Any) -> None:
        """Answer bad lines on ``write`` (the transport's write stream, known once the transport is open)."""
        self._write = write
        self._ready.set()

    def __aiter__(self) -> ScreenedLines:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await self._lines.__anext__()
            # An oversized line is left to the SDK (a long query is refused by the tool, by name); parsing it
            # twice would double the memory a huge message costs.
            problem = problem_with_line(line) if len(line) <= MAX_LINE_BYTES else None
            if problem is None:
                return line
            await self._ready.wait()
            await send_error(self._write, problem)


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
            await send_error(self._write, answer_for(item))

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


def answer_for(exc: Exception) -> Problem:
    """The error for a line the SDK refused, from its pydantic ValidationError."""
    try:
        errors = exc.errors()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a ValidationError
        errors = []
    if not errors:
        return Problem(None, PARSE_ERROR, f"Parse error: {(str(exc).splitlines() or [''])[0][:200]}")
    if errors[0].get("type") == "json_invalid":
        line = errors[0].get("input")
        if isinstance(line, bytes | bytearray):
            line = bytes(line).decode("utf-8", "replace")
        line = line if isinstance(line, str) else ""
        return problem_with_line(line) or Problem(_id_in(line), INVALID_REQUEST, NOT_A_MESSAGE)
    # A union member's missing field reports the whole message as its input (loc: (member, field)); the
    # first error's input is often a nested value (the params, the jsonrpc string) and must not be taken
    # for the message.
    whole = next((e["input"] for e in errors if e.get("type") == "missing" and len(e.get("loc", ())) == 2
                  and isinstance(e.get("input"), dict)), None)
    if whole is None:
        return Problem(None, INVALID_REQUEST, NOT_A_MESSAGE)
    return problem_with_message(whole) or Problem(usable_id(whole), INVALID_REQUEST, NOT_A_MESSAGE)


def _id_in(line: str) -> int | str | None:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return usable_id(data) if isinstance(data, dict) else None
