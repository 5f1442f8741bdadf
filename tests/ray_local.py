"""A real Ray cluster on this machine for tests and bench/cluster.py: `ray start` processes bound to 127.0.0.1.

Every node is `ray start --block` in its own session (process group), so a node is stopped, or killed
mid-run, by signalling its group: this never touches Ray processes that somebody else started (no
`ray stop`, which kills every Ray process of the user). Dashboard and usage stats are off.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
HOST = "127.0.0.1"
# Small object stores: vectors of a few thousand chunks are kilobytes; the default (30 % of RAM) is not.
OBJECT_STORE_BYTES = 100 * 1024 * 1024
# For drivers (needle) and the head: Ray swaps 127.0.0.1 for the machine's outward address unless it runs
# "single-host" (this switch, meant for laptops), which keeps everything on the loopback interface.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# A worker node refuses to join in single-host mode, so it runs `ray start` with the one function that
# rewrites 127.0.0.1 into the outward address replaced by the identity: several nodes, one loopback.
_WORKER_START = ("import sys, ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host; "
                 "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One `ray start --block` process group."""

    proc: subprocess.Popen
    cpus: int
    log: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the group is led by the ray start process

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole node at once: raylet, its workers and agents, as a machine failure would."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until nothing of the group is left
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@dataclass
class LocalRayCluster:
    """A head plus worker nodes on 127.0.0.1; ``address`` is what `needle index --ray` takes."""

    temp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nray")))
    port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **RAY_ENV}

    def _start(self, args: list[str], cpus: int, head: bool) -> Node:
        log = self.temp / f"node{len(self.nodes)}.log"
        env = self.env if head else {**self.env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [*([str(RAY)] if head else [sys.executable, "-c", _WORKER_START]), "start", "--block", "--node-ip-address", HOST, f"--num-cpus={cpus}", "--num-gpus=0",
                 f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats", *args],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        node = Node(proc, cpus, log)
        self.nodes.append(node)
        return node

    def start_head(self, cpus: int = 0) -> Node:
        """The head (GCS); ``cpus`` 0 keeps encoder actors off it, on the worker nodes."""
        node = self._start(["--head", f"--port={self.port}", "--include-dashboard=false",
                            f"--temp-dir={self.temp}"], cpus, head=True)
        self.wait_nodes(1)
        return node

    def add_worker(self, cpus: int = 1) -> Node:
        """Another node process joining the head."""
        before = self.alive_nodes()
        node = self._start([f"--address={self.address}"], cpus, head=False)
        self.wait_nodes(before + 1)
        return node

    def alive_nodes(self) -> int:
        """Nodes the head counts as alive."""
        return self._poll_nodes(0, 0)

    def wait_nodes(self, count: int, timeout: float = 180) -> None:
        """Until the head counts ``count`` live nodes (asked from a child process, so this one stays no driver)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the head's GCS may not be listening yet: ask again
            if any(not n.alive() for n in self.nodes):
                raise RuntimeError("a ray node exited: " + self.logs())
            if self._poll_nodes(count, max(1.0, deadline - time.monotonic())) >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the cluster did not reach {count} nodes: " + self.logs())

    def _poll_nodes(self, count: int, timeout: float) -> int:
        code = (
            "import json, sys, time, ray\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False)\n"
            f"deadline = time.monotonic() + {timeout}\n"
            "while True:\n"
            "    alive = sum(1 for n in ray.nodes() if n['Alive'])\n"
            f"    if alive >= {count} or time.monotonic() > deadline:\n"
            "        break\n"
            "    time.sleep(0.5)\n"
            "print(alive)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env,
                             timeout=timeout + 120)
        lines = out.stdout.strip().splitlines()
        return int(lines[-1]) if out.returncode == 0 and lines else 0

    def logs(self) -> str:
        return "\n".join(n.log.read_text(errors="replace")[-2000:] for n in self.nodes if n.log.exists())

    def stop(self) -> None:
        """Kill every node's process group (workers first, head last)."""
        for node in reversed(self.nodes):
            if node.alive():
                node.kill()
