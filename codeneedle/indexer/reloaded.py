"""A small file read again only when it changes: a stat per use is all it costs (a running language server picks
up what the CLI wrote at its next search)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class Reloaded(Generic[T]):
    """``load(path)``, cached until the file's mtime or size changes; ``missing`` while there is no file."""

    def __init__(self, path: Path, load: Callable[[Path], T], missing: T):
        self.path = path
        self._load = load
        self._missing = missing
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._value = missing

    def get(self) -> T:
        stamp = None
        with contextlib.suppress(OSError):
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._value = self._load(self.path) if stamp is not None else self._missing
            return self._value
