"""End-to-end retrieval quality of `needle search` on CoSQA (real web queries over 6,267 Python functions).

Indexes the CoSQA code base (one function per file) with the real pipeline, then runs every query of a split
through Needle's hybrid search and, from the same index, through its dense side alone and its BM25 side alone.
Prints MRR@10, R@1, R@5 and R@10 side by side with ratios to BM25 and to the dense side.

    .venv/bin/python bench/cosqa_search.py --split dev     # tune on dev
    .venv/bin/python bench/cosqa_search.py --split test    # report on test
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from codeneedle.indexer import search as S
from codeneedle.indexer.index import Index
from codeneedle.indexer.settings import IndexSettings

# ../shared/data/cosqa beside the checkout; a git worktree one level deeper finds it two levels up.
DATA = next((p / "shared" / "data" / "cosqa" for p in Path(__file__).resolve().parents[2:4]
             if (p / "shared" / "data" / "cosqa").is_dir()),
            Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cosqa")
CACHE = Path(__file__).resolve().parent.parent / ".cache"


def build_corpus(dest: Path) -> Path:
    """Write each CoSQA function to its own file, named by its id."""
    if (dest / ".complete").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    code_to_id = json.loads((DATA / "code_idx_map.txt").read_text())
    for code, idx in code_to_id.items():
        (dest / f"f{idx:05d}.py").write_text(code + "\n")
    (dest / ".complete").write_text("")
    return dest


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "MRR@10": sum(1 / r for r in ranks if r and r <= 10) / n,
        "R@1": sum(1 for r in ranks if r == 1) / n,
        "R@5": sum(1 for r in ranks if r and r <= 5) / n,
        "R@10": sum(1 for r in ranks if r and r <= 10) / n,
    }


def rank_of(paths: list[str], target: str) -> int | None:
    return paths.index(target) + 1 if target in paths else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--model", default=None, help="encoder (default: Needle's default)")
    ap.add_argument("--weights", default="", help="comma list of lexical weights to sweep (dev only)")
    args = ap.parse_args()
    corpus = build_corpus(CACHE / "cosqa-repo")
    settings = IndexSettings(model=args.model, index_dir=CACHE / f"cosqa-index-{args.model or 'default'}")
    queries = json.loads((DATA / f"cosqa-retrieval-{args.split}-500.json").read_text())
    with Index.open(corpus, settings) as index:
        t0 = time.perf_counter()
        stats = index.update()
        print(f"index: {stats.files_changed} files changed, {stats.chunks_embedded} embedded, "
              f"{time.perf_counter() - t0:.1f}s; model {index.model_id}")
        store, vectors = index.reader(), index.vectors()
        qvecs = index.encoder.encode_queries([q["doc"] for q in queries])
        runs: dict[str, list[int | None]] = {"bm25": [], "dense": [], "needle (hybrid)": []}
        sweep = [float(w) for w in args.weights.split(",") if w]
        sweeps: dict[float, list[int | None]] = {w: [] for w in sweep}
        t0 = time.perf_counter()
        for q, qvec in zip(queries, qvecs, strict=True):
            target = f"f{q['retrieval_idx']:05d}.py"
            dense = S.dense_ranking(store, vectors, index.model_id, qvec, 50, S.Filters())
            lexical = S.lexical_ranking(store, q["doc"], 50, S.Filters())
            rows = store.chunks_by_ids([c for c, _ in dense] + lexical)

            def paths(ids: list[int], rows=rows) -> list[str]:
                return list(dict.fromkeys(rows[i].path for i in ids if i in rows))[:10]

            runs["bm25"].append(rank_of(paths(lexical), target))
            runs["dense"].append(rank_of(paths([c for c, _ in dense]), target))
            fused = S.fuse(dense, lexical, S.lexical_weight(q["doc"]))
            runs["needle (hybrid)"].append(rank_of(paths([c for c, _ in fused]), target))
            for w in sweep:
                sweeps[w].append(rank_of(paths([c for c, _ in S.fuse(dense, lexical, w)]), target))
        per_query_ms = (time.perf_counter() - t0) / len(queries) * 1000
    results = {name: metrics(r) for name, r in runs.items()}
    results.update({f"hybrid, lexical weight {w}": metrics(r) for w, r in sweeps.items()})
    print(f"\nCoSQA {args.split} ({len(queries)} queries, {len(json.loads((DATA / 'code_idx_map.txt').read_text()))} "
          f"functions), model {args.model or 'default'}; {per_query_ms:.1f} ms/query for all rankings")
    print(f"{'ranking':34} {'MRR@10':>8} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'vs BM25':>8} {'vs dense':>9}")
    for name, m in results.items():
        print(f"{name:34} {m['MRR@10']:8.3f} {m['R@1']:7.3f} {m['R@5']:7.3f} {m['R@10']:7.3f} "
              f"{m['MRR@10'] / results['bm25']['MRR@10']:8.2f} {m['MRR@10'] / results['dense']['MRR@10']:9.2f}")


if __name__ == "__main__":
    main()
