"""Search quality, side by side: BM25 vs the untuned base encoder vs the tuned encoder, dense and hybrid.

    python bench/quality.py                      # held-out repositories + CoSQA test
    python bench/quality.py --cosqa-split dev    # tune on dev, never on test
    python bench/quality.py --extra staged=.cache/runs/staged/model --extra triplet=.cache/runs/triplet/model

Held-out: pairs mined by scripts/build_training_set.py from repositories never used in training (the first
doc sentence searches among every function of the same repository, doc comments stripped). CoSQA: real web
queries over 6,267 Python functions (../shared/data/cosqa). "hybrid" fuses the dense ranking with BM25 by
Needle's own reciprocal rank fusion (codeneedle.indexer.search.fuse); the lexical side here is the Okapi BM25
of codeneedle.training.negatives, not SQLite FTS5. Embeddings are cached per model in --cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codeneedle.indexer.encoder import Encoder  # noqa: E402
from codeneedle.indexer.models import SHIPPED_MODELS_DIR, TUNED_MODEL  # noqa: E402
from codeneedle.training.evaluate import (  # noqa: E402
    cosqa_benchmark,
    evaluate_benchmark,
    format_table,
    heldout_benchmark,
)

PUBLISHED_COSQA = [("CodeBERT (125M, tuned on CoSQA)", 0.657), ("GraphCodeBERT (125M, tuned)", 0.684),
                   ("UniXcoder (125M, tuned)", 0.701)]


def run(bench, models: list[tuple[str, str]], cache: Path, threads: int, log) -> tuple[list, dict]:
    rows = []
    results = {}
    bm = evaluate_benchmark(bench, None, ("bm25",))
    rows.append(("BM25", bm["overall"]["bm25"]))
    results["bm25"] = bm
    for label, path in models:
        t0 = time.time()
        enc = Encoder.load(path)
        r = evaluate_benchmark(bench, enc, ("dense", "hybrid"), cache, threads, log)
        rows.append((f"{label} dense", r["overall"]["dense"]))
        rows.append((f"{label} + hybrid", r["overall"]["hybrid"]))
        results[label] = r
        log(f"  {label}: {time.time() - t0:.0f}s")
    return rows, results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=".cache/corpus/pairs", help="mined pairs folder (build_training_set.py)")
    ap.add_argument("--heldout-split", default="heldout", help="heldout (report) or valid (tune)")
    ap.add_argument("--tuned", default=str(SHIPPED_MODELS_DIR / TUNED_MODEL), help="tuned model folder or name ('': none)")
    ap.add_argument("--extra", action="append", default=[], help="LABEL=MODEL more rows (ablations)")
    ap.add_argument("--cosqa-split", default="test", choices=("dev", "test"))
    ap.add_argument("--skip", action="append", default=[], choices=("heldout", "cosqa"))
    ap.add_argument("--cache", default=".cache/eval-emb")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write all metrics (per repository too) to this file")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    models = [("base (all-MiniLM-L6-v2)", "minilm")]
    if args.tuned and (Path(args.tuned).is_dir() or args.tuned != str(SHIPPED_MODELS_DIR / TUNED_MODEL)):
        models.append(("tuned (" + Path(args.tuned).name + ")", args.tuned))
    models += [tuple(e.split("=", 1)) for e in args.extra]
    out: dict = {}
    base_label = "base (all-MiniLM-L6-v2) dense"
    if "heldout" not in args.skip:
        bench = heldout_benchmark(Path(args.pairs), args.heldout_split)
        repos = sorted(bench.corpus)
        print(f"\n## Held-out repositories ({args.heldout_split}): {len(bench.queries)} queries, "
              f"{sum(len(v) for v in bench.corpus.values())} functions; each query searches its own repository's")
        print("   " + ", ".join(f"{r} ({len(bench.corpus[r])})" for r in repos))
        rows, res = run(bench, models, Path(args.cache), args.threads, log)
        print(format_table(rows, base_label))
        print("\nper repository, MRR@10 (dense): " + " | ".join(
            f"{r}: " + " / ".join(f"{res[label]['groups'][r]['dense']['mrr@10']:.3f}" for label, _ in models)
            for r in repos))
        out["heldout"] = {"rows": rows, "results": res}
    if "cosqa" not in args.skip:
        bench = cosqa_benchmark(args.cosqa_split)
        print(f"\n## CoSQA {args.cosqa_split}: {len(bench.queries)} web queries over {len(bench.corpus['cosqa'])} "
              "Python functions (docstrings kept)")
        rows, res = run(bench, models, Path(args.cache), args.threads, log)
        print(format_table(rows, base_label))
        if args.cosqa_split == "test":
            print("published MRR on CoSQA test (fine-tuned on CoSQA's own training pairs): "
                  + ", ".join(f"{n} {v:.3f}" for n, v in PUBLISHED_COSQA))
        out["cosqa"] = {"rows": rows, "results": res}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
