"""A repository's query adapter: what its users' opened results taught search, without re-embedding any code.

`needle train --repo DIR --adapter` fits a small low-rank map on the query side (``q -> normalise(q + q U V)``)
to the feedback log (:mod:`codeneedle.training.query_adapter`) and saves it beside the index as
``query_adapter.npz``; every search through that index then moves its query vector by it before the dense
ranking. The code vectors never change, so fitting takes seconds and needs no re-index. An adapter belongs to
the model it was fitted for: an index rebuilt with another model ignores it (``needle status`` says so).

This module is numpy only (the search path never imports torch).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeneedle.indexer.feedback import read_events
from codeneedle.indexer.reloaded import Reloaded

ADAPTER_NAME = "query_adapter.npz"
MIN_EVENTS = 5  # open events (with their results still indexed) a fit needs
REFIT_EVERY = 10  # results opened since the last fit before the language server fits again


@dataclass(frozen=True)
class QueryAdapter:
    """``q -> normalise(q + q @ u @ v)``; ``u``: (dim, rank), ``v``: (rank, dim)."""

    u: np.ndarray
    v: np.ndarray
    model_id: str
    info: dict  # what it was fitted on: events, queries, fitted (ISO time), seconds, ...

    @property
    def dim(self) -> int:
        return int(self.u.shape[0])

    def apply(self, qvec: np.ndarray) -> np.ndarray:
        """The moved query vector(s), unit length, in the input's dtype."""
        q = np.asarray(qvec, dtype=np.float32)
        moved = q + (q @ self.u) @ self.v
        norm = np.linalg.norm(moved, axis=-1, keepdims=True)
        return (moved / np.maximum(norm, 1e-12)).astype(np.asarray(qvec).dtype, copy=False)

    def save(self, index_dir: Path) -> Path:
        """Write atomically (a search reading the old file never sees half a new one)."""
        index_dir.mkdir(parents=True, exist_ok=True)
        path = index_dir / ADAPTER_NAME
        tmp = index_dir / (ADAPTER_NAME + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, u=self.u.astype(np.float32), v=self.v.astype(np.float32),
                         meta=np.array(json.dumps({"model_id": self.model_id, **self.info})))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk left half a file behind
            raise
        return path


def load_adapter(index_dir: Path) -> QueryAdapter | None:
    """The saved adapter, or None when there is none or the file is unreadable (search then goes on without)."""
    try:
        with np.load(index_dir / ADAPTER_NAME, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            u, v = data["u"].astype(np.float32), data["v"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[0] or u.shape[0] != v.shape[1] \
            or not (np.isfinite(u).all() and np.isfinite(v).all()):
        return None
    return QueryAdapter(u, v, str(meta.pop("model_id", "")), meta)


def remove_adapter(index_dir: Path) -> bool:
    """Delete the saved adapter; True when there was one."""
    try:
        (index_dir / ADAPTER_NAME).unlink()
        return True
    except FileNotFoundError:
        return False


class AdapterFile:
    """The adapter an index's searches use, re-read when the file changes (a running language server picks up a
    refit by the CLI at its next search; a stat per search is all it costs)."""

    def __init__(self, index_dir: Path):
        self.path = index_dir / ADAPTER_NAME
        self._file = Reloaded(self.path, lambda path: load_adapter(path.parent), None)

    def current(self) -> QueryAdapter | None:
        """The adapter on disk now (whatever model it was fitted for), or None."""
        return self._file.get()

    def for_model(self, model_id: str, dim: int) -> QueryAdapter | None:
        """The adapter when it was fitted for ``model_id`` (vectors of ``dim``), else None."""
        adapter = self.current()
        if adapter is None or adapter.model_id != model_id or adapter.dim != dim:
            return None
        return adapter


def refit_due(index_dir: Path, attempted: float | None = None) -> bool:
    """Whether the feedback log holds opens not yet learned: MIN_EVENTS for a first fit, then REFIT_EVERY newer
    than the adapter (and than ``attempted``, the caller's last try, so a failing fit is not retried at once)."""
    events = read_events(index_dir)
    adapter = load_adapter(index_dir)
    since = attempted
    if adapter is not None:
        fitted = adapter.info.get("log_read_t")  # when the fit read the log
        since = max(float(fitted) if isinstance(fitted, int | float) else 0.0, attempted or 0.0)
    if since is None:
        return len(events) >= MIN_EVENTS
    return sum(1 for e in events if isinstance(e.get("t"), int | float) and e["t"] > since) >= REFIT_EVERY
