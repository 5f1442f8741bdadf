"""Embedding on a Ray cluster: encoder actors (loaded once each) embed the texts the pipeline hands over.

Only the embedding moves: walking, chunking, the embedding-cache check and every write stay in the local
single-writer pipeline (a ``RayEmbedder`` is set as ``index.embedder``, the pipeline's Embedder seam), so an index built through Ray has the same crash
safety and the same cache as one built locally, and an incremental run sends only chunks whose content hash
has no cached vector. ``ray`` is imported here only; nothing else in Needle imports this module unless
``--ray`` is given.

Failure handling is ours, not Ray's restart machinery, so that it is visible and testable: a batch whose
actor died (its node process was killed) is sent again to a live actor, and a replacement actor is asked for.
A batch's vectors are taken from the first answer only, so no chunk is written twice; the pipeline commits
a batch only after every vector is back, so a lost cluster leaves each index at its last commit.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from codeneedle.errors import NeedleError
from codeneedle.indexer.settings import count_from_env, seconds_from_env

# Texts per remote call: ~1-2 s of CPU encoding each, so call overhead (~ms) is noise and a killed worker
# loses little work; small enough that 2 workers share a 1,024-chunk pipeline batch evenly.
TEXTS_PER_CALL = count_from_env("NEEDLE_RAY_BATCH", 64)
# Calls queued per actor: one running, one waiting, so an actor never idles on the driver's round trip.
IN_FLIGHT_PER_ACTOR = 2
# How long to wait for a replacement actor before giving up on a cluster that has no room left.
ACTOR_START_TIMEOUT_S = seconds_from_env("NEEDLE_RAY_ACTOR_TIMEOUT", 120.0)
# Workers one call may take down before the run gives up (a text that kills every encoder it meets).
MAX_ATTEMPTS = 3
# How often a waiting driver checks that the head still answers. Ray itself ends a driver whose head is gone
# after gcs_rpc_server_reconnect_timeout_s (60 s) with no word to the user; checking first lets us say why.
HEAD_CHECK_S = 1.0
CONNECT_TIMEOUT_S = 5.0
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class EncoderActor:
    """Runs on a Ray worker: one encoder, loaded once."""

    def __init__(self, name: str, folder: str, threads: int):
        from codeneedle.indexer.encoder import Encoder

        path = Path(folder)
        # The driver's folder exists on its own machine; another machine resolves the model by name.
        self.encoder = Encoder.from_folder(name, path) if path.is_dir() else Encoder.load(name)
        self.threads = max(1, threads)
        # The CPUs Ray granted, not the node's: two actors on one node would otherwise each run a session per core.
        self.encoder.cores = self.threads
        # The encoder picks its own engine and device (ONNX Runtime on the CPU, CUDA where Ray gave a GPU).
        self.device = getattr(self.encoder, "device", "cpu")

    def model_id(self) -> str:
        return self.encoder.model_id

    def where(self) -> tuple[str, int, str]:
        """(node id, pid, device): which process does the work (tests kill it)."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid(), self.device

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, threads=self.threads)


