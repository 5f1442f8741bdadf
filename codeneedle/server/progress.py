"""Server-initiated work done progress ($/progress): create, begin, throttled reports, end; cancellable."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger("codeneedle.server")

_tokens = itertools.count(1)
CREATE_TIMEOUT_S = 10.0
REPORT_INTERVAL_S = 0.25


class WorkDone:
    """One progress sequence shown by the client; a silent no-op where the client cannot show progress.

    Call from a worker thread (``begin`` waits for the client's answer to window/workDoneProgress/create).
    """

    def __init__(self, server: LanguageServer, title: str, *, on_cancel: Callable[[], None] | None = None):
        self.server = server
        self.title = title
        self.on_cancel = on_cancel
        self.token: str | None = None
        self._last_report = 0.0
        self._last_percentage: int | None = None

    def begin(self, message: str | None = None) -> None:
        if not _client_supports_progress(self.server):
            return
        token = f"needle-{next(_tokens)}"
        # Registered before the client hears of the token, so a cancel that races `begin` is still honoured.
        cancelled: Future[None] = Future()
        cancelled.add_done_callback(self._cancelled)
        tokens = self.server.work_done_progress.tokens
        tokens[token] = cancelled  # pygls cancels it on window/workDoneProgress/cancel
        try:
            created = self.server.protocol.send_request(
                types.WINDOW_WORK_DONE_PROGRESS_CREATE, types.WorkDoneProgressCreateParams(token=token))
            created.result(timeout=CREATE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a client refusing progress must not stop indexing
            tokens.pop(token, None)
            log.info("client did not accept a progress token (%s); indexing without a progress bar", exc)
            return
        self.token = token
        self.server.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title=self.title, message=message, percentage=0, cancellable=self.on_cancel is not None))

    def report(self, message: str, percentage: int | None = None, *, force: bool = False) -> None:
        if self.token is None:
            return
        now = time.monotonic()
        if not force and now - self._last_report < REPORT_INTERVAL_S and percentage == self._last_percentage:
            return
        if not force and now - self._last_report < REPORT_INTERVAL_S / 5:
            return
        self._last_report, self._last_percentage = now, percentage
        self.server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    def end(self, message: str | None = None) -> None:
        token, self.token = self.token, None
        if token is None:
            return
        self.server.work_done_progress.tokens.pop(token, None)
        self.server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def _cancelled(self, future: Future[None]) -> None:
        if future.cancelled() and self.on_cancel is not None:
            log.info("%s: cancelled by the client", self.title)
            self.on_cancel()


def _client_supports_progress(server: LanguageServer) -> bool:
    try:
        window = server.client_capabilities.window
    except Exception:  # noqa: BLE001 - not initialised
        return False
    return bool(window and window.work_done_progress)
