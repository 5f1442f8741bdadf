"""Many repositories on a Ray cluster: embedding throughput with 1 and 2 Ray workers, and merged search latency.

Indexes the same collection (two real source trees: packages of the Python standard library) five ways and
prints chunks/s for each:
  - single process, default threads (what `needle index` does), and on 1 core (what one Ray worker gets),
  - Ray, 1 worker and Ray, 2 workers (one 1-CPU actor per worker node, head without CPUs),
then parallel efficiency (2 workers against 1, goal >= 0.8) and the cluster path's overhead at 1 worker
against the single process on 1 core (goal < 10 %). Finally merged search latency over 1, 2 and 10 shards
(goal: 10 shards within 2x of one shard).

The cluster is a real local one (`ray start` processes on 127.0.0.1, started and killed by this script);
`--address` uses an existing cluster instead (e.g. one with GPU workers) and measures 1 and all workers.

    .venv/bin/python bench/cluster.py [--max-chunks 600] [--queries 20] [--address HOST:PORT]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ray_local import RAY_ENV, LocalRayCluster  # noqa: E402

os.environ.update(RAY_ENV)  # before ray is imported: keep every connection on the loopback interface
# Five cold indexes of copies of the same trees: with the machine's shared vectors (indexer/shared_cache.py) every one
# after the first would take the first one's vectors and the throughput figures would time SQLite, not the encoder.
os.environ["NEEDLE_EMBEDDING_CACHE"] = "off"

from codeneedle.indexer.collection import Collection  # noqa: E402
from codeneedle.indexer.embedding import EncoderEmbedder  # noqa: E402
from codeneedle.indexer.encoder import Encoder  # noqa: E402
from codeneedle.indexer.index import Index  # noqa: E402

TREES = (("json", "email"), ("http", "logging"))
QUERIES = ("parse a json document", "send an email message", "http request headers", "rotate log files",
           "decode base64 text", "format a date for a header", "read a configuration", "escape html",
           "handle a timeout", "split a multipart message")


def collection(dest: Path, max_chunks: int) -> list[Path]:
    """Two repositories copied from the standard library, trimmed to about ``max_chunks`` chunks together."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    repos = []
    budget_lines = max_chunks * 14  # ~14 lines per chunk in these packages (measured on json/email/http)
    for i, names in enumerate(TREES):
        repo = dest / f"repo{i}"
        lines = 0
        for name in names:
            for src in sorted((lib / name).rglob("*.py")):
                if "test" in src.parts or lines > budget_lines // len(TREES):
                    continue
                out = repo / name / src.relative_to(lib / name)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out)
                lines += src.read_text(errors="replace").count("\n")
        repos.append(repo)
    return repos


def fresh(repos: list[Path], dest: Path) -> list[Path]:
    shutil.rmtree(dest, ignore_errors=True)
    out = []
    for repo in repos:
        shutil.copytree(repo, dest / repo.name, ignore=shutil.ignore_patterns(".needle"))
        out.append(dest / repo.name)
    return out


def index_all(repos: list[Path], embed_for) -> tuple[int, float]:
    """(chunks embedded, seconds) for a cold index of every repository; the encoder is loaded beforehand."""
    chunks, seconds = 0, 0.0
    for repo in repos:
        with Index.open(repo) as index:
            embedder = embed_for(index)
            if embedder is not None:
                index.embedder = embedder  # the pipeline's Embedder seam
            started = time.perf_counter()
            stats = index.update()
            seconds += time.perf_counter() - started
            chunks += stats.chunks_embedded
    return chunks, seconds


def ray_run(address: str, repos: list[Path], work: Path, workers: int) -> tuple[int, float, int]:
    from codeneedle.indexer.ray_embed import RayEmbedder

    targets = fresh(repos, work)
    with Index.open(targets[0]) as index:
        model = (index.model_name, index.model_dir, index.model_id)
    with RayEmbedder(address, *model, workers=workers) as embedder:  # actors load their encoder here
        chunks, seconds = index_all(targets, lambda index: embedder)
        return chunks, seconds, embedder.retries


