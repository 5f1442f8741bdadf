"""Fit an index's query adapter (:mod:`codeneedle.indexer.query_adapter`) to its feedback log.

Each open event says: for this query, this chunk was the answer. A low-rank residual map on the query side,
``q -> normalise(q + q U V)``, is fitted so that the opened chunk wins a softmax over the index's own code
vectors (as they are: nothing is re-embedded). Two pulls keep it from learning more than the events demand:
an L2 penalty on ``U V`` (towards the identity) and a KL anchor that keeps the rankings of pseudo-queries (every
definition's name split into words: ``load items``) as they were. Measured with simulated users
(``bench/feedback_sim.py --adapter``); the defaults are that benchmark's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from codeneedle.errors import NeedleError
from codeneedle.indexer.feedback import read_events
from codeneedle.indexer.query_adapter import MIN_EVENTS, QueryAdapter
from codeneedle.indexer.store import ChunkRow, Store
from codeneedle.training.feedback import match_shown

# Bounds on one fit's work (its softmax spans the candidates): a repository bigger than this is sampled, every
# opened chunk kept. 8,000 x 1,200 queries x 200 iterations is some 30 s on 2 cores.
MAX_CANDIDATES = 8_000
MAX_PSEUDO_QUERIES = 1_000
TEMPERATURE = 0.05


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """The fit's knobs; defaults from ``bench/feedback_sim.py --adapter`` on its tuning repositories."""

    rank: int = 16
    l2: float = 1.0
    anchor: float = 10.0
    iters: int = 200
    lr: float = 1e-3
    seed: int = 0
    threads: int = 2
    # How far the map moves queries is chosen by cross-validation: fitted without a quarter of the logged queries,
    # how well do those find what was opened? (0 = the adapter learned nothing that carries to new queries.)
    folds: int = 4  # 0: no check, full strength
    scales: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5)


@dataclass(frozen=True, slots=True)
class AdapterFit:
    """A fitted adapter and what it was fitted on."""

    adapter: QueryAdapter
    events: int  # usable open events (repeats count: a result opened often weighs more)
    queries: int  # distinct queries
    pairs: int  # distinct (query, opened result) pairs: one query may have led to several results
    unresolved: int  # events whose opened result is no longer in the index
    candidates: int
    seconds: float
    logged_mrr_before: float  # MRR@10 of the logged queries' opened results, dense ranking, before and after
    logged_mrr_after: float
    scale: float = 1.0  # the strength the held-out check chose
    heldout: dict[float, float] | None = None  # held-out MRR@10 at each strength tried

    def to_dict(self) -> dict:
        return {"events": self.events, "queries": self.queries, "pairs": self.pairs, "unresolved": self.unresolved,
                "candidates": self.candidates, "fit_seconds": round(self.seconds, 2),
                "logged_mrr10_before": round(self.logged_mrr_before, 4),
                "logged_mrr10_after": round(self.logged_mrr_after, 4), "scale": self.scale,
                "heldout_mrr10": {f"{k:g}": round(v, 4) for k, v in (self.heldout or {}).items()}}


def resolve_events(store: Store, events: list[dict]) -> tuple[list[tuple[str, int]], int]:
    """``(query, chunk id)`` for each event whose opened result is still indexed (by path and first line, or by
    name when the file moved lines), and how many were not."""
    by_file: dict[str, list[ChunkRow]] = {}
    out: list[tuple[str, int]] = []
    for event in events:
        opened = event.get("opened") or {}
        rel, line, name = str(opened.get("path", "")), opened.get("start_line"), opened.get("name") or ""
        if rel not in by_file:
            by_file[rel] = store.chunks_in_file(rel) if rel else []
        row = match_shown(by_file[rel], line, name)
        if row is not None:
            out.append((event["query"], row.id))
    return out, len(events) - len(out)


def fit_query_adapter(index, config: AdapterConfig = AdapterConfig(),
                      progress: Callable[[str], None] | None = None) -> AdapterFit:
    """Fit ``index``'s query adapter to its feedback log (the caller saves it: ``fit.adapter.save``).

    Raises NeedleError when the log holds fewer than MIN_EVENTS open events whose results are still indexed.
    """
    import torch

    from codeneedle.training.mining import name_query

    t0 = time.monotonic()
    say = progress or (lambda _m: None)
    store = index.reader()
    log_read_t = time.time()
    resolved, unresolved = resolve_events(store, read_events(index.index_dir))
    dim = index.vectors().dim
    keys, vecs = store.chunk_vectors(index.model_id, dim)
    present = set(keys.tolist())
    resolved = [(q, cid) for q, cid in resolved if cid in present]
    if len(resolved) < MIN_EVENTS:
        raise NeedleError(
            f"the feedback log of {index.root} has {len(resolved)} usable open events; at least {MIN_EVENTS} are "
            "needed (open results from search: Enter in the editors, or `needle search QUERY --open N`)")
    rng = random.Random(config.seed)
    keys, vecs = _sample_candidates(keys, vecs, {cid for _, cid in resolved}, rng)
    column = {int(k): i for i, k in enumerate(keys.tolist())}
    texts = list(dict.fromkeys(q for q, _ in resolved))
    row_of = {q: i for i, q in enumerate(texts)}
    names = list(dict.fromkeys(name_query(n) for _, n in store.definition_names()))
    names = [n for n in names if len(n.split()) >= 2]
    pseudo = rng.sample(names, MAX_PSEUDO_QUERIES) if len(names) > MAX_PSEUDO_QUERIES else names
    say(f"fitting the query adapter: {len(resolved)} open events, {len(keys)} candidates, "
        f"{len(pseudo)} anchor queries")
    encoded = index.encoder.encode_queries(texts + pseudo)
    q_all = torch.tensor(encoded[: len(texts)])
    p = torch.tensor(encoded[len(texts):]) if pseudo else torch.zeros(0, dim)
    c = torch.tensor(np.ascontiguousarray(vecs))
    rows = torch.tensor([row_of[q] for q, _ in resolved])
    targets = torch.tensor([column[cid] for _, cid in resolved])
    scale, heldout = _choose_scale(q_all, rows, targets, p, c, config, rng)
    if heldout:
        say("held-out check, MRR@10 by strength: " + ", ".join(f"{k:g}: {v:.3f}" for k, v in heldout.items())
            + f"; chosen {scale:g}")
    u, v = _fit(q_all[rows], targets, p, c, config, distinct=len(set(resolved)))
    u = u * scale
    adapter = QueryAdapter(u, v, index.query_id, {
        "events": len(resolved), "queries": len(texts), "pairs": len(set(resolved)), "candidates": len(keys),
        "fitted": datetime.now(UTC).isoformat(timespec="seconds"), "log_read_t": round(log_read_t, 3),
        "rank": config.rank, "scale": scale})
    pairs = sorted(set(resolved))
    q_pairs = encoded[[row_of[q] for q, _ in pairs]]
    t_pairs = np.array([column[cid] for _, cid in pairs])
    return AdapterFit(adapter, len(resolved), len(texts), len(pairs), unresolved, len(keys), time.monotonic() - t0,
                      _mrr10(q_pairs, vecs, t_pairs), _mrr10(adapter.apply(q_pairs), vecs, t_pairs), scale, heldout)


