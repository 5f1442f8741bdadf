"""Native libraries that must be imported in a fixed order and from one thread at a time."""

from __future__ import annotations

import base64
import functools
import os
import sys
import threading
from collections.abc import Mapping
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


SPIN_COUNT = "10000"


def calm_thread_pools() -> None:
    """Thread pools that do not spin against the rest of a busy machine; set before numpy and torch load. A value
    the user set stands.

    numpy's OpenBLAS gets one thread: a query's small matrix products ran several times slower on two (threads
    spinning against each other on a busy 2-core machine: 0.5 s vs 0.06 s per query measured). OpenMP's waiting
    threads (torch's, through libgomp) spin briefly, then sleep: libgomp spins 300,000 rounds by default, and on a
    2-core machine busy with other work (an editor, a build) the query adapter's fit took 110 s with 2 threads
    instead of 11 s idle. With 10,000 rounds: 54 s loaded, 10.5 s idle (OMP_WAIT_POLICY=PASSIVE: 40 s loaded but
    13.7 s idle)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def cpu_features() -> dict[str, bool]:
    """This CPU's SIMD features as numpy's dispatcher found them through CPUID (``AVX2``, ``AVX512VNNI``, ...).

    CPUID rather than /proc/cpuinfo: it is what the native libraries themselves look at, on every OS (and under
    an emulator, which passes the host's /proc/cpuinfo through)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return dict(__cpu_features__)


def int8_saturates(features: Mapping[str, bool] | None = None) -> bool:
    """Whether ONNX Runtime's int8 MatMul on this CPU clips sums: an x86 CPU with AVX2 (or AVX-512) but no VNNI.

    There its u8 x s8 kernel (``vpmaddubsw``) adds each pair of products in saturating 16 bits before widening;
    with 8-bit weights such pairs reach 255 * 127 * 2 = 64,770 and are clipped to 32,767. Without AVX2 (SSE4,
    AVX) the kernel widens first, with VNNI it adds in 32 bits: exact. Measured with qemu's Haswell model
    (AVX2, FMA, no VNNI) on the shipped encoder: chunk vectors at a cosine of 0.9936 (mean over 200 CoSQA
    functions, min 0.984) to the exact int8 ones, scores of a 3-file repository off by up to 0.03; Nehalem
    and SandyBridge models matched a VNNI machine to 0.0014 in the hidden states.

    ``features`` given (numpy's names): the rule alone. Else this CPU's: where CPUID leaves it open (AVX2 and no
    AVX-512 VNNI, which is also every Alder Lake and later CPU with AVX-VNNI, which numpy does not report), one
    small int8 MatMul through ONNX Runtime says what its kernel does here (``_int8_kernel_clips``)."""
    if features is not None:
        return _may_clip(features)
    return _may_clip(cpu_features()) and _int8_kernel_clips()


def _may_clip(features: Mapping[str, bool]) -> bool:
    return bool(features.get("AVX2") and not features.get("AVX512VNNI") and not features.get("AVX_VNNI"))


# MatMulInteger(a: uint8[4, 256], b: int8[256, 64]) -> int32[4, 64], opset 13: onnx.helper's serialization, kept
# as bytes so that asking costs no `import onnx` (a second) in each process (tests/test_old_cpus.py rebuilds it).
INT8_PROBE_GRAPH = base64.b64decode(
    "CAgSBm5lZWRsZTpnChgKAWEKAWISAXkiDU1hdE11bEludGVnZXISCmludDhfcHJvYmVaFAoBYRIPCg0IAhIJCgIIBAoDCIACWhQKAWISDwoN"
    "CAMSCQoDCIACCgIIQGITCgF5Eg4KDAgGEggKAggECgIIQEIECgAQDQ==")


@functools.cache
def _int8_kernel_clips() -> bool:
    """Whether ONNX Runtime's u8 x s8 MatMul here gives 255 * 127 summed 256 times, or the clipped 32,767 * 128.

    A few milliseconds, once per process; where it cannot run, CPUID's answer (it clips) stands."""
    import numpy as np

    try:
        ort = onnxruntime()
        session = ort.InferenceSession(INT8_PROBE_GRAPH, providers=["CPUExecutionProvider"])
        out = session.run(None, {"a": np.full((4, 256), 255, np.uint8), "b": np.full((256, 64), 127, np.int8)})[0]
    except Exception:  # noqa: BLE001 - a runtime that cannot say: the safe graph
        return True
    return bool((out != 255 * 127 * 256).any())


def require_numpy() -> None:
    """Import numpy, turning its refusal of an older CPU into one line that says what is missing and what to do.

    numpy 2 is built for x86-64-v2 (SSE4.2, POPCNT) and, on a CPU without it (Core 2, AMD K10), raises a
    RuntimeError on import: every command ended in a 15-line traceback. numpy 1.26 (which Needle accepts) with
    ml-dtypes 0.5 (onnx's, built for numpy 2 from 0.6) runs there: a first `needle search` under qemu's Penryn
    model built the graphs, indexed and gave the scores of a native run."""
    try:
        import numpy  # noqa: F401
    except RuntimeError as exc:
        if "baseline optimizations" not in str(exc):
            raise
        from codeneedle.errors import NeedleError

        raise NeedleError(old_cpu_message(str(exc), sys.executable)) from None


def old_cpu_message(numpy_error: str, python: str) -> str:
    """The line for numpy's "built with baseline optimizations: (...) but your machine doesn't support: (...)"."""
    from importlib.metadata import PackageNotFoundError, version

    missing = numpy_error.rpartition("(")[2].partition(")")[0].strip() or "x86-64-v2"
    try:
        built = f"numpy {version('numpy')}"
    except PackageNotFoundError:
        built = "this numpy"
    return (f"this CPU lacks {missing} (SSE4.2 and POPCNT: x86-64 CPUs since Intel Nehalem, 2008, and AMD "
            f"Bulldozer, 2011), which {built} requires; numpy 1.26 runs on it: "
            f"{python} -m pip install 'numpy<2' 'ml-dtypes<0.6'")
