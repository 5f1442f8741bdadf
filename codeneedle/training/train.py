"""The fine-tuning loop: AdamW + linear warm-up/decay, gradient accumulation, curriculum stages, mined
negatives, checkpoints that carry their full config, resume; CPU or CUDA.

Full fine-tuning, not LoRA: on CPU LoRA costs the same step time (the frozen base still runs forward and
backward through every layer) and the trial in shared/notes/models.md found full fine-tuning better at equal
steps (0.646 vs 0.637 MRR@10); fp16 export keeps what ships at ~45 MB.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from codeneedle.errors import NeedleError
from codeneedle.indexer.pooling import mean_pool_torch
from codeneedle.training.curriculum import CURRICULA, PairStream, Stage, make_batches, stage_steps
from codeneedle.training.losses import combined_loss
from codeneedle.training.records import (
    TOKENS_SUFFIX,
    NegativeMiner,
    TokenSet,
    duplicate_mask,
    load_tokens,
    pad,
    read_records,
    tokenize_records,
)

Progress = Callable[[dict], None]


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint so a run can be resumed or reproduced."""

    train_data: str  # JSONL from scripts/build_training_set.py (query, code, repo, ...)
    out_dir: str
    base_model: str = "minilm"  # a name codeneedle.indexer.models resolves, or a model folder
    steps: int = 300  # optimizer steps
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 3e-5
    warmup: float = 0.1  # fraction of steps
    weight_decay: float = 0.01
    loss: str = "infonce"  # infonce | triplet | both
    temperature: float = 0.05
    margin: float = 0.3
    triplet_weight: float = 0.5
    curriculum: str = "staged"  # a key of CURRICULA
    negatives_per_batch: int = 8  # mined negatives added to each micro-batch (shared by all its queries)
    code_max_tokens: int = 256
    query_max_tokens: int = 64
    freeze_layers: int = 0  # embeddings and the first N transformer layers stay fixed (a cheaper CPU step)
    max_pairs: int = 0  # use only the first N training records (0: all)
    replay_data: str = ""  # optional second JSONL mixed in (per-repo adaptation replays the general set)
    replay_fraction: float = 0.0
    seed: int = 13
    threads: int = 1  # CPU threads (this machine shares 2 cores)
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    max_time_s: float = 0.0  # stop early (and save) after this long awake (sleep does not count); 0: no limit
    time_schedule: bool = False  # LR decay and stage switches follow max(step, time) progress (busy CPUs)
    precision: str = "fp32"  # fp32 | bf16 (autocast: the GPU recipe; the loss itself stays fp32)
    tf32: bool = True  # let CUDA matmuls use TF32 (no effect on CPU)
    log_every: int = 0  # read the loss back every N steps (0: 1 on CPU, 25 on CUDA, where each read is a sync)
    note: str = ""

    def __post_init__(self) -> None:
        # A recipe (flags or a --config file) naming what does not exist fails here, in one line, rather than as
        # a traceback once the model is loaded and the run has started.
        for name, allowed in (("curriculum", tuple(CURRICULA)), ("loss", ("infonce", "triplet", "both"))):
            if getattr(self, name) not in allowed:
                raise NeedleError(f"{name} {getattr(self, name)!r}: one of {', '.join(allowed)}")
        if self.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", str(self.device)):
            raise NeedleError(f"device {self.device!r}: auto, cpu or cuda (cuda:N for one of several GPUs)")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainState:
    """Where a run is: steps done, loss history, wall time spent."""

    step: int = 0
    elapsed_s: float = 0.0
    losses: list[float] = field(default_factory=list)
    stage_log: list[str] = field(default_factory=list)
    stage_index: int = 0  # which curriculum stage, and how many of its micro-batches are done
    stage_pos: int = 0
    mined: int = 0  # mined negatives so far
    ended: str = ""  # how the last run ended: "steps" (all of them), "time" (its budget) or "signal" (stopped)


