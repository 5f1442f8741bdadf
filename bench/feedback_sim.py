"""Simulated users for the feedback loop: does learning from opened results help on queries not yet seen?

On a repository no training list contains (default: the installed `sqlite_utils` package), every documented
function gives a query (its doc's first sentence) and a target (the function with its doc removed), searched
among all its functions, as the held-out benchmark does. Queries are split in two halves by a hash. Simulated
users search N queries drawn from half A with the current encoder and open the right result (the results
ranked above it are logged as seen-and-skipped), through the real feedback log; the encoder is then adapted on
those triplets only (plus the shipped replay sample: the mined doc pairs would contain half B's answers), and
MRR@10 (dense) is reported on half B before and after, beside the same on half A.

The simulated index is a copy of the repository with every doc comment blanked (bench/quality.py's
`blank_docs`; lines are kept): the queries are doc sentences, so a doc left in the code would put each query
word for word into its own answer, in the candidates and in the opened code the feedback log trains on. With
the docs left in, adapting taught the model to find a doc sentence in the code, which half B's doc-less
candidates never offer: needle-code-v2 lost 0.017 to 0.056 on half B of three repositories (2026-12-05).

    .venv/bin/python bench/feedback_sim.py --events 200 --steps 40
    .venv/bin/python bench/feedback_sim.py --repo DIR [--lr 1e-5] [--freeze-layers 3] [--wise 0.5]   # variants
    .venv/bin/python bench/feedback_sim.py --repo DIR --adapter [--anchor 30] [--l2 10] [--iters 50]

``--adapter`` measures the product instead: the blanked copy is indexed whole with ``Index``, the simulated
users search through ``Index.search`` and open the right result when it is among the first 50, and the query
adapter is fitted as `needle train --repo --adapter` fits it (``through_index``); MRR@10 is that of
``Index.search`` (fusion, ranking rules and all).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import blank_docs  # noqa: E402  (bench/ is the script's own folder)

from codeneedle.indexer.chunker import chunk_source  # noqa: E402
from codeneedle.indexer.encoder import Encoder, embed_text  # noqa: E402
from codeneedle.indexer.feedback import Shown, record_open  # noqa: E402
from codeneedle.indexer.models import resolve_model  # noqa: E402
from codeneedle.training.adapt import mine_repository  # noqa: E402
from codeneedle.training.feedback import feedback_records  # noqa: E402
from codeneedle.training.mining import function_chunks, iter_source_files  # noqa: E402
from codeneedle.training.query_adapter import AdapterConfig  # noqa: E402
from codeneedle.training.train import TrainConfig, interpolate_models, train_model  # noqa: E402


def blanked_copy(repo: Path, dest: Path) -> Path:
    """A copy of ``repo`` with the doc comments of all its Python definitions blanked (line numbers kept)."""
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for sf in iter_source_files(dest):
        if sf.path.endswith(".py"):
            blank_docs(sf.abs_path, [c for c in chunk_source(sf.path, sf.abs_path.read_bytes(), "python") if c.doc])
    return dest


def benchmark(repo: Path, blanked: Path) -> tuple[list, list[tuple[str, int]]]:
    """Candidates (the blanked copy's function chunks) and (query, target index) pairs (``repo``'s docs)."""
    chunks = []
    for sf in iter_source_files(blanked):
        if sf.path.endswith(".py"):
            chunks += function_chunks(sf.path, sf.abs_path.read_bytes(), "python")
    where = {(c.path, c.start_line): i for i, c in enumerate(chunks)}
    queries = [(p.query, where[(p.path, p.start_line)]) for p in mine_repository(repo)
               if (p.path, p.start_line) in where]
    return chunks, queries


def embeddings(model: str, chunks, queries) -> tuple[Encoder, np.ndarray, np.ndarray]:
    """The encoder, the candidates' vectors and the queries' vectors."""
    enc = Encoder.load(model)
    c = enc.encode([embed_text(ch) for ch in chunks], batch_size=32)
    q = enc.encode([text for text, _ in queries], batch_size=64, max_length=64)
    return enc, c, q


def rankings(c: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.argsort(-(q @ c.T), axis=1, kind="stable")


def through_index(blanked: Path, model: str, work: Path, chunks, queries, a: list[int], b: list[int],
                  args: argparse.Namespace) -> dict:
    """``--adapter``: the product's own path. The blanked copy is indexed whole (tests, docs and all) with
    ``Index``; simulated users search half A through ``Index.search`` and open the right result when it is
    among the first 50 (the results above it are logged as passed over); `needle train --repo --adapter`'s
    fit (``fit_query_adapter``) reads that log and is saved beside the index; both halves are searched again."""
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.settings import IndexSettings
    from codeneedle.training.query_adapter import fit_query_adapter

    index = Index.open(blanked, IndexSettings(model=model, index_dir=work / "index"))
    index.update()

    def position(i: int, k: int) -> tuple[int | None, list]:
        target = chunks[queries[i][1]]
        hits = index.search(queries[i][0], k=k)
        pos = next((n for n, h in enumerate(hits) if (h.path, h.start_line) == (target.path, target.start_line)),
                   None)
        return pos, hits

    def mrr10(subset: list[int]) -> float:
        total = 0.0
        for i in subset:
            pos, _ = position(i, 10)
            total += 1.0 / (pos + 1) if pos is not None else 0.0
        return total / max(1, len(subset))

    before_a, before_b = mrr10(a), mrr10(b)
    rng = random.Random(13)
    opened = 0
    for _ in range(args.events):  # users repeat queries: draw with replacement from half A
        i = rng.choice(a)
        pos, hits = position(i, 50)
        if pos is None:
            continue  # not found in the results: nothing is opened
        shown = [Shown(h.path, h.start_line, h.name) for h in hits]
        opened += record_open(index.index_dir, queries[i][0], shown[pos], shown[:pos])
    t1 = time.time()
    fit = fit_query_adapter(index, AdapterConfig(rank=args.rank, l2=args.l2, anchor=args.anchor, iters=args.iters,
                                                 threads=args.threads, folds=args.folds))
    fit.adapter.save(index.index_dir)
    fit_s = time.time() - t1
    after_a, after_b = mrr10(a), mrr10(b)
    chunks_indexed = index.status().chunks
    index.close()
    return {"chunks": chunks_indexed, "opened_events": opened, "train_seconds": round(fit_s, 1),
            **{f"fit_{k}": v for k, v in fit.to_dict().items()},
            "mrr10_b_before": round(before_b, 4), "mrr10_b_after": round(after_b, 4),
            "mrr10_a_before": round(before_a, 4), "mrr10_a_after": round(after_a, 4)}


def mrr(ranks: np.ndarray, queries, subset: list[int]) -> float:
    total = 0.0
    for i in subset:
        pos = int(np.where(ranks[i] == queries[i][1])[0][0]) + 1
        total += 1.0 / pos if pos <= 10 else 0.0
    return total / max(1, len(subset))


def fine_tune(folder: Path, records: list[dict], work: Path, args: argparse.Namespace) -> Path:
    """`needle train --repo`'s way: the whole encoder on the events' triplets plus the shipped replay sample."""
    replay_file = folder / "replay.jsonl.gz"
    replay = []
    if replay_file.is_file():
        with gzip.open(replay_file, "rt") as fh:
            replay = [json.loads(line) for line in fh]
    (work / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (work / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in replay))
    config = TrainConfig(train_data=str(work / "data.jsonl"), out_dir=str(work / "run"), base_model=str(folder),
                         steps=args.steps, batch_size=16, lr=args.lr, curriculum="none",
                         freeze_layers=args.freeze_layers,
                         replay_data=str(work / "replay.jsonl") if replay else "", replay_fraction=0.5 if replay else 0,
                         threads=args.threads, checkpoint_every=10_000, device="cpu")
    adapted = train_model(config, resume=False)
    if args.wise < 1.0:
        adapted = interpolate_models(str(folder), adapted, args.wise, work / "wise")
    return adapted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_repo = Path(importlib.util.find_spec("sqlite_utils").submodule_search_locations[0])
    ap.add_argument("--repo", type=Path, default=default_repo)
    ap.add_argument("--model", default=None, help="encoder to adapt (default: the default encoder)")
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-5, help="the learning rate of `needle train --repo`")
    ap.add_argument("--freeze-layers", type=int, default=0, help="keep the embeddings and the first N layers")
    ap.add_argument("--wise", type=float, default=1.0,
                    help="WiSE-FT: keep this share of the adapted weights, the rest from the encoder adapted from")
    ap.add_argument("--adapter", action="store_true",
                    help="fit a query-side adapter to the events instead of fine-tuning (nothing re-embedded)")
    defaults = AdapterConfig()
    ap.add_argument("--rank", type=int, default=defaults.rank, help="--adapter: rank of the map")
    ap.add_argument("--l2", type=float, default=defaults.l2, help="--adapter: pull towards the identity")
    ap.add_argument("--anchor", type=float, default=defaults.anchor, help="--adapter: weight of the KL anchor")
    ap.add_argument("--iters", type=int, default=defaults.iters, help="--adapter: optimizer iterations")
    ap.add_argument("--folds", type=int, default=defaults.folds,
                    help="--adapter: folds of the held-out check that picks the map's strength (0: full strength)")
    args = ap.parse_args()

    t0 = time.time()
    name, folder = resolve_model(args.model)
    scratch = tempfile.TemporaryDirectory()
    blanked = blanked_copy(args.repo, Path(scratch.name) / args.repo.name)
    chunks, queries = benchmark(args.repo, blanked)
    half = [int(hashlib.md5(q.encode()).hexdigest(), 16) % 2 for q, _ in queries]
    a = [i for i, h in enumerate(half) if h == 0]
    b = [i for i, h in enumerate(half) if h == 1]
    if args.adapter:
        with tempfile.TemporaryDirectory() as tmp:
            row = {"repo": str(args.repo), "model": name, "candidates": len(chunks), "queries_a": len(a),
                   "queries_b": len(b), "events": args.events, "adapter": True, "ranking": "Index.search",
                   "rank": args.rank, "l2": args.l2, "anchor": args.anchor, "iters": args.iters, "folds": args.folds,
                   **through_index(blanked, str(folder), Path(tmp), chunks, queries, a, b, args)}
        row["gain_b"] = round(row["mrr10_b_after"] - row["mrr10_b_before"], 4)
        row["total_seconds"] = round(time.time() - t0, 1)
        scratch.cleanup()
        sys.stdout.write(json.dumps(row) + "\n")
        return
    _enc, c, q = embeddings(str(folder), chunks, queries)
    before = rankings(c, q)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rng = random.Random(13)
        for _ in range(args.events):  # users repeat queries: draw with replacement from half A
            i = rng.choice(a)
            order = list(before[i])
            pos = order.index(queries[i][1])
            shown = [Shown(chunks[j].path, chunks[j].start_line, chunks[j].name) for j in order[:max(pos, 10) + 1]]
            record_open(work / "index", queries[i][0], shown[pos], shown[:pos])
        records = feedback_records(blanked, work / "index", "local:sim")
        t1 = time.time()
        after = rankings(*embeddings(str(fine_tune(folder, records, work, args)), chunks, queries)[1:])
        train_s = time.time() - t1
    row = {"repo": str(args.repo), "model": name, "candidates": len(chunks), "queries_a": len(a), "queries_b": len(b),
           "events": args.events, "distinct_triplets": len(records), "steps": args.steps, "lr": args.lr,
           "freeze_layers": args.freeze_layers, "wise": args.wise, "ranking": "dense",
           "train_seconds": round(train_s, 1), "total_seconds": round(time.time() - t0, 1),
           "mrr10_b_before": round(mrr(before, queries, b), 4), "mrr10_b_after": round(mrr(after, queries, b), 4),
           "mrr10_a_before": round(mrr(before, queries, a), 4), "mrr10_a_after": round(mrr(after, queries, a), 4)}
    row["gain_b"] = round(row["mrr10_b_after"] - row["mrr10_b_before"], 4)
    scratch.cleanup()
    sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
