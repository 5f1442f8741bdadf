"""The machine's load while a benchmark runs: its figures mean little if other work shared the CPUs."""

from __future__ import annotations

import os
import threading


class LoadSampler:
    """The 1-minute load average every few seconds while the benchmark runs (the machine may be shared)."""

    def __init__(self, every: float = 5.0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every)

    def summary(self) -> str:
        self._stop.set()
        s = self.samples or [os.getloadavg()[0]]
        return (f"1-min load average during the run: min {min(s):.2f}, mean {sum(s) / len(s):.2f}, max {max(s):.2f} "
                f"on {os.cpu_count()} CPUs")
