"""A minimal LSP client over a raw stdio pipe: sends anything (including garbage), reads every frame back.

Used by the fuzz test and the latency benchmark, where pytest-lsp's typed client would refuse to send the
malformed messages we want to send, or would add its own overhead to the timings.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NEEDLE = Path(sys.executable).with_name("needle")


class ServerGone(RuntimeError):
    """The server process exited or closed stdout."""


class RawClient:
    """Drives `needle lsp` (or any stdio LSP server command) with hand-made JSON-RPC."""

    def __init__(self, cmd: list[str] | None = None, *, cwd: Path | None = None, env: dict | None = None,
                 configuration: Any = None, stderr: Any = subprocess.DEVNULL):
        self.cmd = cmd or [str(NEEDLE), "lsp"]
        self.configuration = configuration
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd,
            env={**os.environ, **(env or {})})
        self._ids = itertools.count(1)
        self._responses: dict[Any, queue.Queue] = {}
        self._lock = threading.Lock()
        self.notifications: list[dict] = []
        self.server_requests: list[dict] = []
        self.orphans: list[dict] = []  # responses with an id nobody waits for (e.g. id null parse errors)
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- sending -----------------------------------------------------------------------------------
    def send_raw(self, body: bytes, *, header: bytes | None = None) -> None:
        """Write one frame; ``header`` overrides the computed Content-Length header block."""
        frame = (header if header is not None else f"Content-Length: {len(body)}\r\n\r\n".encode()) + body
        with self._write_lock:
            try:
                self.proc.stdin.write(frame)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError) as exc:
                raise ServerGone(str(exc)) from None

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message).encode())

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any = None, *, timeout: float = 60.0, raw_id: Any = None) -> dict:
        """Send a request and wait for its response (the whole response object: result or error)."""
        msg_id = next(self._ids) if raw_id is None else raw_id
        box: queue.Queue = queue.Queue()
        with self._lock:
            self._responses[msg_id] = box
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.wait_response(msg_id, box, timeout)

    def expect(self, msg_id: Any) -> queue.Queue:
        """Register interest in the response to ``msg_id`` before sending it by hand (``send_raw``)."""
        box: queue.Queue = queue.Queue()
        with self._lock:
            self._responses[msg_id] = box
        return box

    def send_and_wait(self, message: dict, *, timeout: float = 30.0) -> dict:
        """Send a hand-made request (its ``id`` must be unique) and wait for the answer to that id."""
        box: queue.Queue = queue.Queue()
        with self._lock:
            self._responses[message["id"]] = box
        self.send(message)
        return self.wait_response(message["id"], box, timeout)

    def wait_response(self, msg_id: Any, box: queue.Queue, timeout: float) -> dict:
        try:
            item = box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no response to request {msg_id!r} within {timeout}s") from None
        finally:
            with self._lock:
                self._responses.pop(msg_id, None)
        if item is None:
            raise ServerGone(f"server exited with {self.proc.poll()}")
        return item

    def wait_orphan(self, timeout: float = 10.0) -> dict:
        """The next response whose id nobody waits for (id null errors for unparseable input)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.orphans:
                    return self.orphans.pop(0)
            if self.proc.poll() is not None:
                raise ServerGone(f"server exited with {self.proc.returncode}")
            time.sleep(0.01)
        raise TimeoutError("no unsolicited response")

    # -- LSP conveniences ----------------------------------------------------------------------------
    def initialize(self, root: Path | None, *, options: Any = None, capabilities: dict | None = None,
                   timeout: float = 30.0) -> dict:
        params = {
            "processId": os.getpid(),
            "rootUri": root.as_uri() if root else None,
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}] if root else None,
            "capabilities": capabilities if capabilities is not None else {
                "window": {"workDoneProgress": True}, "workspace": {"configuration": True}},
            "initializationOptions": options,
        }
        response = self.request("initialize", params, timeout=timeout)
        self.notify("initialized", {})
        return response

    def command(self, command: str, *arguments: Any, timeout: float = 60.0) -> dict:
        return self.request("workspace/executeCommand", {"command": command, "arguments": list(arguments)},
                            timeout=timeout)

    def wait_ready(self, timeout: float = 300.0) -> dict:
        """Poll needle.status until no folder is starting or indexing."""
        return self.wait_status(lambda status: status["state"] == "ready", timeout)

    def wait_status(self, done: Callable[[dict], bool], timeout: float = 300.0) -> dict:
        """Poll needle.status until ``done(status)`` holds or ``timeout`` passes; the last status either way."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.command("needle.status")["result"]
            if done(status) or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def close(self, timeout: float = 15.0) -> int | None:
        """shutdown + exit, then wait; kills the server if it does not go."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout=timeout)
                self.notify("exit")
        except (ServerGone, TimeoutError):
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    # -- reading -----------------------------------------------------------------------------------
    def _read(self) -> None:
        out = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = out.readline()
                    if not line:
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length is None:
                    raise RuntimeError("server sent a frame without Content-Length")
                body = out.read(length)
                if len(body) < length:
                    return
                self._dispatch(json.loads(body))
        finally:
            with self._lock:
                for box in self._responses.values():
                    box.put(None)

    def _dispatch(self, msg: dict) -> None:
        if "method" in msg and "id" in msg:
            self.server_requests.append(msg)
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": self._answer(msg)})
        elif "method" in msg:
            self.notifications.append(msg)
        else:
            with self._lock:
                box = self._responses.get(msg.get("id"))
                if box is None:
                    self.orphans.append(msg)
                    return
            box.put(msg)

    def _answer(self, msg: dict) -> Any:
        if msg["method"] == "workspace/configuration":
            return [self.configuration for _ in msg["params"]["items"]]
        return None
