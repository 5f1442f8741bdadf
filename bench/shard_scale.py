"""How far one shard goes: a usearch index of N 384-d unit vectors at f16 (Needle's setting) and i8.

Prints bytes per vector on disk and in memory, build rate, median query latency (k=50, Needle's dense pool
for k=10) and recall@10 against exact search, for each dtype. docs/SCALE.md extrapolates from these.

    .venv/bin/python bench/shard_scale.py [--n 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from usearch.index import Index

DIM = 384


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def clustered(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 1,000 centres: embeddings cluster; uniform random vectors are a harder, odd case."""
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vectors = clustered(args.n, rng)
    queries = clustered(args.queries, rng)
    keys = np.arange(args.n, dtype=np.uint64)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    print("# bench/shard_scale.py: 2 shared cores (other engineers' work ran at the same time); figures are noisy")
    print(f"{'dtype':6} {'vectors':>9} {'disk B/vec':>10} {'RAM B/vec':>9} {'build vec/s':>11} "
          f"{'query ms p50':>12} {'recall@10':>9}")
    for dtype in ("f16", "i8"):
        before = rss_mb()
        index = Index(ndim=DIM, metric="cos", dtype=dtype)
        started = time.perf_counter()
        index.add(keys, vectors, threads=2)
        build = args.n / (time.perf_counter() - started)
        ram = (rss_mb() - before) * 2**20 / args.n
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "v.usearch"
            index.save(str(path))
            disk = path.stat().st_size / args.n
        times, hits = [], 0
        for i, q in enumerate(queries):
            t = time.perf_counter()
            found = index.search(q, 50)
            times.append((time.perf_counter() - t) * 1000)
            hits += len(set(found.keys[:10].tolist()) & set(exact[i].tolist()))
        print(f"{dtype:6} {args.n:9d} {disk:10.0f} {ram:9.0f} {build:11.0f} {statistics.median(times):12.3f} "
              f"{hits / (10 * len(queries)):9.3f}")
        del index


if __name__ == "__main__":
    main()