MINE_EVERY = 20  # optimizer steps between two rounds of negative mining


def _fraction(config: TrainConfig, state: TrainState) -> float:
    """How far the run is, 0..1: by steps, or by wall time when that is further and the schedule follows it."""
    f = state.step / max(1, config.steps)
    if config.time_schedule and config.max_time_s:
        f = max(f, state.elapsed_s / config.max_time_s)
    return min(1.0, f)


def _lr_factor(fraction: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of the run, then linear decay to 0."""
    if warmup > 0 and fraction < warmup:
        return fraction / warmup
    return max(0.0, (1.0 - fraction) / max(1e-9, 1.0 - warmup))


# -------------------------------------------------------------------------------------------- model helpers


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NeedleError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA device; use cpu or auto")
    return name


def load_model(base: str, device: str):
    """(tokenizer, AutoModel) from a model name or folder, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from codeneedle.indexer.models import resolve_model

    _, folder = resolve_model(base)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)

    model = fp32_model(folder).to(device)
    return tok, model, folder


def freeze_lower_layers(model, layers: int) -> None:
    """Fix the embeddings and the first ``layers`` transformer layers (0: train everything).

    The backward pass then stops below the first trained layer, so a CPU step costs less; the lower layers of a
    pretrained encoder hold general token features that a small fine-tuning set changes least."""
    if layers <= 0:
        return
    bert = getattr(model, "base_model", model)
    blocks = list(bert.encoder.layer)
    if layers > len(blocks):
        raise ValueError(f"freeze_layers={layers}, but the model has {len(blocks)} layers")
    for module in (bert.embeddings, *blocks[:layers]):
        for p in module.parameters():
            p.requires_grad_(False)


def fp32_model(folder: Path):
    """``AutoModel`` in fp32 from a local folder; transformers before 4.56 (a GPU machine's may be older)
    call the argument ``torch_dtype``."""
    import torch
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except TypeError:
        return AutoModel.from_pretrained(str(folder), local_files_only=True, torch_dtype=torch.float32)


def embed(model, tokenizer, texts: list[str], max_tokens: int, device: str):
    """Mean-pooled, L2-normalised embeddings with gradients (the same pooling as the index's Encoder)."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt").to(device)
    return mean_pool_torch(model(**enc).last_hidden_state, enc["attention_mask"])


def encode_numpy(model, tokenizer, texts: list[str], max_tokens: int, device: str, batch: int = 64) -> np.ndarray:
    """Embeddings without gradients, length-sorted batches, input order kept."""
    import torch

    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            out[idx] = embed(model, tokenizer, [texts[i] for i in idx], max_tokens, device).float().cpu().numpy()
    model.train(was_training)
    return out


def embed_ids(model, arrays, device: str, max_tokens: int = 0):
    """Like :func:`embed`, from token id arrays (records are tokenized once, not every step)."""
    ids, mask = pad(arrays, max_tokens)
    non_blocking = device.startswith("cuda")
    ids, mask = ids.to(device, non_blocking=non_blocking), mask.to(device, non_blocking=non_blocking)
    return mean_pool_torch(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)


def _encoder_for_mining(model, cfg: TrainConfig, device: str, autocast):
    """``encode(arrays, kind)`` -> unit vectors without gradients, length-sorted batches (model-hard mining)."""
    import torch

    def encode(arrays, kind: str) -> np.ndarray:
        limit = cfg.code_max_tokens // 2 if kind == "code" else 0  # half-length code ranks neighbours well enough
        out = np.zeros((len(arrays), model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(arrays)), key=lambda i: len(arrays[i]))
        was_training = model.training
        model.eval()
        with torch.inference_mode(), autocast():
            for s in range(0, len(order), 128):
                idx = order[s:s + 128]
                out[idx] = embed_ids(model, [arrays[i] for i in idx], device, limit).cpu().numpy()
        model.train(was_training)
        return out

    return encode


class _StopSignal:
    """SIGTERM/SIGINT end the run cleanly at the next step: a checkpoint is written and the run can resume."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict = {}

    def __enter__(self) -> _StopSignal:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.stop = True

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


