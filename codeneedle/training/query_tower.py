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
from codeneedle.training.records import read_records

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
    alpha: float = 1.0  # WiSE-FT: share of the trained weights in the export; the rest is where the run started
    max_pairs: int = 0
    seed: int = 0
    threads: int = 2
    init: str | None = None  # a tower (trained against the same code vectors) to continue from


def read_pairs(path: Path, max_pairs: int = 0) -> list[dict]:
    """Training pairs (``query``, ``code`` as the index embeds it, and the function's ``repo``/``path``/``name``)."""
    records = [rec for rec in read_records(path) if rec["query"] and rec["code"]]
    if max_pairs and len(records) > max_pairs:
        records = random.Random(0).sample(records, max_pairs)
    return records


def _cache_name(records: list[dict], encoder) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(encoder.model_id.encode())
    for rec in records:
        h.update(rec["code"].encode())
    return f"codes-{h.hexdigest()}.npy"


def code_vectors(records: list[dict], encoder, cache: Path, progress: Callable[[dict], None] | None = None,
                 earlier: Path | None = None) -> np.ndarray:
    """The pairs' code vectors as ``encoder`` embeds them for the index; cached per data and model in ``cache``.

    ``earlier``: a tower this run continues. Its cache is read, never written: the same data is not embedded
    again, and on new data (the earlier pairs and more) only the code it did not embed is."""
    name = _cache_name(records, encoder)
    for folder in (cache, *(_stage_caches(earlier) if earlier else ())):
        if (folder / name).is_file():
            return np.load(folder / name).astype(np.float32)
    known = _earlier_vectors(earlier, encoder) if earlier else {}
    missing = list(dict.fromkeys(rec["code"] for rec in records if rec["code"] not in known))
    done = [0]
    every = max(1, len(missing) // 100)  # the bulk engine reports each text: a line per percent is plenty

    def step(n: int) -> None:
        before = done[0]
        done[0] += n
        if progress and (done[0] // every > before // every or done[0] == len(missing)):
            progress({"message": f"embedded {done[0]:,} of {len(missing):,} code chunks"
                                 + (f" ({len(records) - len(missing):,} from {earlier})" if known else "")})

    if missing:
        known.update(zip(missing, encoder.encode(missing, on_batch=step), strict=True))
    vectors = np.stack([known[rec["code"]] for rec in records]).astype(np.float16)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(cache / name, vectors)
    return vectors.astype(np.float32)


def _earlier_vectors(tower: Path, encoder) -> dict[str, np.ndarray]:
    """An earlier stage's code vectors by code text, when its data file is still where it trained, unchanged."""
    record = json.loads((tower / TOWER_RECORD).read_text())
    config = record.get("config") or {}
    data = Path(config.get("data") or "")
    if not data.is_file() or file_sha256(data) != record.get("data_sha256"):
        return {}
    records = read_pairs(data, int(config.get("max_pairs") or 0))
    name = _cache_name(records, encoder)
    for folder in _stage_caches(tower):
        if (folder / name).is_file():
            vectors = np.load(folder / name)
            return {rec["code"]: vectors[i] for i, rec in enumerate(records)}
    return {}


def _stage_caches(tower: Path) -> list[Path]:
    """The code-vector caches of ``tower`` and the stages before it (a stage on the same data embeds nothing, so
    its vectors lie in the cache of the stage that did)."""
    folders: list[Path] = []
    while tower is not None and tower / "cache" not in folders:
        folders.append(tower / "cache")
        record = tower / TOWER_RECORD
        init = (json.loads(record.read_text()).get("init") or {}) if record.is_file() else {}
        tower = Path(init["tower"]) if init.get("tower") else None
    return folders


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
    earlier = Path(config.init) if config.init else None
    codes = torch.from_numpy(code_vectors(records, encoder, out / "cache", progress, earlier=earlier))
    key_of = _function_keys(records)
    twins = _twins(key_of)

    tok, model, _folder = load_model(str(encoder.folder), "cpu")
    trained = _trainable(model, config.freeze_layers)
    data_sha256 = file_sha256(Path(config.data))
    started_from, skip = _load_init(Path(config.init), trained, config, data_sha256) if config.init else (None, 0)
    start = {name: p.detach().clone() for name, p in trained}  # WiSE-FT's other end: shared layers or earlier stage
    opt = torch.optim.AdamW([p for _, p in trained], lr=config.lr, weight_decay=0.01)
    draw = batches(len(records), config.batch_size, config.seed, skip)
    budget = config.minutes * 60
    t0 = time.monotonic()
    step, losses = 0, []
    model.train()
    while (config.steps and step < config.steps) or (not config.steps and time.monotonic() - t0 < budget):
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
        done = step / config.steps if config.steps else (time.monotonic() - t0) / budget
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
                                     f"{time.monotonic() - t0:.0f} s"})
    tensors = _export(dict(trained), start, config.alpha)
    _save(out, tensors, {
        "config": asdict(config), "code_model": encoder.model_id, "pairs": len(records), "steps": step,
        "seconds": round(time.monotonic() - t0, 1), "loss_first": _mean(losses[:20]), "loss_last": _mean(losses[-20:]),
        "init": started_from, "data_sha256": data_sha256,
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


def _load_init(tower: Path, trained: list[tuple[str, object]], config: TowerConfig,
               data_sha256: str) -> tuple[dict, int]:
    """Start from ``tower``'s weights (a longer run in stages): what it was, for the record, and the batches to skip.

    On the earlier stage's data, with its seed and batch size, the data comes in the same order, so the run goes on
    where the earlier stages stopped; otherwise (new data, other settings) it starts a new order."""
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
    same_order = ((record.get("data_sha256"), earlier.get("seed"), earlier.get("batch_size"))
                  == (data_sha256, config.seed, config.batch_size))
    started = {"tower": str(tower), "steps": record.get("steps"), "total_steps": total, "same_order": same_order}
    return started, total if same_order else 0


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


def _export(trained: dict, start: dict, alpha: float) -> dict[str, np.ndarray]:
    """The trained tensors, WiSE-FT interpolated with those the run started from, as float16 numpy arrays."""
    return {name: (alpha * p.detach() + (1 - alpha) * start[name]).numpy().astype(np.float16)
            for name, p in trained.items()}


def reexport_tower(trained: Path, alpha: float, out: Path) -> Path:
    """WiSE-FT after the fact: ``trained`` (exported unblended, alpha 1) interpolated with the weights its run
    started from (the earlier stage it continued, or the encoder's shared layers), saved as a tower in ``out``.

    A time-budgeted CPU stage cannot be rerun to try another alpha; its end and start weights are all it takes."""
    import torch
    from safetensors.numpy import load_file

    record = json.loads((trained / TOWER_RECORD).read_text())
    if (record.get("config") or {}).get("alpha", 1.0) != 1.0:
        raise ValueError(f"{trained}: already blended (alpha {record['config']['alpha']}); re-export the run's own "
                         "unblended tower")
    end = load_file(str(trained / "model.safetensors"))
    init = (record.get("init") or {}).get("tower")
    if init:
        start = load_file(str(Path(init) / "model.safetensors"))
    else:
        from codeneedle.indexer.encoder import Encoder
        from codeneedle.training.train import load_model

        _tok, model, _folder = load_model(str(Encoder.load(record["config"].get("model")).folder), "cpu")
        start = {name: p.detach().numpy() for name, p in model.named_parameters() if name in end}
    if set(start) != set(end):
        raise ValueError(f"{trained}: the weights its run started from ({init or 'shared layers'}) hold other layers")
    ends = {name: torch.from_numpy(t.astype(np.float32)) for name, t in end.items()}
    starts = {name: torch.from_numpy(np.asarray(t, dtype=np.float32)) for name, t in start.items()}
    config = {**record["config"], "alpha": alpha}
    _save(Path(out), _export(ends, starts, alpha), {**record, "config": config, "reexported_from": str(trained),
                                                     "created": datetime.now(UTC).isoformat(timespec="seconds")})
    return Path(out)


def _save(out: Path, tensors: dict[str, np.ndarray], record: dict) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"))
    (out / TOWER_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _mean(xs: list[float]) -> float | None:
    return round(float(np.mean(xs)), 4) if xs else None
