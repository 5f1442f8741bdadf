"""Learning from what the user opens, while they work: the server refits a folder's query adapter
(``codeneedle.indexer.query_adapter``) once enough results were opened there since the last fit (``refit_due``).

The fit runs as `needle train --repo ROOT --adapter` in a niced child process (it needs torch, which the
server never imports, and its memory is given back when it ends); at most one per folder runs at a time, and
the folder's searches pick the new adapter up at their next query. The ``feedback`` setting turns recording
off, and with it this.
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

    def opened(self, root: Path, index_dir: Path) -> bool:
        """Called after an open event was recorded; starts a fit when one is due. True when one started."""
        with self._lock:
            # Imported here: numpy stays out of the server's start-up.
            from codeneedle.indexer.query_adapter import refit_due

            if index_dir in self._running or not refit_due(index_dir, self._attempted.get(index_dir)):
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
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FIT_TIMEOUT_S,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if proc.returncode == 0:
                log.info("query adapter of %s refitted: %s", root, proc.stdout.strip())
            else:
                log.warning("query adapter fit for %s failed: %s", root, proc.stderr.strip()[-500:])
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("query adapter fit for %s failed: %s", root, exc)
        finally:
            with self._lock:
                self._running.discard(index_dir)
