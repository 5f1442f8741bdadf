"""Indexing and one-shot search speed, each figure beside its baseline from the same run.

Sections (``--sections``, default all):
  throughput  the old baseline (raw torch fp32 encoder, bert.py, 2 threads) against the engines on the same chunk
              texts: ONNX Runtime fp32/int8 with 1 and 2 workers; then a cold `Index.update()` with the new
              defaults (walk, chunk, lexical commit, embed, commit every ~2 s) and its ratio to the baseline
  quality     int8 against fp32 code vectors, MRR@10 on CoSQA test (500 web queries over 6,267 functions; queries
              encoded by the numpy fp32 path, as `needle search` does); ``--record`` writes the figures to
              codeneedle/models/quantization.json, which decides whether int8 is the default (loss <= 0.01)
  search      one-shot `needle search` wall time p50/p95 over 20 runs on a warm ~10k-chunk index (with the
              default refresh, and with --no-refresh), beside the cost of `import torch` alone (what the old
              query path paid before doing anything)
  busy        search latency (typed question, doc-style sentence, first stage; and the first stage in a second,
              read-only index of the same folder) while a process embeds a cold index of stdlib packages,
              beside the same searches once it is idle; then a filtered search beside the unfiltered one
  first       time to the first keyword hit for a function in the last file of a 10,000-file tree, and to the
              first committed vectors, from the start of `needle index` (goal: keywords within 10 s)
  warm        warm re-index of an unchanged 10,000-file tree (goal < 2 s)
  definitions seconds from the start of a cold `needle index` of this repository's tracked files until every
              function, method and class has its vector, beside the time until every chunk has (windows:
              module-level code, text files come last)
  reuse       `needle index` of a second clone of a tree this machine has indexed (its vectors come from the
              shared cache, indexer/shared_cache.py), beside the same command on a third clone with it turned off
  together    two clones indexed at once by two `needle index` processes: seconds until both are done and the
              chunks both embedded, beside the same with the shared cache off (each embeds everything)

Every other section runs with the shared cache off, so that "cold" means cold.

The 10k-chunk search index gets real vectors for its first 500 chunks and noisy copies of them for the rest
(bench/lsp_latency.py's PartlyRealEncoder): search time does not depend on the vectors' values.

    .venv/bin/python bench/index_speed.py [--sections throughput,quality,search,busy,first,warm,definitions,reuse,together]
        [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codeneedle.indexer.backends import QUANTIZATION_RECORD, cpu_count, int8_allowed  # noqa: E402
from codeneedle.indexer.chunker import chunk_source  # noqa: E402
from codeneedle.indexer.encoder import Encoder, embed_text  # noqa: E402
from codeneedle.indexer.index import Index  # noqa: E402
from codeneedle.indexer.languages import language_for_path  # noqa: E402
from codeneedle.indexer.models import resolve_model  # noqa: E402

STDLIB_PACKAGES = ("json", "http", "email")  # ~1,000 distinct chunks: fixed costs stay small beside them
NEEDLE = Path(sys.executable).with_name("needle")
CACHE = Path(".cache/bench")


def stdlib_sample(dest: Path, packages=STDLIB_PACKAGES) -> Path:
    """A real tree of Python packages from the standard library, copied so the index lands in a temp folder."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    for name in packages:
        shutil.copytree(lib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    return dest


def chunk_texts(repo: Path) -> tuple[int, list[str]]:
    files = [p for p in repo.rglob("*") if p.is_file() and ".needle" not in p.parts]
    texts = []
    for p in files:
        rel = p.relative_to(repo).as_posix()
        texts += [embed_text(c) for c in chunk_source(rel, p.read_bytes(), language_for_path(rel))]
    return len(files), list(dict.fromkeys(texts))  # the index embeds each distinct text once


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def row(label: str, ours: float, base: float | None = None, note: str = "", fmt: str = "12.1f") -> None:
    b = f"{base:{fmt}}" if base is not None else " " * 12
    ratio = f"{ours / base:8.2f}" if base else " " * 8
    print(f"{label:64} {ours:{fmt}} {b} {ratio}   {note}", flush=True)


def header(title: str) -> None:
    print(f"\n## {title}\n{'measure':64} {'needle':>12} {'baseline':>12} {'ratio':>8}", flush=True)


def throughput(work: Path) -> None:
    from codeneedle.indexer.bert import BertEncoder, BertTokenizer

    repo = stdlib_sample(work / "tp")
    n_files, texts = chunk_texts(repo)
    name, folder = resolve_model(None)
    print(f"tree: stdlib {', '.join(STDLIB_PACKAGES)}: {n_files} files, {len(texts)} distinct chunks; "
          f"model {name}; {cpu_count()} cores")
    torch_enc = Encoder(name, folder, BertEncoder(folder), BertTokenizer(folder), "torch", 384)
    torch_enc.encode(texts[:8])  # warm up outside the timed region
    raw = len(texts) / timed(lambda: torch_enc.encode(texts))
    header("throughput, chunks/s on the same chunks (baseline: raw torch fp32 encoder, 2 threads, 256 tokens)")
    row("raw torch fp32 encoder (the old path)", raw, raw)
    engines = {}
    for precision in ("fp32", "int8"):
        for workers in (1, 2):
            enc = Encoder.from_folder(name, folder, precision=precision)
            enc.workers = workers
            enc.encode(texts[:8])
            engines[(precision, workers)] = cps = len(texts) / timed(lambda e=enc: e.encode(texts))
            threads = max(1, cpu_count() // workers)
            row(f"ONNX Runtime {precision}, {workers} worker(s) x {threads} thread(s), {enc.code_tokens} tok", cps, raw)
    index = Index.open(repo)
    index.encoder.bulk()  # load the engine outside the timed region, as for the raw runs
    t0 = time.perf_counter()
    stats = [index.update()]
    seconds = time.perf_counter() - t0
    index.close()
    cold = stats[0].chunks_embedded / seconds
    row(f"needle cold index, defaults ({index.encoder.precision}, {index.encoder.bulk().workers} workers, "
        f"{index.encoder.code_tokens} tok)", cold, raw, "goal >= 2.5")
    print(f"cold index: {stats[0].files_changed} files, {stats[0].chunks_added} chunks, {seconds:.1f} s")


def quality(record: bool) -> None:
    import numpy as np

    from codeneedle.indexer.onnx_bert import model_file
    from codeneedle.training.evaluate import cosqa_benchmark, metrics_from_ranks, rank_of

    bench = cosqa_benchmark("test")
    texts = bench.corpus["cosqa"]
    name, folder = resolve_model(None)
    fp32 = Encoder.from_folder(name, folder, precision="fp32")
    queries = fp32.encode_queries([q for _, q, _ in bench.queries])  # the numpy path, as `needle search`
    header(f"quality: CoSQA test MRR@10, {len(bench.queries)} queries over {len(texts)} functions, dense")
    mrr = {}
    for precision in ("fp32", "int8"):
        enc = Encoder.from_folder(name, folder, precision=precision)
        path = CACHE / f"cosqa-test-{enc.model_id}.npy"
        if path.is_file():
            code = np.load(path)
        else:
            code = enc.encode(texts)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, code)
        scores = queries @ code.T
        ranks = [rank_of(scores[i], target) for i, (_, _, target) in enumerate(bench.queries)]
        mrr[precision] = metrics_from_ranks(ranks)["mrr@10"]
    row("int8 code vectors, MRR@10 (baseline fp32)", mrr["int8"], mrr["fp32"], fmt="12.4f",
        note=f"loss {mrr['fp32'] - mrr['int8']:+.4f}; int8 default only if loss <= 0.01")
    sizes = {p: model_file(folder, p).stat().st_size for p in ("fp32", "int8")}
    print(f"model files: fp32 ONNX {sizes['fp32'] / 2**20:.1f} MiB, int8 ONNX {sizes['int8'] / 2**20:.1f} MiB "
          f"(user cache; the shipped fp16 safetensors stay the source)")
    measurement = {"benchmark": f"cosqa-test dense MRR@10, {len(bench.queries)} queries, code cut at "
                                f"{fp32.code_tokens} tokens",
                   "fp32_mrr10": round(mrr["fp32"], 4), "int8_mrr10": round(mrr["int8"], 4)}
    print(f"int8 default for {name}: {int8_allowed(measurement)}")
    if record:
        data = json.loads(QUANTIZATION_RECORD.read_text()) if QUANTIZATION_RECORD.is_file() else {}
        data[name] = {**data.get(name, {}), **measurement}  # the code-cut record beside it stays
        QUANTIZATION_RECORD.write_text(json.dumps(data, indent=2) + "\n")
        print(f"recorded in {QUANTIZATION_RECORD}")


def one_shot_search(work: Path, runs: int = 20) -> None:
    from bench.lsp_latency import PartlyRealEncoder, build_corpus

    repo = work / "search"
    build_corpus(repo, 10_000)
    with PartlyRealEncoder(500), Index.open(repo) as index:
        index.update()
        chunks = index.status().chunks
    queries = ["parse a configuration file", "open a socket connection", "format a date", "read json",
               "compress data with zlib"]

    def wall(args: list[str]) -> list[float]:
        out = []
        for i in range(runs):
            t0 = time.perf_counter()
            proc = subprocess.run([str(NEEDLE), "search", queries[i % len(queries)], "--path", str(repo), *args],
                                  capture_output=True, text=True)
            out.append(time.perf_counter() - t0)
            assert proc.returncode == 0 and proc.stdout, proc.stderr
        return out

    def pct(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 1 else xs[0]

    torch_import = [timed(lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True))
                    for _ in range(5)]
    header(f"one-shot `needle search`, {runs} runs, warm index of {chunks} chunks (baseline: `import torch` alone)")
    base = statistics.median(torch_import)
    # The queries are typed questions: the default's second stage is late interaction (late_interaction.py).
    for label, args in (("default (refreshes the index first)", []), ("--no-refresh", ["--no-refresh"]),
                        ("--no-refresh --no-rerank (first stage)", ["--no-refresh", "--no-rerank"])):
        xs = wall(args)
        row(f"{label}: p50 s", statistics.median(xs), base, "goal < 0.5 s", fmt="12.3f")
        row(f"{label}: p95 s", pct(xs, 95), None, fmt="12.3f")


BUSY_PACKAGES = ("json", "email", "asyncio", "xml", "unittest")
BUSY_QUERIES = (("typed question (late interaction)", "parse a configuration file", True),
                ("doc-style sentence (cross-encoder)", "Parse the headers of an email message.", True),
                ("typed question, first stage only", "parse a configuration file", False))


def search_while_indexing(work: Path) -> None:
    """Search latency in the process that is embedding (as the language server is while it indexes a
    repository), each query style beside the same search once the index is idle."""
    import threading

    repo = stdlib_sample(work / "busy", BUSY_PACKAGES)
    later = [repo / name for name in BUSY_PACKAGES[1:]]
    for path in later:  # out of sight (a hidden folder) for the first pass
        path.rename(path.with_name("." + path.name))
    query = BUSY_QUERIES[2][1]
    with Index.open(repo) as index:
        index.update()  # the first package: something for the searches to find while the rest embeds
        for path in later:
            path.with_name("." + path.name).rename(path)
        # Another process's view (the MCP server, a second editor): an index that only reads, following the
        # writer's commits (a second Index on the same folder behaves as one).
        reader = Index.open(repo, create=False)
        searches = {label: (lambda q=q, r=r: index.search(q, rerank=r)) for label, q, r in BUSY_QUERIES}
        searches[f"{BUSY_QUERIES[2][0]}, in a reader"] = lambda: reader.search(query, rerank=False)
        for search in searches.values():
            search()  # each second stage's model loaded before the clock starts
        done = threading.Event()
        update = threading.Thread(target=lambda: (index.update(), done.set()))
        t0 = time.perf_counter()
        update.start()
        busy: dict[str, list[float]] = {label: [] for label in searches}
        while not done.is_set():
            for label, search in searches.items():
                busy[label].append(timed(search))
        update.join()
        seconds = time.perf_counter() - t0
        chunks = index.status().chunks
        idle = {label: statistics.median([timed(search) for _ in range(10)]) for label, search in searches.items()}
        unfiltered = statistics.median([timed(lambda: index.search(query, rerank=False)) for _ in range(10)])
        filtered = statistics.median([timed(lambda: index.search(query, rerank=False, glob="asyncio/**"))
                                      for _ in range(10)])
        reader.close()
    header(f"search while the same process embeds stdlib {', '.join(BUSY_PACKAGES[1:])} ({chunks} chunks in all, "
           f"{seconds:.0f} s; baseline: the same search once idle)")
    for label, xs in busy.items():
        row(f"{label}: p50 ms ({len(xs)} searches)", 1000 * statistics.median(xs), 1000 * idle[label], fmt="12.0f")
        row(f"{label}: max ms", 1000 * max(xs), None, fmt="12.0f")
    header(f"a filtered search once idle ({chunks} chunks; baseline: the same search without the filter)")
    row("first stage, glob asyncio/** : p50 ms", 1000 * filtered, 1000 * unfiltered, fmt="12.1f")


def first_results(work: Path, n_files: int = 10_000) -> None:
    repo = work / "first"
    for i in range(n_files):
        d = repo / f"pkg{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i % 100:02d}.py").write_text(
            f"def handle_event_{i}(event, retries={i % 7}):\n    \"\"\"Handle event number {i}.\"\"\"\n"
            f"    return event.get('id', {i}) * retries\n")
    (repo / "zzz_last.py").write_text("def zebra_marker_function(x):\n    return x\n")
    db = repo / ".needle/index.db"
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(NEEDLE), "index", "--quiet", str(repo)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    lexical = semantic = None
    try:
        while (lexical is None or semantic is None) and proc.poll() is None and time.perf_counter() - t0 < 300:
            time.sleep(0.05)
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    if lexical is None and conn.execute(
                            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH '\"zebra\"'").fetchone():
                        lexical = time.perf_counter() - t0
                    if semantic is None and conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]:
                        semantic = time.perf_counter() - t0
            except sqlite3.Error:
                continue
    finally:
        proc.kill()
        proc.wait()
    header(f"first results on a {n_files}-file tree, seconds from the start of `needle index`")
    row("first keyword hit in the last file (lexical)", lexical or float("nan"), 10.0, "goal < 10 s", fmt="12.2f")
    row("first vectors committed (semantic)", semantic or float("nan"), None, fmt="12.2f")


