"""Which engine embeds code in bulk: CUDA (torch, fp16) when there is a GPU, else ONNX Runtime on every core.

Queries never come here: they go through ``numpy_bert`` (no torch import, a few milliseconds).

Knobs (environment): ``NEEDLE_DEVICE`` = cpu | cuda, ``NEEDLE_PRECISION`` = fp32 | int8 (CPU only; default: int8
only where the measured quality loss allows it, see ``default_precision``), ``NEEDLE_CODE_TOKENS`` = how many
tokens of each chunk are embedded (default: 256, or fewer only where measured safe, see ``default_code_tokens``),
``NEEDLE_WORKERS`` = embedding workers (default: one per core, up to 8, each on its share of the cores).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from codeneedle.errors import NeedleError
from codeneedle.indexer.numpy_bert import NumpyTokenizer
from codeneedle.indexer.pooling import mean_pool, mean_pool_torch

# int8 becomes the default only if it costs at most this much MRR@10 against fp32 on the same benchmark run.
MAX_INT8_MRR_LOSS = 0.01
QUANTIZATION_RECORD = Path(__file__).resolve().parent.parent / "models" / "quantization.json"
MAX_WORKERS = 8
CODE_MAX_TOKENS = 256  # what every index was built with before the cut became a setting


def cpu_count() -> int:
    """Cores this process may run on (affinity and container limits respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def nvidia_gpu_present() -> bool:
    """A cheap look for an NVIDIA device node: importing torch (seconds) only to learn there is no GPU is waste."""
    return Path("/dev/nvidia0").exists() or any(Path("/proc/driver/nvidia/gpus").glob("*"))


def select_device(env: Mapping[str, str] | None = None, gpu_present: Callable[[], bool] = nvidia_gpu_present,
                  cuda_available: Callable[[], bool] | None = None) -> str:
    """"cuda" when torch sees a GPU (or NEEDLE_DEVICE=cuda), else "cpu"; NEEDLE_DEVICE=cpu forces the CPU."""
    env = os.environ if env is None else env
    forced = env.get("NEEDLE_DEVICE", "").strip().lower()
    if forced == "cuda" and not (cuda_available or _torch_cuda_available)():
        # Forced onto a machine without one, torch's AssertionError came out as a traceback from every command.
        raise NeedleError("NEEDLE_DEVICE=cuda, but torch sees no CUDA GPU here (a CPU build of torch, or no "
                          "driver); unset NEEDLE_DEVICE or set it to cpu")
    if forced in ("cpu", "cuda"):
        return forced
    if not gpu_present():
        return "cpu"
    return "cuda" if (cuda_available or _torch_cuda_available)() else "cpu"


def _torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def load_quantization_record(path: Path = QUANTIZATION_RECORD) -> dict:
    """Measured fp32 vs int8 MRR@10 per model name (written by ``bench/index_speed.py --record``)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def int8_allowed(measurement: Mapping | None) -> bool:
    """True when a measurement shows int8 losing at most MAX_INT8_MRR_LOSS of MRR@10 against fp32."""
    if not measurement:
        return False
    try:
        loss = float(measurement["fp32_mrr10"]) - float(measurement["int8_mrr10"])
    except (KeyError, TypeError, ValueError):
        return False
    return loss <= MAX_INT8_MRR_LOSS + 1e-9


def default_precision(model_name: str, env: Mapping[str, str] | None = None, record: dict | None = None) -> str:
    """The precision bulk encoding uses for ``model_name``: NEEDLE_PRECISION, else int8 only where measured safe."""
    env = os.environ if env is None else env
    forced = env.get("NEEDLE_PRECISION", "").strip().lower()
    if forced in ("fp32", "int8"):
        return forced
    record = load_quantization_record() if record is None else record
    return "int8" if int8_allowed(record.get(model_name)) else "fp32"


def default_code_tokens(model_name: str, env: Mapping[str, str] | None = None, record: dict | None = None) -> int:
    """Tokens of each chunk that are embedded: NEEDLE_CODE_TOKENS, else a shorter cut only where measured safe.

    A shorter cut is the largest saving on the CPU (60 % of real chunks run past 256 tokens), but it hides the
    end of long functions from the encoder: the record must show it costs at most MAX_INT8_MRR_LOSS end to end.
    """
    env = os.environ if env is None else env
    forced = env.get("NEEDLE_CODE_TOKENS", "").strip()
    if forced.isdigit() and 16 <= int(forced) <= 512:
        return int(forced)
    record = load_quantization_record() if record is None else record
    cut = (record.get(model_name) or {}).get("code_tokens")
    if isinstance(cut, Mapping):
        try:
            tokens, loss = int(cut["tokens"]), float(cut["mrr10_256"]) - float(cut["mrr10"])
        except (KeyError, TypeError, ValueError):
            return CODE_MAX_TOKENS
        if 16 <= tokens <= 512 and loss <= MAX_INT8_MRR_LOSS + 1e-9:
            return tokens
    return CODE_MAX_TOKENS


def default_workers(env: Mapping[str, str] | None = None, cores: int | None = None) -> int:
    """Workers running batches side by side, each on cores // workers threads: one per core, up to 8.

    Independent batches on one thread each need no synchronisation inside a MatMul. Measured on an idle 2-core
    machine (1,084 stdlib chunks, int8, 128 tokens, chunks/s): 2 workers x 1 thread with one text a batch
    155 and 155, 1 worker x 2 threads with two texts a batch 140 and 136 (see ``OnnxBulk.batch_size``).
    """
    env = os.environ if env is None else env
    try:
        return max(1, int(env["NEEDLE_WORKERS"]))
    except (KeyError, ValueError):
        return min(cores or cpu_count(), MAX_WORKERS)


class OnnxBulk:
    """ONNX Runtime on the CPU: ``workers`` sessions side by side, each on its share of the cores.

    ``cores``: how many cores the engine may use (default: every core this process may run on). A Ray actor
    granted one CPU says 1, else its sessions would compete with the other actors on the same node."""

    def __init__(self, folder: Path, precision: str, workers: int | None = None, cores: int | None = None):
        from codeneedle.indexer.onnx_bert import OnnxBert

        cores = max(1, cores or cpu_count())
        self.workers = workers or default_workers(cores=cores)
        threads = max(1, cores // self.workers)
        # One text per thread a batch. Padding-free batches of one, whose activations stay in cache, beat wide
        # ones on the CPU: an idle 2-core machine, 2 workers x 1 thread, int8, 1,084 stdlib chunks: a batch
        # of 1 155 chunks/s, 2 137, 4 138, 8 132, 32 about 118. A batch of one also makes int8 vectors
        # independent of which texts share its batch (activations are quantized per batch).
        self.batch_size = threads
        self.device, self.precision = "cpu", precision
        self.tokenizer = NumpyTokenizer(folder)
        self._sessions: queue.SimpleQueue = queue.SimpleQueue()
        first = OnnxBert(folder, precision, threads)
        self.hidden = first.hidden
        # One thread per run: concurrent runs of one session each compute on their caller's thread, so the
        # workers share one copy of the weights. Several threads per run would share one session's pool: then
        # each worker gets its own session.
        self._sessions.put(first)
        for _ in range(self.workers - 1):
            self._sessions.put(first if threads == 1 else OnnxBert(folder, precision, threads))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="needle-embed") if self.workers > 1 else None
        # Searches (token_states) run on their own threads through the first session, whose runs are thread-safe:
        # neither the workers' queue nor the sessions' can make a search wait behind the chunks being embedded.
        self._search_session = first
        self._search_pool = (ThreadPoolExecutor(self.workers, thread_name_prefix="needle-late")
                             if self.workers > 1 else None)

    def hidden_states(self, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """(last hidden states (batch, tokens, hidden), attention mask) of one batch, on the calling thread."""
        ids, mask = self.tokenizer(texts, max_length)
        session = self._sessions.get()
        try:
            return session(ids, mask), mask
        finally:
            self._sessions.put(session)

    def _run(self, texts: list[str], max_length: int) -> np.ndarray:
        return mean_pool(*self.hidden_states(texts, max_length))

    def token_states(self, texts: list[str], max_length: int) -> list[np.ndarray]:
        """Each text's last hidden states (tokens, hidden), [CLS] and [SEP] included, spread over the workers.

        Each text runs alone: int8 activations are quantized per run, so a text's states do not depend on which
        texts came with it, and batches of one are the fastest on the CPU (10 texts of 64 tokens: 46 ms on 2
        cores, one batch of 10: 90 ms). They run beside any embedding in progress, not after it: queued behind
        an index update's batches, a search took 2.6 s (p50) instead of 0.2 s."""
        def one(text: str) -> np.ndarray:
            ids, mask = self.tokenizer([text], max_length)
            return self._search_session(ids, mask)[0]

        pool = self._search_pool
        return list(pool.map(one, texts)) if pool is not None else [one(t) for t in texts]

    def encode_batches(self, batches: Sequence[list[str]], max_length: int,
                       done: Callable[[int, np.ndarray], None]) -> None:
        """Encode each batch, calling ``done(batch_index, vectors)`` as each finishes (in any order)."""
        if self._pool is None:
            for i, b in enumerate(batches):
                done(i, self._run(b, max_length))
            return
        futures = {self._pool.submit(self._run, b, max_length): i for i, b in enumerate(batches)}
        for future in futures:
            done(futures[future], future.result())


class TorchBulk:
    """torch: on CUDA in fp16 (big batches), or the plain fp32 CPU path (``bert.py``) as the old baseline."""

    def __init__(self, folder: Path, device: str = "cpu", threads: int | None = None):
        import torch

        from codeneedle.indexer.bert import BertEncoder

        self.device, self.precision = device, "fp16" if device == "cuda" else "fp32"
        self.workers = 1
        self.batch_size = 256 if device == "cuda" else 32  # a GPU wants wide batches: 32 leaves it idle
        self.threads = threads or min(2, cpu_count())
        self.model = BertEncoder(folder)
        if device == "cuda":
            self.model.w = {k: v.to("cuda", torch.float16) for k, v in self.model.w.items()}
        self.hidden = self.model.hidden
        self.tokenizer = NumpyTokenizer(folder)
        self._lock = threading.Lock()

    def encode_batches(self, batches: Sequence[list[str]], max_length: int,
                       done: Callable[[int, np.ndarray], None]) -> None:
        import torch

        for i, b in enumerate(batches):
            ids, mask = self.tokenizer(b, max_length)
            # The lock is taken per batch: a search's token states run between two batches of an index update,
            # not after all of them (seconds on a large update).
            with self._lock:
                previous = torch.get_num_threads()
                torch.set_num_threads(self.threads)
                try:
                    tids = torch.from_numpy(ids).to(self.device)
                    tmask = torch.from_numpy(mask).to(self.device)
                    with torch.inference_mode():
                        pooled = mean_pool_torch(self.model(tids, tmask), tmask).cpu().numpy()
                finally:
                    torch.set_num_threads(previous)
            done(i, pooled)

    def token_states(self, texts: list[str], max_length: int) -> list[np.ndarray]:
        """Each text's last hidden states (tokens, hidden), [CLS] and [SEP] included, as float32."""
        import torch

        out = []
        with self._lock, torch.inference_mode():
            for text in texts:
                ids, mask = self.tokenizer([text], max_length)
                hidden = self.model(torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device))
                out.append(hidden[0].float().cpu().numpy())
        return out


def make_bulk(folder: Path, precision: str, device: str | None = None, workers: int | None = None,
              cores: int | None = None):
    """The bulk engine for this machine: CUDA when present, else ONNX Runtime at ``precision`` on ``cores``."""
    device = device or select_device()
    if device == "cuda":
        return TorchBulk(folder, "cuda")
    return OnnxBulk(folder, precision, workers, cores)
