"""Per-repository adaptation: mine the user's own documented functions, mix in a replay sample of the general
training set (so nothing general is forgotten) and fine-tune briefly, inside a wall-clock budget.

The whole model is tuned (not only the query side), so the index must re-embed afterwards; on 2 CPU cores a
600 s budget gives some 60-120 steps of batch 16.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from codeneedle.errors import NeedleError
from codeneedle.training.mining import Pair, interface_of, is_test_path, mine_file, training_examples

REPLAY_FILE = "replay.jsonl.gz"  # shipped beside the tuned weights: a sample of the general training set
MIN_PAIRS = 16


def mine_repository(repo: Path, seed: int = 13, progress: Callable[[str], None] | None = None) -> list[Pair]:
    """Documented functions of a working tree, through Needle's walker (ignore rules, secrets, size cap) and
    chunker, deduplicated by code."""
    from codeneedle.indexer.walker import read_source, walk

    pairs: list[Pair] = []
    seen: set[str] = set()
    for sf in walk(repo).files:
        if is_test_path(sf.path):
            continue
        data = read_source(sf)
        if isinstance(data, str):
            continue
        for p in mine_file(sf.path, data, f"local:{repo.name}", interface=interface_of(repo, sf.path)):
            key = " ".join(p.code.split())
            if key not in seen:
                seen.add(key)
                pairs.append(p)
    if progress:
        progress(f"mined {len(pairs)} documented functions from {repo}")
    return pairs


def _replay_records(base_model_dir: Path, replay_data: Path | None) -> list[dict]:
    path = replay_data or base_model_dir / REPLAY_FILE
    if not path.is_file():
        return []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


REPO_BATCH_SIZE = 16  # pairs per step when adapting to one repository


def adapt_to_repo(
    repo: Path,
    base_model: str | None,
    out_dir: Path,
    time_budget_s: float = 600,
    replay_data: Path | None = None,
    replay_fraction: float = 0.5,
    threads: int = 2,
    progress: Callable[[dict], None] | None = None,
    steps: int | None = None,
    index_dir: Path | None = None,
    batch_size: int | None = None,
    code_max_tokens: int | None = None,
) -> Path:
    """Fine-tune ``base_model`` (name or folder; None: the default encoder) on ``repo``'s own pairs plus a
    replay sample; returns the adapted model folder (HF layout) under ``out_dir``. ``steps`` None sizes the run
    to the pairs found. With ``index_dir``, the user's open events there become triplets beside the mined
    pairs (:mod:`codeneedle.training.feedback`). ``batch_size`` None: :data:`REPO_BATCH_SIZE`;
    ``code_max_tokens`` None: the training recipe's cut. Raises NeedleError when the repository has fewer than
    16 usable documented functions and open events together."""
    from codeneedle.indexer.models import resolve_model
    from codeneedle.training.train import TrainConfig, train_model

    t0 = time.monotonic()  # a budget of time awake, as train_model's (a wall clock moves on while a laptop sleeps)
    repo = Path(repo).resolve()
    name, folder = resolve_model(base_model)
    pairs = mine_repository(repo, progress=(lambda m: progress({"message": m})) if progress else None)
    opened = []
    if index_dir is not None:
        from codeneedle.training.feedback import feedback_records

        opened = feedback_records(repo, index_dir, f"local:{repo.name}")
        if progress and opened:
            progress({"message": f"{len(opened)} opened results from the feedback log"})
    if len(pairs) + len(opened) < MIN_PAIRS:
        raise NeedleError(f"only {len(pairs)} documented functions found in {repo}; need at least {MIN_PAIRS}")
    rng = random.Random(13)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "repo_pairs.jsonl"
    with open(data, "w") as fh:
        for p in pairs:
            fh.write(json.dumps(training_examples(p, rng)) + "\n")
        for rec in opened:
            fh.write(json.dumps(rec) + "\n")
    replay = _replay_records(folder, replay_data)
    replay_path = out_dir / "replay.jsonl"
    if replay:
        with open(replay_path, "w") as fh:
            for r in replay:
                fh.write(json.dumps(r) + "\n")
    batch_size = batch_size or REPO_BATCH_SIZE
    if steps is None:
        steps = max(10, min(150, (2 * (len(pairs) + len(opened)) * (2 if replay else 1)) // batch_size))
    cut = {"code_max_tokens": code_max_tokens} if code_max_tokens else {}
    spent = time.monotonic() - t0
    config = TrainConfig(
        train_data=str(data), out_dir=str(out_dir), base_model=str(folder), steps=steps, batch_size=batch_size,
        lr=2e-5, warmup=0.1, curriculum="bm25", negatives_per_batch=4, replay_data=str(replay_path) if replay else "",
        replay_fraction=replay_fraction if replay else 0.0, threads=threads, checkpoint_every=10_000,
        keep_checkpoints=1, max_time_s=max(30.0, time_budget_s - spent - 20), time_schedule=True, note=f"adapted to {repo} from {name}",
        **cut,
    )
    return train_model(config, progress=progress, resume=False)