def warm(work: Path, n_files: int = 10_000) -> None:
    many = work / "many"
    for i in range(n_files):
        d = many / f"pkg{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i % 100:02d}.py").write_text("def handler(event):\n    return event\n")
    with Index.open(many) as big:
        big.update()
        seconds = timed(big.update)
        # Files skipped for what they hold have no record: until their size and mtime were kept with the skip,
        # every refresh read them again (200 such bundles cost each one-shot search 0.27 s).
        vendor, api = many / "vendor", many / "api"
        vendor.mkdir()
        api.mkdir()
        for i in range(200):
            (vendor / f"lib{i}.js").write_text(";".join(f"var a{j}=function(b){{return b*{j}+{i}}}"
                                                        for j in range(12_000)))
        for i in range(2_000):
            (api / f"msg{i}.pb.go").write_text("// Code generated by protoc-gen-go. DO NOT EDIT.\npackage api\n\n" + "".join(
                f"func (m *Msg{i}) GetField{j}() int {{\n\treturn m.f{j}\n}}\n\n" for j in range(300)))
        big.update()
        with_skipped = timed(big.update)
        skipped = big.status().skipped
    header(f"warm re-index, {n_files} unchanged files")
    row("seconds", seconds, 2.0, "goal < 2 s", fmt="12.3f")
    header(f"the same with {skipped.get('minified', 0)} minified bundles and {skipped.get('generated', 0)} generated "
           "files beside them (baseline: without them, same run)")
    row("seconds", with_skipped, seconds, fmt="12.3f")