class RayEmbedder:
    """A pool of encoder actors on a Ray cluster; ``embedder.encode`` is the pipeline's ``embed`` function."""

    def __init__(self, address: str, model_name: str, model_dir: Path, model_id: str, *,
                 workers: int | None = None, cpus_per_worker: int = 1):
        loopback = address.rpartition(":")[0].strip("[]") in ("127.0.0.1", "localhost", "::1")
        if loopback:
            # Ray rewrites a loopback address to the machine's outward one, where a cluster started with
            # --node-ip-address 127.0.0.1 does not listen: the driver would dial it for ever. This variable (read
            # when ray is imported) keeps the driver on the loopback interface, as the cluster is.
            os.environ[LOOPBACK_ENV] = "0"
        try:
            import ray
        except ImportError:
            raise NeedleError("--ray needs the ray extra: pip install 'codeneedle[ray]'") from None
        if loopback:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False  # ray imported earlier in this process read it already
        self._ray = ray
        self.address = address
        self.model_name, self.model_dir, self.model_id = model_name, str(model_dir), model_id
        self.cpus = max(1, cpus_per_worker)
        self._owns = not ray.is_initialized()  # a second pool (another model) shares the connection
        self.head_lost = False
        if self._owns:
            _check_reachable(address)
        try:
            # log_to_driver off: worker chatter would land in the user's terminal (or an editor's log).
            if self._owns:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=False,
                         namespace="needle")
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError by version
            raise NeedleError(f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}") from None
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        room = self.gpus or int(resources.get("CPU", 0)) // self.cpus
        if room < 1:
            raise NeedleError(f"the Ray cluster at {address} has {int(resources.get('CPU', 0))} CPUs and no GPU: no "
                              f"room for a worker of {self.cpus} CPUs (lower --ray-cpus)")
        if workers is not None and workers > room:
            sys.stderr.write(f"needle: the Ray cluster at {address} has room for {room} workers, not {workers}: "
                             f"starting {room}\n")
        self.workers = min(workers or room, room)
        self._actors: list = []
        self._starting: dict = {}  # model_id ObjectRef -> replacement actor not yet placed
        self.retries = 0  # batches sent again after their actor died (tests and the benchmark read it)
        try:
            for _ in range(self.workers):
                self._actors.append(self._new_actor())
            ids = self._get([a.model_id.remote() for a in self._actors], ACTOR_START_TIMEOUT_S)
        except NeedleError:
            self.close()
            raise
        if any(i != model_id for i in ids):
            self.close()
            raise NeedleError(f"the Ray workers load model {ids[0]}, the index uses {model_id}: install the "
                              "same codeneedle and model on every node")

    def _new_actor(self):
        ray = self._ray
        options = {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": self.cpus}
        cls = ray.remote(EncoderActor).options(max_restarts=0, max_task_retries=0, **options)
        return cls.remote(self.model_name, self.model_dir, self.cpus)

    def where(self) -> list[tuple[str, int, str]]:
        """(node id, pid, device) of each live actor."""
        return self._get([a.where.remote() for a in self._actors], 60)

    def embed(self, texts: list[str], on_done: Callable[[int], None] | None = None) -> np.ndarray:
        """The pipeline's ``Embedder`` seam (``codeneedle.indexer.embedding``): ``on_done`` gets texts done so far."""
        count = 0

        def step(n: int) -> None:
            nonlocal count
            count += n
            if on_done:
                on_done(count)

        return self.encode(texts, on_batch=step)

    def encode(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Float32 ``(n, dim)`` unit vectors in input order, computed by the actors (same contract as
        ``Encoder.encode``)."""
        ray = self._ray
        out: np.ndarray | None = None
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        # Length-sorted calls keep padding small inside each actor's batches, as Encoder.encode does. At least
        # 4 calls per actor, and the longest texts first, so no actor is left with a long last call while the
        # others idle (with 5 calls for 2 actors the best split is 3:2, an efficiency of 0.83 at most).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        size = max(1, min(TEXTS_PER_CALL, -(-len(texts) // (4 * len(self._actors or [None])))))
        todo = [order[s : s + size] for s in range(0, len(order), size)]  # pop() from the end: longest first
        running: dict = {}  # ObjectRef -> (actor, index list)
        tries: dict[int, int] = {}  # first index of a call -> attempts so far
        while todo or running:
            self._fill(todo, running, texts)
            ready = self._wait(list(running))
            for ref in ready:
                actor, idx = running.pop(ref)
                try:
                    vectors = ray.get(ref)
                except ray.exceptions.RayActorError:
                    # The worker died mid-batch: drop its actor, send the batch again elsewhere (unless the
                    # whole cluster went with it, or this batch has now killed MAX_ATTEMPTS workers).
                    self._check_head()
                    tries[idx[0]] = tries.get(idx[0], 1) + 1
                    if tries[idx[0]] > MAX_ATTEMPTS:
                        raise NeedleError(f"a batch of {len(idx)} chunks failed on {MAX_ATTEMPTS} Ray workers in turn "
                                          "(out of memory?); each index keeps its last commit") from None
                    self._replace(actor)
                    todo.append(idx)
                    self.retries += 1
                    continue
                except ray.exceptions.RayError as exc:
                    raise self._lost(exc) from None
                if out is None:
                    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                out[idx] = vectors
                if on_batch:
                    on_batch(len(idx))
        assert out is not None
        return out

    def _fill(self, todo: list, running: dict, texts: Sequence[str]) -> None:
        if self._starting:
            ready, _ = self._ray.wait(list(self._starting), num_returns=len(self._starting), timeout=0)
            self._promote(ready)
        if not self._actors:
            raise NeedleError(f"every Ray worker at {self.address} has died and none could be started; "
                              "each index keeps its last commit: run again when the cluster has room")
        load = {id(a): 0 for a in self._actors}
        for actor, _ in running.values():
            if id(actor) in load:
                load[id(actor)] += 1
        while todo:
            actor = min(self._actors, key=lambda a: load[id(a)])
            if load[id(actor)] >= IN_FLIGHT_PER_ACTOR:
                break
            idx = todo.pop()
            running[actor.encode.remote([texts[i] for i in idx])] = (actor, idx)
            load[id(actor)] += 1

    def _wait(self, refs: list, count: int = 1, timeout: float | None = None) -> list:
        """Ready refs (at least ``count`` unless ``timeout`` passes), checking the head between short waits."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                ready, _ = self._ray.wait(refs, num_returns=count, timeout=HEAD_CHECK_S)
            except Exception as exc:  # noqa: BLE001 - the cluster itself went away
                raise self._lost(exc) from None
            if len(ready) >= count or (deadline is not None and time.monotonic() > deadline):
                return ready
            self._check_head()

    def _check_head(self) -> None:
        """Raise the clear error when the head's GCS port no longer takes connections."""
        try:
            _dial(self.address, HEAD_CHECK_S)
        except OSError as exc:
            self.head_lost = True
            raise self._lost(exc) from None

    def _replace(self, dead) -> None:
        """Forget a dead actor and ask for a new one, placed by Ray wherever there is room.

        The others keep working meanwhile; the new one joins when it is up (``_promote``). Only when no actor
        is left does the run wait for it (up to ACTOR_START_TIMEOUT_S).
        """
        if dead in self._actors:
            self._actors.remove(dead)
            actor = self._new_actor()
            self._starting[actor.model_id.remote()] = actor
        if not self._actors:
            self._promote(self._wait(list(self._starting), 1, ACTOR_START_TIMEOUT_S))

    def _promote(self, ready: list) -> None:
        for ref in ready:
            actor = self._starting.pop(ref)
            try:
                self._ray.get(ref)
            except self._ray.exceptions.RayError:
                continue  # it died starting: the next death asks again
            self._actors.append(actor)

    def _get(self, refs: list, timeout: float) -> list:
        ray = self._ray
        try:
            self._wait(refs, len(refs), timeout)
            return ray.get(refs, timeout=HEAD_CHECK_S)
        except ray.exceptions.GetTimeoutError:
            raise NeedleError(f"the Ray cluster at {self.address} started no encoder worker within {timeout:.0f}s "
                              "(no free CPU/GPU?)") from None
        except ray.exceptions.RayError as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> NeedleError:
        return NeedleError(f"lost the Ray cluster at {self.address} ({_first_line(exc)}); every index keeps its "
                           "last committed batch: run the same command again to resume")

    def close(self) -> None:
        """Kill the actors and disconnect (the cluster itself keeps running)."""
        ray = self._ray
        if self.head_lost:
            # Nothing to kill (the actors died with the cluster) and a Ray shutdown would wait on a dead GCS.
            self._actors = []
            return
        for actor in [*self._actors, *self._starting.values()]:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001, S110 - the cluster may already be gone
                pass
        self._actors, self._starting = [], {}
        if not self._owns:
            return
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001, S110
            pass

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LazyRayEmbedder:
    """A RayEmbedder started on the first texts there are to embed: a run with nothing new to embed starts no
    actors (each loads the model: 3-4 s on a 2-CPU cluster). The address is checked for an answer at once, so a
    wrong one still fails before any work."""

    def __init__(self, address: str, model_name: str, model_dir: Path, model_id: str, **options) -> None:
        _check_reachable(address)
        self.address, self.model_id = address, model_id
        self._args, self._options = (address, model_name, model_dir, model_id), options
        self.pool: RayEmbedder | None = None
        self.start_error: NeedleError | None = None  # why the pool could not start (no room for --ray-cpus, ...)

    @property
    def head_lost(self) -> bool:
        return self.pool is not None and self.pool.head_lost

    @property
    def failed(self) -> bool:
        """Whether the cluster can take no more of this run: its head is gone, or the pool could not start there."""
        return self.head_lost or self.start_error is not None

    @property
    def workers(self) -> int:
        """Encoder actors started so far (0 until something needed embedding)."""
        return self.pool.workers if self.pool is not None else 0

    def embed(self, texts: list[str], on_done: Callable[[int], None] | None = None) -> np.ndarray:
        if self.start_error is not None:
            raise self.start_error
        if self.pool is None:
            try:
                self.pool = RayEmbedder(*self._args, **self._options)
            except NeedleError as exc:
                self.start_error = exc
                raise
        return self.pool.embed(texts, on_done)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _check_reachable(address: str) -> None:
    """A clear error when nothing answers at a ``host:port`` address: Ray's own driver retries such an address
    forever (a log line every 35 s) and does not yield to Ctrl-C."""
    try:
        _dial(address, CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise NeedleError(f"cannot connect to the Ray cluster at {address}: nothing answers there "
                          f"({exc.strerror or exc}); is `ray start --head` running?") from None


def _dial(address: str, timeout: float) -> None:
    """Open and close a TCP connection to a ``host:port`` address (OSError when nothing answers). Other forms,
    ``ray://`` client addresses and "auto", are left to Ray's own errors."""
    host, _, port = address.rpartition(":")
    if port.isdigit() and host and "://" not in host:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