# ----------------------------------------------------------------------------------------------- the loop


def load_records(config: TrainConfig) -> list[dict]:
    """Training records, optionally capped and mixed with a replay sample (seeded)."""
    recs = read_records(Path(config.train_data))
    if config.max_pairs:
        recs = recs[: config.max_pairs]
    if config.replay_data and config.replay_fraction > 0:
        replay = read_records(Path(config.replay_data))
        rng = random.Random(config.seed)
        n = min(len(replay), int(len(recs) * config.replay_fraction / max(1e-9, 1 - config.replay_fraction)))
        recs = recs + rng.sample(replay, n)
    if not recs:
        raise NeedleError(f"no training pairs in {config.train_data}")
    return recs


def load_tokenset(config: TrainConfig, tok) -> TokenSet:
    """The run's records as token ids: a ``--pack`` bundle's ``.tokens.xz`` as it is, or JSONL tokenized once."""
    if config.train_data.endswith(TOKENS_SUFFIX):
        return load_tokens(Path(config.train_data))
    return tokenize_records(load_records(config), tok, config.query_max_tokens, config.code_max_tokens)


def _mine(stage: Stage, batches: list[list[int]], miner: NegativeMiner, cfg: TrainConfig, encode,
          seed: int) -> dict[int, int]:
    """One mined negative for up to ``negatives_per_batch`` queries of each batch: {query record: negative}."""
    if stage.negatives == "none" or cfg.negatives_per_batch <= 0:
        return {}
    rng = random.Random(seed)
    chosen = sorted({i for b in batches for i in rng.sample(b, min(len(b), cfg.negatives_per_batch))})
    if not chosen:
        return {}
    if stage.negatives == "random":
        return miner.random(chosen, seed)
    if stage.negatives == "bm25":
        return miner.bm25(chosen)
    return miner.model(chosen, encode, seed)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest ``checkpoints/step-N`` folder of a run, if any."""
    ckpts = _checkpoints(out_dir)
    return ckpts[-1] if ckpts else None


def _checkpoints(out_dir: Path) -> list[Path]:
    # a run killed while saving leaves ``step-N.tmp`` behind: never resume from (or count) a half-written one
    found = [p for p in (out_dir / "checkpoints").glob("step-*") if p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(path: Path, model, tok, optimizer, scheduler, config: TrainConfig, state: TrainState,
                    negs: dict[int, int] | None = None) -> None:
    """Model + tokenizer (HF layout), optimizer/scheduler/RNG state and the full config, written atomically."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(), "negs": negs or {}},
               tmp / "trainer.pt")
    (tmp / "train_state.json").write_text(json.dumps({"config": asdict(config), "state": asdict(state)}, indent=1))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _prune(out_dir: Path, keep: int) -> None:
    ckpts = _checkpoints(out_dir)
    for old in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def train_model(config: TrainConfig, progress: Progress | None = None, resume: bool = True,
                keep: tuple[str, ...] = ("max_time_s",)) -> Path:
    """Fine-tune the encoder; returns the folder of the final model (HF layout, fp32, ``<out_dir>/model``).

    With ``resume`` a run continues from the newest checkpoint in ``out_dir``: its stored config wins over
    ``config`` except for the fields in ``keep``. ``progress`` receives dicts: ``{"step", "steps", "loss", "stage",
    "elapsed_s", "lr", "fraction", "max_time_s"}``.
    """
    import torch

    out_dir = Path(config.out_dir)
    ckpt = latest_checkpoint(out_dir) if resume else None
    state = TrainState()
    if ckpt is not None:
        saved = json.loads((ckpt / "train_state.json").read_text())
        config = TrainConfig.from_dict({**saved["config"], **{k: getattr(config, k) for k in keep}})
        state = TrainState(**{**saved["state"], "ended": ""})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=1))
    device = pick_device(config.device)
    if device == "cpu":
        torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    random.seed(config.seed)

    if device.startswith("cuda") and config.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tok, model, _ = load_model(str(ckpt) if ckpt else config.base_model, device)
    model.train()
    freeze_lower_layers(model, config.freeze_layers)
    ts = load_tokenset(config, tok)
    miner = NegativeMiner(ts)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [
        {"params": [p for n, p in trainable if not any(k in n for k in no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=config.lr, fused=device.startswith("cuda") or None)
    progress_box = [_fraction(config, state)]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: _lr_factor(progress_box[0], config.warmup))
    negs: dict[int, int] = {}
    if ckpt is not None:
        blob = torch.load(ckpt / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["torch_rng"])
        random.setstate(blob["py_rng"])
        negs = {int(k): int(v) for k, v in blob.get("negs", {}).items()}  # the mining round in progress

    use_bf16 = config.precision == "bf16"
    if config.precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, not {config.precision!r}")

    def autocast():
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                              enabled=use_bf16)

    encode = _encoder_for_mining(model, config, device, autocast)
    log_every = config.log_every or (25 if device.startswith("cuda") else 1)
    pending: list = []  # per-step loss tensors not yet read back (each read waits for the GPU)

    def flush(stage_name: str) -> None:
        if not pending:
            return
        values = [round(v, 5) for v in torch.stack(pending).tolist()]
        pending.clear()
        state.losses.extend(values)
        if progress:
            # "fraction": how far the run is, by steps or by its clock, whichever ends it first
            progress({"step": state.step, "steps": config.steps, "loss": values[-1], "stage": stage_name,
                      "elapsed_s": state.elapsed_s, "lr": scheduler.get_last_lr()[0],
                      "fraction": _fraction(config, state), "max_time_s": config.max_time_s})

    # The whole batch plan is a pure function of (records, config): a resumed run replays it and skips ahead.
    stages = CURRICULA[config.curriculum]
    per_stage = stage_steps(stages, config.steps)
    ends = [sum(per_stage[: i + 1]) / max(1, config.steps) for i in range(len(stages))]
    stream = PairStream(len(ts), config.seed)
    lengths = [len(c) for c in ts.c]
    # The monotonic clock: a laptop asleep for an hour moved the wall clock on by an hour, and the run ended by
    # "time" as it woke (its LR schedule and stages follow the clock too); an NTP step back made elapsed negative.
    t_start = time.monotonic() - state.elapsed_s
    finished = False
    round_len = MINE_EVERY * config.grad_accum
    with _StopSignal() as stopper:
        for si, (stage, n_steps) in enumerate(zip(stages, per_stage, strict=True)):
            batches = make_batches(stream, n_steps * config.grad_accum, config.batch_size, stage.batching, ts.repo,
                                   lengths, config.seed + si)
            if si < state.stage_index or finished:
                continue
            if si > state.stage_index:
                state.stage_index, state.stage_pos = si, 0
                negs = {}
            state.stage_log.append(f"stage {stage.name} from step {state.step}")
            for mi in range(state.stage_pos, len(batches), config.grad_accum):
                if si < len(stages) - 1 and _fraction(config, state) >= ends[si]:
                    break  # the clock moved this run on to its next stage
                if mi % round_len == 0:  # mine lazily, with the model as it is now, on a fixed schedule
                    negs = _mine(stage, batches[mi:mi + round_len], miner, config, encode,
                                 config.seed + 1000 * si + mi)
                    state.mined += len(negs)
                group = batches[mi:mi + config.grad_accum]
                total = None
                for idx in group:
                    members = set(idx)
                    neg_arrays, owners = [], []
                    for k, i in enumerate(idx):
                        if i in negs and negs[i] not in members:
                            neg_arrays.append(ts.c[negs[i]])
                            owners.append(k)
                        for arr in ts.extra_negs.get(i, ())[:2]:  # what the user was shown and passed over
                            neg_arrays.append(arr)
                            owners.append(k)
                    with autocast():
                        q = embed_ids(model, [ts.q[i] for i in idx], device)
                        c = embed_ids(model, [ts.c[i] for i in idx], device)
                        neg = embed_ids(model, neg_arrays, device) if neg_arrays else None
                    owner = torch.tensor(owners, device=device) if owners else None
                    if owner is not None and config.loss != "infonce" and len(set(owners)) != len(owners):
                        keep = [owners.index(k) for k in sorted(set(owners))]  # triplet: one negative per query
                        neg, owner = neg[keep], owner[keep]
                    loss = combined_loss(q, c, neg, config.loss, config.temperature, config.margin,
                                         config.triplet_weight, duplicate_mask(ts, idx).to(device), owner)
                    (loss / len(group)).backward()
                    part = loss.detach() / len(group)
                    total = part if total is None else total + part
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                state.step += 1
                state.stage_pos = mi + config.grad_accum
                pending.append(total)
                state.elapsed_s = time.monotonic() - t_start
                progress_box[0] = _fraction(config, state)
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                out_of_time = bool(config.max_time_s and state.elapsed_s >= config.max_time_s)
                done = out_of_time or stopper.stop or state.step >= config.steps
                if state.step % log_every == 0 or done or state.step % config.checkpoint_every == 0:
                    flush(stage.name)
                if state.step % config.checkpoint_every == 0 or out_of_time or stopper.stop:
                    save_checkpoint(out_dir / "checkpoints" / f"step-{state.step}", model, tok, optimizer,
                                    scheduler, config, state, negs)
                    _prune(out_dir, config.keep_checkpoints)
                if done:
                    state.ended = "signal" if stopper.stop else "time" if out_of_time else "steps"
                    finished = True
                    break
    flush(stages[min(state.stage_index, len(stages) - 1)].name)
    final = out_dir / "model"
    shutil.rmtree(final, ignore_errors=True)
    model.save_pretrained(str(final))
    tok.save_pretrained(str(final))
    (final / "train_state.json").write_text(json.dumps({"config": asdict(config), "state": asdict(state)}, indent=1))
    return final


MODEL_NOTICE = """# {name}

A code-search fine-tune of all-MiniLM-L6-v2 (sentence-transformers; 6 layers, 384 dims, mean pooling),
trained by Needle on (doc comment -> code) pairs mined from open-source packages.

## Licence
The base weights, all-MiniLM-L6-v2 by the sentence-transformers authors, are distributed under the
Apache License 2.0 (http://www.apache.org/licenses/LICENSE-2.0); these fine-tuned weights are a derivative
work distributed under the same licence. Changes: further training on code-search pairs, saved as float16.

## How to retrain
    python scripts/build_training_set.py fetch --pinned <this folder>/training_manifest.json
    python scripts/build_training_set.py mine
    python -m codeneedle.training.run train --config <the "config" object of train_state.json, saved as a file>
    python -m codeneedle.training.run interpolate --tuned <run>/model --alpha <alpha> --dest <run>-wise
    python -m codeneedle.training.run export --model <run>-wise --dest codeneedle/models/{name} \\
        --replay .cache/corpus/pairs/train.jsonl --manifest .cache/corpus/manifest.json
"""


def export_model(model_dir: Path, dest: Path, fp16: bool = True, readme_extra: str = "",
                 replay: Path | None = None, replay_size: int = 2000, manifest: Path | None = None) -> Path:
    """Write a shippable copy: fp16 safetensors + tokenizer + config + sentence-transformers pooling files, a
    README that keeps all-MiniLM-L6-v2's Apache-2.0 notice, and (from ``replay``, a training JSONL) a small
    gzipped replay sample for per-repository adaptation. Returns ``dest``."""
    from transformers import AutoTokenizer

    model = fp32_model(Path(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if fp16:
        model = model.half()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    write_pooling_files(tmp, [Path(model_dir)] + _base_folders(Path(model_dir)), model.config.hidden_size)
    state = model_dir / "train_state.json"
    if state.is_file():
        shutil.copy2(state, tmp / "train_state.json")
    if manifest is not None and manifest.is_file():
        shutil.copy2(manifest, tmp / "training_manifest.json")
    (tmp / "README.md").write_text(MODEL_NOTICE.format(name=dest.name) + ("\n" + readme_extra if readme_extra else ""))
    if replay is not None:
        import gzip

        from codeneedle.training.mining import load_jsonl

        recs = load_jsonl(replay)
        sample = random.Random(0).sample(recs, min(replay_size, len(recs)))
        keep = ("repo", "language", "path", "name", "query", "query_style", "code_variant", "code", "code_plain",
                "doc_query")
        with gzip.open(tmp / "replay.jsonl.gz", "wt") as fh:
            for r in sample:
                fh.write(json.dumps({k: r[k] for k in keep if k in r}) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


ST_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def _base_folders(model_dir: Path) -> list[Path]:
    """Where a model came from, as folders that exist: its recorded ``base_model`` (a run's train_state)."""
    state = model_dir / "train_state.json"
    if not state.is_file():
        return []
    saved = json.loads(state.read_text())
    base = (saved.get("interpolation") or {}).get("base") or saved.get("config", {}).get("base_model")
    try:
        from codeneedle.indexer.models import resolve_model

        return [resolve_model(base)[1]] if base else []
    except Exception:  # noqa: BLE001 - a base that cannot be found only means the standard files are written
        return []


def write_pooling_files(dest: Path, sources: list[Path], hidden: int) -> None:
    """sentence-transformers' module files (mean pooling, normalisation) into ``dest``: copied from the first
    source folder that has them, else written out (they are fixed for this architecture), so exporting never
    needs the base model's wheel."""
    names = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
    src = next((d for d in sources if (d / "modules.json").is_file() and (d / "1_Pooling").is_dir()), None)
    if src is not None:
        for name in names:
            if (src / name).is_file():
                shutil.copy2(src / name, dest / name)
        shutil.copytree(src / "1_Pooling", dest / "1_Pooling", dirs_exist_ok=True)
        if (src / "2_Normalize").is_dir():
            shutil.copytree(src / "2_Normalize", dest / "2_Normalize", dirs_exist_ok=True)
        return
    (dest / "modules.json").write_text(json.dumps(ST_MODULES, indent=2))
    (dest / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))
    (dest / "1_Pooling").mkdir(exist_ok=True)
    (dest / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (dest / "2_Normalize").mkdir(exist_ok=True)


def interpolate_models(base: str | None, tuned: Path, alpha: float, dest: Path) -> Path:
    """Weight-space interpolation ``alpha * tuned + (1 - alpha) * base`` (WiSE-FT): keeps most of a fine-tune's
    in-domain gain while recovering the base model's robustness on other query styles. ``base`` None: the
    ``base_model`` the tuned run recorded (a name or a folder). Returns ``dest``."""
    import torch

    if base is None:
        state = Path(tuned) / "train_state.json"
        base = json.loads(state.read_text())["config"]["base_model"] if state.is_file() else "minilm"
    _, base_model, _ = load_model(base, "cpu")
    tok, model, _ = load_model(str(tuned), "cpu")
    base_state = base_model.state_dict()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(alpha * tensor + (1 - alpha) * base_state[name])
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    state = Path(tuned) / "train_state.json"
    if state.is_file():
        saved = json.loads(state.read_text())
        saved["interpolation"] = {"base": base, "tuned": str(tuned), "alpha": alpha}
        (dest / "train_state.json").write_text(json.dumps(saved, indent=1))
    return dest
