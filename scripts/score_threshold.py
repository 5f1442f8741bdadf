"""Where the "no good match" line sits: top cosine of real questions vs nonsense and off-topic queries.

Indexes a copy of a repository's Python sources (default: this repository's `codeneedle/`), asks the first
sentence of every documented function as a "real" query and a fixed list of nonsense / off-topic queries,
and prints the top score (query-chunk cosine, codeneedle/indexer/scores.py) of each group by percentile.

    .venv/bin/python scripts/score_threshold.py [--src codeneedle] [--limit 60]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np

from codeneedle.indexer.index import Index
from codeneedle.indexer.scores import GOOD_MATCH

NONSENSE = [
    "zzqx blorf", "qwerty asdf zxcv", "flibber jabber wocky", "xkcd 927 standards", "lorem ipsum dolor sit amet",
    "recipe for chocolate cake", "weather in paris tomorrow", "who won the world cup in 1998",
    "how tall is mount everest", "best hiking boots for winter", "translate hello into japanese",
    "symptoms of the common cold", "cheap flights to lisbon", "knitting pattern for a scarf",
    "how to train a puppy to sit", "ancient roman aqueducts", "price of bitcoin today", "mmmm hmm ok",
    "banana", "the quick brown fox jumps over the lazy dog", "photosynthesis in plants",
    "draw a unicorn with crayons", "tax deadline for freelancers", "jazz chord progressions",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="codeneedle")
    ap.add_argument("--limit", type=int, default=60, help="real queries sampled from doc comments")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(args.src, repo, ignore=shutil.ignore_patterns("models", "queries", "__pycache__"))
        with Index.open(repo) as index:
            index.update()
            docs = [r for r in index.store.conn.execute(
                "SELECT doc FROM chunks WHERE doc != '' AND kind IN ('function','method')").fetchall()]
            random.Random(0).shuffle(docs)
            real = [d[0].strip().split(". ")[0].splitlines()[0][:200] for d in docs[: args.limit]]
            groups = {"real (doc comments)": real, "nonsense/off-topic": NONSENSE}
            for name, queries in groups.items():
                tops = np.array([max((r.score for r in index.search(q, k=5)), default=0.0) for q in queries])
                pct = np.percentile(tops, [5, 25, 50, 75, 95])
                below = float((tops < GOOD_MATCH).mean())
                print(f"{name:22s} n={len(tops):3d} top-score p5/p25/p50/p75/p95 = "
                      + " / ".join(f"{x:.2f}" for x in pct) + f"; below {GOOD_MATCH}: {below:.0%}")


if __name__ == "__main__":
    main()
