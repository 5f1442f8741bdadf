"""Train a query tower: the encoder's layers retrained on the query side only, against frozen code vectors.

The index holds one vector per chunk, made by the shipped encoder. Retraining the whole encoder means
re-embedding every chunk of every index, and on two CPU cores each step also pays for a 128-token code forward
and backward pass. The query side is cheaper on both counts: the code vectors of the training pairs are embedded
once, exactly as the index embeds them (bulk engine, the same precision and code cut), and stay fixed; only the
query's forward and backward pass is left, and each query is scored against *every* code vector of the training
set (a full softmax: the hardest negatives of 160k come for free). The tower ships beside the encoder
(``<model>/query/``, :data:`codeneedle.indexer.encoder.QUERY_TOWER`), holding only the layers it changed.

The word embeddings stay shared and frozen: they are half of the model's weights, and keeping them is what
keeps the tower small. WiSE-FT interpolation with the shared layers (``alpha``) holds back drift on query styles
the pairs do not cover; chosen on the dev split and CoSQA dev (``bench/quality.py --split dev``).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from codeneedle.indexer.encoder import QUERY_MAX_TOKENS, QUERY_TOWER
from codeneedle.training.pack import file_sha256

TOWER_RECORD = "query_tower.json"
LOG_EVERY = 100


@dataclass(frozen=True, slots=True)
class TowerConfig:
    """One query-tower run. ``model``: the encoder whose code vectors stay fixed (None: the shipped default)."""

    data: str
    out: str
    model: str | None = None
    minutes: float = 30.0
    steps: int = 0  # 0: until the time budget is spent
    batch_size: int = 64
    lr: float = 2e-5
    temperature: float = 0.05
    freeze_layers: int = 0  # beyond the word embeddings, which are always shared
    alpha: float = 1.0  # WiSE-FT: share of the trained tower in the exported weights
    max_pairs: int = 0
    seed: int = 0
    threads: int = 2
    init: str | None = None  # a tower (trained against the same code vectors) to continue from


def read_pairs(path: Path, max_pairs: int = 0) -> list[dict]:
    """Training pairs (``query``, ``code`` as the index embeds it, and the function's ``repo``/``path``/``name``)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("query") and rec.get("code"):
                records.append(rec)
    if max_pairs and len(records) > max_pairs:
        records = random.Random(0).sample(records, max_pairs)
    return records


def code_vectors(records: list[dict], encoder, cache: Path, progress: Callable[[dict], None] | None = None,
                 also: tuple[Path, ...] = ()) -> np.ndarray:
    """The pairs' code vectors as ``encoder`` embeds them for the index; cached per data and model in ``cache``
    (``also``: other caches to read it from, such as an earlier stage's)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(encoder.model_id.encode())
    for rec in records:
        h.update(rec["code"].encode())
    name = f"codes-{h.hexdigest()}.npy"
    for folder in (cache, *also):
        if (folder / name).is_file():
            return np.load(folder / name).astype(np.float32)
    path = cache / name
    done = [0]
    every = max(1, len(records) // 100)  # the bulk engine reports each text: a line per percent is plenty

    def step(n: int) -> None:
        before = done[0]
        done[0] += n
        if progress and (done[0] // every > before // every or done[0] == len(records)):
            progress({"message": f"embedded {done[0]:,} of {len(records):,} code chunks"})

    vectors = encoder.encode([rec["code"] for rec in records], on_batch=step)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors.astype(np.float16))
    return vectors


def train_query_tower(config: TowerConfig, progress: Callable[[dict], None] | None = None) -> Path:
    """Train, interpolate and save the tower into ``config.out``; returns that folder."""
    import torch

    from codeneedle.indexer.encoder import Encoder, tower_fits
    from codeneedle.indexer.pooling import mean_pool_torch
    from codeneedle.training.train import load_model

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    records = read_pairs(Path(config.data), config.max_pairs)
    if len(records) < config.batch_size:
        raise ValueError(f"{config.data}: {len(records)} usable pairs, fewer than one batch of {config.batch_size}")
    encoder = Encoder.load(config.model)
    if encoder.model is not None:
        raise ValueError(f"{encoder.name}: a query tower needs a BERT model folder")
    if config.init and not tower_fits(Path(config.init), encoder.model_id):  # before minutes of embedding
        raise ValueError(f"{config.init}: not a query tower trained against {encoder.model_id}'s code vectors")
    # A continuation finds the code vectors its earlier stage embedded (the cache is keyed by model and code).
    earlier = (Path(config.init) / "cache",) if config.init else ()
    codes = torch.from_numpy(code_vectors(records, encoder, out / "cache", progress, also=earlier))
    key_of = _function_keys(records)
    twins = _twins(key_of)

    tok, model, _folder = load_model(str(encoder.folder), "cpu")
    trained = _trainable(model, config.freeze_layers)
    shared = {name: p.detach().clone() for name, p in trained}  # for WiSE-FT at export
    started_from, skip = _load_init(Path(config.init), trained, config) if config.init else (None, 0)
    opt = torch.optim.AdamW([p for _, p in trained], lr=config.lr, weight_decay=0.01)
    draw = batches(len(records), config.batch_size, config.seed, skip)
    budget = config.minutes * 60
    t0 = time.time()
    step, losses = 0, []
    model.train()
    while (config.steps and step < config.steps) or (not config.steps and time.time() - t0 < budget):
        idx = next(draw)
        batch = tok([records[i]["query"] for i in idx], padding=True, truncation=True, max_length=QUERY_MAX_TOKENS,
                    return_tensors="pt")
        q = mean_pool_torch(model(**batch).last_hidden_state, batch["attention_mask"])
        logits = q @ codes.T / config.temperature
        with torch.no_grad():  # another pair of the same function is not a negative
            for row, i in enumerate(idx):
                others = [j for j in twins.get(key_of[i], ()) if j != i]
                if others:
                    logits[row, others] = -1e4
        done = step / config.steps if config.steps else (time.time() - t0) / budget
        for group in opt.param_groups:  # short warm-up, then linear decay over the budget
            group["lr"] = config.lr * min(1.0, (step + 1) / 50) * max(0.05, 1.0 - done)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if progress:
            progress({"step": step, "steps": config.steps or max(step, 1), "loss": float(np.mean(losses[-20:])),
                      "stage": "query tower"})
            if step % LOG_EVERY == 0:  # a line a log file keeps (a progress bar is only drawn on a terminal)
                progress({"message": f"step {step}: loss {np.mean(losses[-LOG_EVERY:]):.4f}, "
                                     f"{time.time() - t0:.0f} s"})
    tensors = _export(dict(trained), shared, config.alpha)
    _save(out, tensors, {
        "config": asdict(config), "code_model": encoder.model_id, "pairs": len(records), "steps": step,
        "seconds": round(time.time() - t0, 1), "loss_first": _mean(losses[:20]), "loss_last": _mean(losses[-20:]),
        "init": started_from, "data_sha256": file_sha256(Path(config.data)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return out


def batches(n: int, batch_size: int, seed: int, skip: int = 0) -> Iterator[list[int]]:
    """Endless batches of indexes into ``n`` records, reshuffled each pass; ``skip``: batches drawn before."""
    order = list(range(n))
    rng = random.Random(seed)
    rng.shuffle(order)
    per_pass = n // batch_size
    for _ in range(skip // per_pass):
        rng.shuffle(order)
    cursor = skip % per_pass * batch_size
    while True:
        if cursor + batch_size > n:
            rng.shuffle(order)
            cursor = 0
        yield order[cursor : cursor + batch_size]
        cursor += batch_size


def _load_init(tower: Path, trained: list[tuple[str, object]], config: TowerConfig) -> tuple[dict, int]:
    """Start from ``tower``'s weights (a longer run in stages): what it was, for the record, and the batches to skip.

    With the earlier stage's seed and batch size the data comes in the same order, so the run goes on where the
    earlier stages stopped; with others it starts a new order."""
    import torch
    from safetensors.numpy import load_file

    tensors = load_file(str(tower / "model.safetensors"))
    missing = [name for name, _ in trained if name not in tensors]
    if missing:
        raise ValueError(f"{tower}: lacks {len(missing)} of the layers this run trains (e.g. {missing[0]})")
    with torch.no_grad():
        for name, p in trained:
            p.copy_(torch.from_numpy(tensors[name].astype(np.float32)))
    record = json.loads((tower / TOWER_RECORD).read_text())
    prior = record.get("init") or {}
    total = int(record.get("steps") or 0) + int(prior.get("total_steps") or 0)
    earlier = record.get("config") or {}
    same_order = (earlier.get("seed"), earlier.get("batch_size")) == (config.seed, config.batch_size)
    return {"tower": str(tower), "steps": record.get("steps"), "total_steps": total}, total if same_order else 0


def install_tower(tower: Path, model_folder: Path) -> Path:
    """Copy a trained tower into a model folder (``<model>/query``), where the encoder finds it."""
    import shutil

    dest = model_folder / QUERY_TOWER
    dest.mkdir(parents=True, exist_ok=True)
    # The record last: a folder without it is not a tower yet (query_tower_of), so a search never reads half one.
    for name in ("model.safetensors", TOWER_RECORD):
        shutil.copyfile(tower / name, dest / name)  # not the mode: safetensors writes 0600, a shared install reads it
    return dest


def _function_keys(records: list[dict]) -> list[int]:
    keys: dict[tuple, int] = {}
    return [keys.setdefault((r.get("repo"), r.get("path"), r.get("name")), len(keys)) for r in records]


def _twins(key_of: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(key_of):
        groups.setdefault(key, []).append(i)
    return {k: v for k, v in groups.items() if len(v) > 1}


def _trainable(model, freeze_layers: int) -> list[tuple[str, object]]:
    """Freeze all but the transformer layers from ``freeze_layers`` up; the (name, parameter) pairs left to train.

    The pooler is frozen too: mean pooling never reads it."""
    bert = getattr(model, "base_model", model)
    kept = {id(p) for layer in list(bert.encoder.layer)[freeze_layers:] for p in layer.parameters()}
    for p in model.parameters():
        p.requires_grad = id(p) in kept
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def _export(trained: dict, shared: dict, alpha: float) -> dict[str, np.ndarray]:
    """The trained tensors, WiSE-FT interpolated with the shared ones, as float16 numpy arrays."""
    return {name: (alpha * p.detach() + (1 - alpha) * shared[name]).numpy().astype(np.float16)
            for name, p in trained.items()}


def _save(out: Path, tensors: dict[str, np.ndarray], record: dict) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"))
    (out / TOWER_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _mean(xs: list[float]) -> float | None:
    return round(float(np.mean(xs)), 4) if xs else None
