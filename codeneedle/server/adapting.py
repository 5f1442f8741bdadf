"""Learning from what the user opens, while they work: the server refits a folder's query adapter
(``codeneedle.indexer.query_adapter``) once enough results were opened there since the last fit (``refit_due``).

The fit runs as `needle train --repo ROOT --adapter` in a niced child process (it needs torch, which the
server never imports, and its memory is given back when it ends); at most one per folder runs at a time, and
the folder's searches pick the new adapter up at their next query. The ``feedback`` setting turns recording
off, and with it this. A fit still running when the server goes (exit, the editor closing its pipe) is stopped
with it: a fit outliving its editor would be an orphan process, and it would write beside an index no one serves.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("codeneedle")

FIT_TIMEOUT_S = 600


class Refitter:
    """One background fit per folder at a time; a request while one runs is folded into the next check."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[Path] = set()
        self._attempted: dict[Path, float] = {}
        self._children: set[subprocess.Popen] = set()
        self._stopped = False

    def opened(self, root: Path, index_dir: Path) -> bool:
        """Called after an open event was recorded; starts a fit when one is due. True when one started."""
        with self._lock:
            # Imported here: numpy stays out of the server's start-up.
            from codeneedle.indexer.query_adapter import refit_due

            if (self._stopped or index_dir in self._running
                    or not refit_due(index_dir, self._attempted.get(index_dir))):
                return False
            self._running.add(index_dir)
            self._attempted[index_dir] = time.time()
        threading.Thread(target=self._fit, args=(root, index_dir), name="needle-adapter-fit", daemon=True).start()
        return True

    def _fit(self, root: Path, index_dir: Path) -> None:
        cmd = [sys.executable, "-m", "codeneedle.cli", "train", "--repo", str(root), "--adapter",
               "--index-dir", str(index_dir), "--threads", "1", "--json"]
        nice = shutil.which("nice")
        if nice:  # the editor's own work (and the indexer) first; no preexec_fn: this process has threads
            cmd = [nice, "-n", "10", *cmd]
        proc = None
        try:
            with self._lock:
                if self._stopped:
                    return
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1"})
                self._children.add(proc)
            out, err = proc.communicate(timeout=FIT_TIMEOUT_S)
            if proc.returncode == 0:
                log.info("query adapter of %s refitted: %s", root, out.strip())
            elif not self._stopped:
                log.warning("query adapter fit for %s failed: %s", root, err.strip()[-500:])
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("query adapter fit for %s failed: %s", root, exc)
            if proc is not None:
                proc.kill()
                proc.wait()
        finally:
            with self._lock:
                self._running.discard(index_dir)
                self._children.discard(proc)

    def stop(self, timeout: float = 5.0) -> None:
        """End the fits still running (the server is going) and start no more; waits up to ``timeout`` seconds
        for them to go, then kills what is left."""
        with self._lock:
            self._stopped = True
            children = list(self._children)
        for proc in children:
            proc.terminate()
        for proc in children:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