def definitions_first(work: Path) -> None:
    # This repository as git holds it: code with its docs, tests, editor clients and data, as projects are.
    here = Path(__file__).resolve().parent.parent
    repo = work / "definitions"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=here, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, tracked.split("\0")):
        if (here / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(here / rel, repo / rel)
    db = repo / ".needle/index.db"
    pending = ("SELECT c.kind IN ('block', 'text'), count(*) FROM chunks c LEFT JOIN embeddings e "
               "ON e.hash = c.hash WHERE e.hash IS NULL GROUP BY 1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(NEEDLE), "index", "--quiet", str(repo)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    defs_done = None
    counts: dict[int, int] = {}
    while proc.poll() is None:
        time.sleep(0.1)
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
                left = dict(conn.execute(pending).fetchall())
                counts = dict(conn.execute("SELECT kind IN ('block', 'text'), count(*) FROM chunks GROUP BY 1"))
        except sqlite3.Error:
            continue
        # Nothing is embedded before every file's chunks are committed (lexical first): definitions stored and
        # none pending means the encoder has done them all.
        if defs_done is None and counts.get(0) and not left.get(0):
            defs_done = time.perf_counter() - t0
    every = time.perf_counter() - t0
    header(f"a cold `needle index` of Needle's own tree ({counts.get(0, 0)} definitions, "
           f"{counts.get(1, 0)} windows), seconds (baseline: until every chunk has its vector)")
    row("every function, method and class has its vector", defs_done or every, every, fmt="12.2f")


def reuse(work: Path) -> None:
    first = stdlib_sample(work / "reuse-first")
    clone, cold = work / "reuse-clone", work / "reuse-cold"
    shutil.copytree(first, clone)
    shutil.copytree(first, cold)
    on = {**os.environ, "NEEDLE_EMBEDDING_CACHE": str(work / "shared-embeddings.db")}
    off = {**os.environ, "NEEDLE_EMBEDDING_CACHE": "off"}

    def index(repo: Path, env: dict) -> float:
        t0 = time.perf_counter()
        subprocess.run([str(NEEDLE), "index", str(repo), "--quiet"], env=env, check=True)
        return time.perf_counter() - t0

    index(first, on)  # the first clone, indexed as usual, fills the shared cache
    header("`needle index` of a second clone, seconds (baseline: the same command with the shared cache off)")
    base = index(cold, off)
    ours = index(clone, on)
    row(f"second clone of stdlib {', '.join(STDLIB_PACKAGES)}", ours, base, fmt="12.2f")


def together(work: Path) -> None:
    """Two clones of one tree indexed at once (worktrees opened together), each a `needle index` process: with the
    shared cache each claims what it embeds and takes the other's vectors; without it both embed everything."""
    first = stdlib_sample(work / "together-a")
    for name in ("b", "c", "d"):
        shutil.copytree(first, work / f"together-{name}")
    cache = {**os.environ, "NEEDLE_EMBEDDING_CACHE": str(work / "together-embeddings.db")}
    off = {**os.environ, "NEEDLE_EMBEDDING_CACHE": "off"}

    def both(repos: list[Path], env: dict) -> tuple[float, int]:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([str(NEEDLE), "index", "--json", str(r)], env=env, stdout=subprocess.PIPE,
                                  text=True) for r in repos]
        embedded = 0
        for proc in procs:
            out, _ = proc.communicate()
            embedded += json.loads(out)["chunks_embedded"]
        return time.perf_counter() - t0, embedded

    base_s, base_embedded = both([work / "together-c", work / "together-d"], off)
    ours_s, ours_embedded = both([first, work / "together-b"], cache)
    header("two clones indexed at once by two `needle index` processes (baseline: the shared cache off)")
    row("seconds until both are done", ours_s, base_s, fmt="12.2f")
    row("chunks embedded, both together", ours_embedded, base_embedded, fmt="12d")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="throughput,quality,search,busy,first,warm,definitions,reuse,together")
    ap.add_argument("--record", action="store_true", help="write the int8/fp32 quality to quantization.json")
    args = ap.parse_args()
    sections = args.sections.split(",")
    print(f"machine: {cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: figures are noisy)")
    work = Path(tempfile.mkdtemp(prefix="needle-bench-"))
    os.environ.setdefault("NEEDLE_CACHE_DIR", str(Path.home() / ".cache/needle"))
    os.environ["NEEDLE_EMBEDDING_CACHE"] = "off"  # cold figures must not take this machine's earlier vectors
    try:
        if "throughput" in sections:
            throughput(work)
        if "quality" in sections:
            quality(args.record)
        if "search" in sections:
            one_shot_search(work)
        if "busy" in sections:
            search_while_indexing(work)
        if "first" in sections:
            first_results(work)
        if "warm" in sections:
            warm(work)
        if "definitions" in sections:
            definitions_first(work)
        if "together" in sections:
            together(work)
        if "reuse" in sections:
            reuse(work)
        print(f"\npeak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
              f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