def search_latencies(collections: dict[int, list[Path]], queries: int) -> dict[int, float]:
    """Median ms of a merged search (k=10) per collection, warm (indexes open, first query discarded).

    The collections take turns query by query, so a machine that slows down mid-run slows them all alike.
    """
    opened: dict[int, Collection] = {}
    try:
        for n, shards in collections.items():
            opened[n] = Collection.open(shards, create=False)
        times: dict[int, list[float]] = {n: [] for n in opened}
        for col in opened.values():
            col.search("warm up", k=10)
        for i in range(queries):
            for n, col in opened.items():
                started = time.perf_counter()
                col.search(QUERIES[i % len(QUERIES)], k=10)
                times[n].append((time.perf_counter() - started) * 1000)
    finally:
        for col in opened.values():
            col.close()
    return {n: statistics.median(t) for n, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-chunks", type=int, default=600, help="about this many chunks in the collection")
    ap.add_argument("--queries", type=int, default=60, help="queries per search-latency figure")
    ap.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    ap.add_argument("--workers", type=int, default=2, help="with --address: the larger worker count")
    ap.add_argument("--search-only", action="store_true", help="only the merged search latency")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="needle-cluster-bench"))
    repos = collection(tmp / "src", args.max_chunks)
    if not args.search_only:
        index_figures(args, repos, tmp)
    else:
        index_all(fresh(repos, tmp / "single"), lambda index: None)
    search_figures(tmp / "single" / "repo0", tmp, args.queries)
    shutil.rmtree(tmp, ignore_errors=True)


def index_figures(args: argparse.Namespace, repos: list[Path], tmp: Path) -> None:

    rows: list[tuple[str, int, float]] = []
    cluster = None
    try:
        single = fresh(repos, tmp / "single")
        with Index.open(single[0]) as warm:
            warm.encoder.encode(["warm up"])  # torch import and weights: not part of anyone's throughput
        chunks, secs = index_all(single, lambda index: None)
        rows.append(("single process, default threads", chunks, secs))
        one_core = Encoder.from_folder(warm.model_name, warm.model_dir)
        one_core.cores = 1  # what a Ray actor granted one CPU runs: the like-for-like baseline of its overhead
        one_core.encode(["warm up"])
        chunks, secs = index_all(fresh(repos, tmp / "single1"), lambda index: EncoderEmbedder(one_core))
        rows.append(("single process, 1 core", chunks, secs))

        address = args.address
        if address is None:
            cluster = LocalRayCluster()
            cluster.start_head(cpus=0)  # the head only coordinates: actors land on the worker nodes
            cluster.add_worker(1)
            cluster.add_worker(1)
            address = cluster.address
        many = args.workers if args.address else 2
        for workers in (1, many):
            chunks, secs, retries = ray_run(address, repos, tmp / f"ray{workers}", workers)
            rows.append((f"ray, {workers} worker{'s' if workers > 1 else ''}" + (f" ({retries} retries)" if retries else ""),
                         chunks, secs))
    finally:
        if cluster is not None:
            cluster.stop()

    print(f"# bench/cluster.py: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'run':40} {'chunks':>7} {'seconds':>8} {'chunks/s':>9}")
    rate = {}
    for name, chunks, secs in rows:
        rate[name.split(" (")[0]] = chunks / secs
        print(f"{name:40} {chunks:7d} {secs:8.2f} {chunks / secs:9.1f}")
    one, two = rate["ray, 1 worker"], rate[f"ray, {many} workers"]
    base1 = rate["single process, 1 core"]
    print(f"parallel efficiency ({many} workers vs 1): {two / one / many:.2f}  (goal >= 0.80)")
    print(f"cluster overhead at 1 worker vs single process on 1 core: {(base1 / one - 1) * 100:+.1f} %  (goal < 10 %)")
    print(f"ray {many} workers vs single process, default threads: {two / rate['single process, default threads']:.2f}x")


def search_figures(shard0: Path, tmp: Path, queries: int) -> None:
    """Merged search over shard copies of one indexed repository (same size each), searched warm."""
    shards = [shard0] + [tmp / "shards" / f"s{i}" for i in range(1, 10)]
    for s in shards[1:]:
        shutil.copytree(shard0, s)
    lat = search_latencies({n: shards[:n] for n in (1, 2, 10)}, queries)
    with Index.open(shard0, create=False) as index:
        size = index.status().chunks
    print(f"merged search latency, median of {queries} (k=10), shards of {size} chunks each: " +
          ", ".join(f"{n} shard{'s' if n > 1 else ''} {ms:.1f} ms" for n, ms in lat.items()))
    print(f"10 shards vs 1: {lat[10] / lat[1]:.2f}x  (goal <= 2x); 2 shards vs 1: {lat[2] / lat[1]:.2f}x")


if __name__ == "__main__":
    main()
