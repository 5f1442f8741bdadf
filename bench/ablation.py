"""Ablation of the mining strategy and the loss, at one equal small budget, on the held-out repositories.

Each variant fine-tunes all-MiniLM-L6-v2 from the same seed, on the same first --pairs training records, for
the same number of steps; then bench/quality.py evaluates them all in one table (BM25 and the untuned base in
the same run). Two runs train at a time (one CPU thread each). A run already in --work is reused.

    .venv/bin/python bench/ablation.py [--steps 60] [--batch 16] [--pairs 20000]

Variants: in-batch negatives only; + random / BM25-hard / model-hard mined negatives; the staged curriculum
(easy -> BM25-hard -> model-hard); the staged curriculum with the cosine triplet loss, and with both losses.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # label -> (curriculum, loss)
    "in-batch only": ("none", "infonce"),
    "random negatives": ("random", "infonce"),
    "BM25-hard": ("bm25", "infonce"),
    "model-hard": ("model", "infonce"),
    "staged": ("staged", "infonce"),
    "staged, triplet loss": ("staged", "triplet"),
    "staged, both losses": ("staged", "both"),
}


def slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-")


def train(label: str, args: argparse.Namespace) -> Path:
    curriculum, loss = VARIANTS[label]
    out = args.work / slug(label)
    if (out / "model" / "config.json").is_file():
        return out / "model"
    cmd = [sys.executable, "-m", "codeneedle.training.run", "train", "--data", str(args.data), "--out", str(out),
           "--steps", str(args.steps), "--batch-size", str(args.batch), "--curriculum", curriculum, "--loss", loss,
           "--max-pairs", str(args.pairs), "--lr", "4e-5", "--code-max-tokens", "128", "--query-max-tokens", "32",
           "--threads", "1", "--checkpoint-every", "1000", "--fresh"]
    with open(args.work / f"{slug(label)}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    print(f"trained: {label}", file=sys.stderr, flush=True)
    return out / "model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".cache/corpus/pairs/train.jsonl")
    ap.add_argument("--work", type=Path, default=ROOT / ".cache/ablation")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=20000, help="use the first N training records")
    ap.add_argument("--heldout-split", default="heldout")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        models = dict(zip(VARIANTS, pool.map(lambda label: train(label, args), VARIANTS), strict=True))
    print(f"# Ablation: {args.steps} steps x batch {args.batch} from all-MiniLM-L6-v2, first {args.pairs} pairs")
    sys.stdout.flush()
    extra = [arg for label, model in models.items() for arg in ("--extra", f"{label}={model}")]
    subprocess.run([sys.executable, str(ROOT / "bench/quality.py"), "--skip", "cosqa", "--tuned", "",
                    "--heldout-split", args.heldout_split, "--threads", "2", *extra], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
