"""Native libraries that must be imported in a fixed order and from one thread at a time."""

from __future__ import annotations

import os
import threading
from types import ModuleType

_IMPORT_LOCK = threading.Lock()


def onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, imported under a process-wide lock.

    Python's per-module import locks let two threads that import ``onnxruntime`` and one of its submodules at the
    same moment each take one lock and wait for the other; Python breaks that deadlock by handing one of them a
    partly initialised module, and onnxruntime then fails with "cannot import name 'ExecutionMode'". That happened
    in about a third of fresh processes where the model loaded in the background while a search opened the vector
    index. Import onnxruntime only through this function.

    Its telemetry is turned off first (``ORT_DISABLE_TELEMETRY=1``, unless the user set it): onnxruntime 1.32 on
    Linux otherwise writes a device id and a queue of events to upload (process and OS information) into
    ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` on the first session of every fresh home, and prints a
    warning where that folder cannot be written. Nothing of Needle's leaves the machine.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    with _IMPORT_LOCK:
        import onnxruntime as ort
        import onnxruntime.capi._pybind_state  # noqa: F401  (the native module itself, fully loaded)
    return ort