def _choose_scale(q_all, rows, targets, p, c, config: AdapterConfig,
                  rng: random.Random) -> tuple[float, dict[float, float]]:
    """The strength whose maps, each fitted without one fold of the logged queries, rank that fold's opened
    results best (dense MRR@10, summed over folds); the smallest such strength. Too few queries: full strength."""
    import torch

    queries = sorted(set(rows.tolist()))
    if config.folds < 2 or len(queries) < 2 * config.folds:
        return 1.0, {}
    rng.shuffle(queries)
    fold_of = {qi: n % config.folds for n, qi in enumerate(queries)}
    vecs = c.numpy()
    totals = dict.fromkeys(config.scales, 0.0)
    held_count = 0
    for fold in range(config.folds):
        train = torch.tensor([fold_of[r] != fold for r in rows.tolist()])
        held = sorted({(r, t) for r, t in zip(rows.tolist(), targets.tolist(), strict=True) if fold_of[r] == fold})
        u, v = _fit(q_all[rows[train]], targets[train], p, c, config, distinct=len(set(rows[train].tolist())))
        q_held = q_all[[r for r, _ in held]].numpy()
        t_held = np.array([t for _, t in held])
        for scale in config.scales:
            moved = QueryAdapter(u * scale, v, "", {}).apply(q_held)
            totals[scale] += _mrr10(moved, vecs, t_held) * len(held)
        held_count += len(held)
    heldout = {scale: total / held_count for scale, total in totals.items()}
    best = max(heldout.values())
    return next(scale for scale in sorted(heldout) if heldout[scale] >= best - 1e-9), heldout


def _sample_candidates(keys: np.ndarray, vecs: np.ndarray, keep: set[int],
                       rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    if len(keys) <= MAX_CANDIDATES:
        return keys, vecs
    must = [i for i, k in enumerate(keys.tolist()) if k in keep]
    others = [i for i, k in enumerate(keys.tolist()) if k not in keep]
    chosen = sorted(must + rng.sample(others, max(0, MAX_CANDIDATES - len(must))))
    return keys[chosen], vecs[chosen]


def _fit(q, targets, p, c, config: AdapterConfig, distinct: int) -> tuple[np.ndarray, np.ndarray]:
    import torch
    import torch.nn.functional as nnf

    torch.set_num_threads(max(1, config.threads))
    gen = torch.Generator().manual_seed(config.seed)
    dim = c.shape[1]
    u = torch.zeros(dim, config.rank, requires_grad=True)  # starts as the identity map: U V = 0
    v = (torch.randn(config.rank, dim, generator=gen) * 0.01).requires_grad_()
    opt = torch.optim.Adam([u, v], lr=config.lr)
    anchored = len(p) > 0 and config.anchor > 0
    if anchored:
        with torch.no_grad():
            p_before = torch.log_softmax(p @ c.T / TEMPERATURE, dim=-1)

    def moved(x):
        return nnf.normalize(x + x @ u @ v, dim=-1)

    for _ in range(config.iters):
        loss = nnf.cross_entropy(moved(q) @ c.T / TEMPERATURE, targets)
        loss = loss + config.l2 * (u @ v).pow(2).sum() / max(1, distinct)
        if anchored:
            loss = loss + config.anchor * nnf.kl_div(torch.log_softmax(moved(p) @ c.T / TEMPERATURE, dim=-1),
                                                     p_before, log_target=True, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return u.detach().numpy().copy(), v.detach().numpy().copy()


def _mrr10(q: np.ndarray, c: np.ndarray, targets: np.ndarray) -> float:
    if not len(targets):
        return 0.0
    sims = q @ c.T
    ranks = (sims > sims[np.arange(len(targets)), targets][:, None]).sum(axis=1) + 1
    return float(np.where(ranks <= 10, 1.0 / ranks, 0.0).mean())
