"""Native libraries that must be imported in a fixed order and from one thread at a time."""

from __future__ import annotations

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
    """
    with _IMPORT_LOCK:
        import onnxruntime as ort
        import onnxruntime.capi._pybind_state  # noqa: F401  (the native module itself, fully loaded)
    return ort
