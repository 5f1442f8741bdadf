"""`needle train` flags beyond the basics (kept here so the CLI module stays small): the recipe's knobs, the
resumable CPU run and the GPU bundle."""

from __future__ import annotations

import argparse
from pathlib import Path

# flag -> TrainConfig field; None values leave the recipe (--config or the defaults) as it is
RECIPE_FLAGS = {"device": "device", "batch_size": "batch_size", "lr": "lr", "code_max_tokens": "code_max_tokens",
                "query_max_tokens": "query_max_tokens", "precision": "precision", "checkpoint_every":
                "checkpoint_every", "curriculum": "curriculum", "max_pairs": "max_pairs",
                "freeze_layers": "freeze_layers"}


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {'above 0' if least == 1 else f'{least} or more'}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0 (0 or less would train nothing, or forever)."""
    return _whole_number(text, 1)


def not_negative_int(text: str) -> int:
    """An argparse type: a whole number of 0 or more."""
    return _whole_number(text, 0)


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Add the recipe, resume and pack/unpack flags to the ``train`` sub-parser."""
    p.add_argument("--adapter", action="store_true",
                   help="--repo: fit a query adapter to the results you opened (seconds; nothing is re-embedded)")
    p.add_argument("--remove-adapter", action="store_true", help="--repo: delete the query adapter")
    p.add_argument("--device", help="--data: auto (default), cpu or cuda")
    p.add_argument("--batch-size", type=positive_int, help="--data/--repo: pairs per step (in-batch negatives grow with it; --repo: 16)")
    p.add_argument("--lr", type=positive_float, help="--data (and --reranker): peak learning rate")
    p.add_argument("--code-max-tokens", type=positive_int, help="--data/--repo: cut code at this many tokens (default 256)")
    p.add_argument("--query-max-tokens", type=positive_int, help="--data: cut queries at this many tokens")
    p.add_argument("--freeze-layers", type=not_negative_int,
                   help="--data: keep the embeddings and the first N layers fixed (a cheaper CPU step)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="--data: bf16 autocast (GPU) or fp32")
    p.add_argument("--checkpoint-every", type=positive_int, help="--data: steps between checkpoints")
    p.add_argument("--curriculum", help="--data: staged (default), none, random, bm25 or model")
    p.add_argument("--max-pairs", type=positive_int, help="--data/--pack: use only the first N pairs")
    p.add_argument("--resume", action="store_true",
                   help="--data: continue the run in --out from its newest checkpoint (its recipe wins)")
    p.add_argument("--pack", type=Path, metavar="DIR",
                   help="write a self-contained GPU bundle of --data (run it with DIR/run.sh OUT on the GPU machine)")
    p.add_argument("--unpack", type=Path, metavar="DIR",
                   help="reassemble the model a bundle's run.sh wrote (its OUT folder) into --out")
    p.add_argument("--budget-minutes", type=positive_float, default=9.0,
                   help="--pack: the GPU run stops itself after this long (default 9)")
    p.add_argument("--wise-alpha", type=float, default=None,
                   help="--pack: WiSE-FT weight of the tuned model in the export (default 0.5); --query-tower: of "
                        "the trained tower against where it started, the shared layers or --from-tower (default 1.0)")
    p.add_argument("--query-tower", action="store_true",
                   help="--data: retrain the query side only, against the code vectors of --base (default the "
                        "shipped encoder) as its indexes hold them; nothing is re-embedded")
    p.add_argument("--from-tower", type=Path, metavar="DIR",
                   help="--query-tower: continue from this tower's weights (e.g. the installed one, "
                        "<model>/query) instead of the shared layers")
    p.add_argument("--reexport", type=Path, metavar="TOWER",
                   help="--query-tower --wise-alpha A --out DIR: blend a trained tower (exported at alpha 1) with the "
                        "weights its run started from, without training again")
    p.add_argument("--residual", type=float, default=None,
                   help="--reranker: learn on top of the first stage, whose rank prior gets this weight in training "
                        "and in search (the shipped re-ranker: 3)")
    p.add_argument("--vectors", type=Path, metavar="DIR",
                   help="--reranker --residual: the pairs' code vectors cached by a query tower run (its cache/)")
    p.add_argument("--install", action="store_true",
                   help="--query-tower: put the trained tower into the model folder, where searches use it")
