"""A byte-bounded cache of files' line offsets, for turning result lines into LSP ranges.

The first version cached whole files as lists of line ``bytes`` (128 entries, no size bound): one search
returning 128 results from 1 MiB files took the server's RSS from 412 MB to 2.8 GB and kept it there (a
one-character line costs ~34 bytes as a ``bytes`` object). Here a file costs its raw bytes plus 8 bytes per
line (a numpy offsets array), the total is bounded by :data:`MAX_CACHE_BYTES`, and a file larger than a
quarter of the budget is read, used and dropped without being cached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from codeneedle.indexer.racy import settled

if TYPE_CHECKING:  # numpy is imported on first use: it stays out of the server's start-up
    import numpy as np

MAX_CACHE_BYTES = 32 << 20

Reader = Callable[[str, int, int], "bytes | None"]
_Key = tuple[str, int, int]


class LineCache:
    """LRU of (path, ctime_ns, size) -> (raw bytes, line start offsets), bounded by their bytes.

    The ctime, not the mtime: a file renamed over another of the same size and mtime, or rewritten and dated
    back, keeps both, while every change sets its ctime anew."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[_Key, tuple[bytes, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def line(self, path: str, ctime_ns: int, size: int, line: int, read: Reader) -> bytes | None:
        """Line ``line`` (0-based) of the file without its end-of-line bytes, or None past the end/unreadable."""
        key = (path, ctime_ns, size)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            read_at = time.time_ns()
            data = read(path, ctime_ns, size)
            if data is None:
                return None
            entry = (data, _line_starts(data))
            if settled(ctime_ns, read_at):  # else a rewrite in the same clock tick would keep the key
                self._put(key, entry)
        data, starts = entry
        if line >= len(starts):
            return None
        start = int(starts[line])
        end = int(starts[line + 1]) - 1 if line + 1 < len(starts) else len(data)
        return data[start:end].rstrip(b"\r")

    def _put(self, key: _Key, entry: tuple[bytes, np.ndarray]) -> None:
        cost = _cost(entry)
        if cost > self.max_bytes // 4:
            return  # used once and dropped: one huge file must not flush everything else
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = entry
            self.bytes += cost
            while self.bytes > self.max_bytes and self._entries:
                _, old = self._entries.popitem(last=False)
                self.bytes -= _cost(old)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


def _line_starts(data: bytes) -> np.ndarray:
    import numpy as np

    raw = np.frombuffer(data, dtype=np.uint8)
    ends = raw == 10
    # A lone \r ends a line too (classic Mac endings), as in the chunker and in editors; \r\n ends it once.
    lone_cr = raw == 13
    lone_cr[:-1] &= ~ends[1:]
    breaks = np.flatnonzero(ends | lone_cr)
    return np.concatenate(([0], breaks + 1)).astype(np.int64)


def _cost(entry: tuple[bytes, np.ndarray]) -> int:
    return len(entry[0]) + entry[1].nbytes
