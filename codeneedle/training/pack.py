"""A self-contained GPU training bundle (``needle train --data P --pack DIR``) and the way back (``--unpack``).

The GPU machine this is made for takes at most 64 MiB of files, downloads nothing, and has python3 with torch,
transformers, tokenizers and safetensors. So the bundle carries: the few modules training needs (no indexer,
no tree-sitter), the base weights in fp16 (45 MB instead of 90), the pairs as token ids (uint16, byte planes
split, xz), a ``config.json`` with the GPU recipe and a ``run.sh``. On the GPU, ``run.sh OUT`` trains with bf16
autocast and large batches until its time budget, interpolates (WiSE-FT) with the base, exports the shipped
format and cuts ``model.safetensors`` into pieces under 16 MiB for the trip back; ``--unpack OUT`` checks and
joins them.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codeneedle.training.train import TrainConfig

BUNDLE_LIMIT = 60 * 1024 * 1024
PIECE_BYTES = 15 * 1024 * 1024  # under the 16 MiB a file may have on the way back
CODE_FILES = ("codeneedle/__init__.py", "codeneedle/errors.py", "codeneedle/indexer/__init__.py",
              "codeneedle/indexer/models.py", "codeneedle/indexer/pooling.py", "codeneedle/training/__init__.py",
              "codeneedle/training/train.py",
              "codeneedle/training/curriculum.py", "codeneedle/training/losses.py",
              "codeneedle/training/negatives.py", "codeneedle/training/records.py", "codeneedle/training/pack.py")
BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
# The GPU recipe: the shipped one with bf16, batch 256 (more in-batch negatives) and a clock; steps is an upper
# bound the time schedule reaches first (2,267 steps of batch 128 took 330 s in fp32 on the H200).
GPU_RECIPE = {"device": "cuda", "precision": "bf16", "batch_size": 256, "steps": 4000, "time_schedule": True,
              "checkpoint_every": 500, "keep_checkpoints": 1, "log_every": 50, "threads": 4}

RUN_SH = """#!/bin/sh
# Train Needle's encoder from this bundle on a CUDA GPU: ./run.sh OUT  (OUT gets the model, in pieces < 16 MiB).
# Environment: NEEDLE_DEVICE (default cuda), NEEDLE_BUDGET_S (training seconds; default from config.json),
# NEEDLE_STEPS (cap on steps). Needs python3 with torch, transformers, tokenizers, safetensors; no network.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/out}
mkdir -p "$OUT"
PYTHONPATH="$HERE/code" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \\
  exec python3 -m codeneedle.training.pack "$HERE" "$OUT"
"""


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _fp16_base(src: Path, dest: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(src / "model.safetensors"))
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
              str(dest / "model.safetensors"), metadata={"format": "pt"})
    del torch
    for name in BASE_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)


def make_bundle(recipe: dict, dest: Path, budget_s: float = 540, wise_alpha: float = 0.5,
                gpu_overrides: dict | None = None, progress=None) -> dict:
    """Write the bundle for ``recipe`` (a TrainConfig dict whose ``train_data`` is a pairs JSONL) into
    ``dest``; ``gpu_overrides`` win over the GPU recipe. Returns its summary. Raises ValueError when it would
    exceed 60 MiB."""
    from codeneedle.indexer.models import resolve_model
    from codeneedle.training.train import TrainConfig, load_records

    say = progress or (lambda m: None)
    config = TrainConfig.from_dict(recipe)
    _, base = resolve_model(config.base_model)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest} exists and is not an empty folder: give a new --pack DIR")
    # Read first: bad pairs fail before 44 MB are written.
    recs = load_records(config)
    existed = dest.exists()
    try:
        return _write_bundle(recipe, config, base, recs, dest, budget_s, wise_alpha, gpu_overrides, say)
    except BaseException:
        # A half-written bundle would not run, and its folder would refuse the retry as "not empty".
        shutil.rmtree(dest, ignore_errors=True)
        if existed:
            dest.mkdir()
        raise


def _write_bundle(recipe: dict, config: TrainConfig, base: Path, recs: list[dict], dest: Path, budget_s: float,
                  wise_alpha: float, gpu_overrides: dict | None, say: Callable[[str], None]) -> dict:
    from transformers import AutoTokenizer

    from codeneedle.training.records import save_tokens, subset, tokenize_records
    from codeneedle.training.train import write_pooling_files

    (dest / "base").mkdir(parents=True, exist_ok=True)
    say(f"base weights (fp16) from {base}")
    _fp16_base(base, dest / "base")
    write_pooling_files(dest / "base", [base], 384)
    tok = AutoTokenizer.from_pretrained(str(dest / "base"), local_files_only=True)
    say(f"tokenizing {len(recs)} pairs")
    ts = tokenize_records(recs, tok, config.query_max_tokens, config.code_max_tokens)
    root = Path(__file__).resolve().parents[2]
    for rel in CODE_FILES:
        (dest / "code" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / "code" / rel)
    total = len(ts)
    data = dest / "pairs.tokens.xz"
    budget = BUNDLE_LIMIT - _size(dest) - 64 * 1024  # config.json and run.sh
    save_tokens(ts, data, preset=9)
    for _ in range(4):
        # Measured on 1,162 stdlib pairs: 161 bytes a pair (152 tokens) after xz, so all 157,927 pairs would
        # take ~24 MiB beside the 43 MiB fp16 base (xz gains only 10 % on fp16 weights, at minutes of CPU):
        # a sample that fits is shipped and the bundle says how many of how many.
        if data.stat().st_size <= budget:
            break
        keep = int(len(ts) * budget / data.stat().st_size * 0.98)
        say(f"{len(ts)} pairs take {data.stat().st_size / 2**20:.1f} MiB; keeping a sample of {keep} to fit")
        ts = subset(ts, sorted(random.Random(config.seed).sample(range(len(ts)), keep)))
        save_tokens(ts, data, preset=9)
    gpu = {**recipe, **GPU_RECIPE, "max_time_s": budget_s, "train_data": "pairs.tokens.xz", "base_model": "base",
           "out_dir": "", "replay_data": "", "replay_fraction": 0.0, "max_pairs": 0,
           "note": f"GPU bundle of {Path(config.train_data).name} ({len(ts)} pairs)", **(gpu_overrides or {})}
    (dest / "config.json").write_text(json.dumps({"train": gpu, "wise_alpha": wise_alpha,
                                                  "data_sha256": file_sha256(dest / "pairs.tokens.xz"),
                                                  "pairs": len(ts), "pairs_mined": total}, indent=1))
    (dest / "run.sh").write_text(RUN_SH)
    (dest / "run.sh").chmod(0o755)
    size = _size(dest)
    if size > BUNDLE_LIMIT:
        raise ValueError(f"the bundle is {size / 2**20:.1f} MiB, over 60 MiB: use --max-pairs or --code-max-tokens")
    return {"bundle": str(dest), "pairs": len(ts), "pairs_mined": total, "mib": round(size / 2**20, 1),
            "data_mib": round((dest / "pairs.tokens.xz").stat().st_size / 2**20, 1)}


# ------------------------------------------------------------------------------------- on the GPU machine


def split_file(path: Path, piece_bytes: int = PIECE_BYTES) -> dict:
    """Cut ``path`` into ``<name>.part-NNN`` files and write ``<name>.pieces.json`` (sizes, sha256); the
    original is removed."""
    parts = []
    with open(path, "rb") as fh:
        for n, block in enumerate(iter(lambda: fh.read(piece_bytes), b"")):
            part = path.with_name(f"{path.name}.part-{n:03d}")
            part.write_bytes(block)
            parts.append({"file": part.name, "bytes": len(block), "sha256": hashlib.sha256(block).hexdigest()})
    manifest = {"file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path), "parts": parts}
    path.unlink()
    path.with_name(path.name + ".pieces.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def join_pieces(folder: Path) -> list[Path]:
    """Reassemble every ``*.pieces.json`` in ``folder``, checking each piece and the whole; removes the pieces.
    Raises ValueError on a missing or damaged piece."""
    joined = []
    for manifest_path in sorted(folder.glob("*.pieces.json")):
        m = json.loads(manifest_path.read_text())
        target = folder / m["file"]
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as out:
            for part in m["parts"]:
                p = folder / part["file"]
                if not p.is_file():
                    raise ValueError(f"missing piece {p.name} of {m['file']}")
                block = p.read_bytes()
                if hashlib.sha256(block).hexdigest() != part["sha256"]:
                    raise ValueError(f"piece {p.name} of {m['file']} is damaged (checksum differs)")
                out.write(block)
        if file_sha256(tmp) != m["sha256"]:
            tmp.unlink()
            raise ValueError(f"{m['file']} reassembled with the wrong checksum")
        tmp.rename(target)
        for part in m["parts"]:
            (folder / part["file"]).unlink()
        manifest_path.unlink()
        joined.append(target)
    return joined


def run_bundle(bundle: Path, out: Path, device: str | None = None, budget_s: float | None = None,
               steps: int | None = None) -> Path:
    """Train, interpolate, export and split, as ``run.sh`` does; returns ``out/model``."""
    import torch

    from codeneedle.training.train import TrainConfig, export_model, interpolate_models, train_model

    spec = json.loads((bundle / "config.json").read_text())
    work = bundle / "work"
    recipe = {**spec["train"], "train_data": str(bundle / "pairs.tokens.xz"), "base_model": str(bundle / "base"),
              "out_dir": str(work / "run")}
    if device:
        recipe["device"] = device
    if budget_s is not None:
        recipe["max_time_s"] = budget_s
    if steps:
        recipe["steps"] = steps
    if recipe["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("run.sh: no CUDA device here (set NEEDLE_DEVICE=cpu to try it on a CPU)")
    config = TrainConfig.from_dict(recipe)
    t0 = time.monotonic()

    def progress(p: dict) -> None:
        _say(f"step {p['step']}/{p['steps']} [{p['stage']}] loss {p['loss']:.4f} {p['elapsed_s']:.0f}s")

    tuned = train_model(config, progress=progress)
    train_s = time.monotonic() - t0
    wise = interpolate_models(str(bundle / "base"), tuned, spec["wise_alpha"], work / "wise")
    model = export_model(wise, out / "model")
    state = json.loads((tuned / "train_state.json").read_text())["state"]
    record = {"config": {k: v for k, v in recipe.items() if k not in ("train_data", "out_dir")},
              "data_sha256": spec["data_sha256"], "pairs": spec["pairs"], "wise_alpha": spec["wise_alpha"],
              "device": torch.cuda.get_device_name(0) if config.device.startswith("cuda") else "cpu",
              "torch": torch.__version__, "train_seconds": round(train_s, 1), "steps": state["step"],
              "pairs_seen": state["step"] * config.batch_size, "stage_log": state["stage_log"],
              "first_loss": state["losses"][0] if state["losses"] else None,
              "last_loss": state["losses"][-1] if state["losses"] else None,
              "total_seconds": round(time.monotonic() - t0, 1)}
    (model / "training_run.json").write_text(json.dumps(record, indent=1))
    for f in list(model.rglob("*")):
        if f.is_file() and f.stat().st_size >= PIECE_BYTES:
            split_file(f)
    _say(json.dumps({k: record[k] for k in ("device", "steps", "pairs_seen", "train_seconds", "last_loss")}))
    return model


# What run.sh's model folder must hold once joined: the encoder cannot load without the first three, and the
# run record is written last, so a folder without it was cut short on the way back.
UNPACKED_FILES = ("config.json", "tokenizer.json", "model.safetensors", "training_run.json")


def unpack(src: Path, dest: Path) -> Path:
    """Bring a bundle's model home: ``src`` is run.sh's OUT (or its ``model`` folder); the joined, checked
    model folder is written to ``dest``. Raises ValueError on a missing or damaged file, or a ``dest`` that
    holds anything but a model unpacked before (which is replaced)."""
    folder = src / "model" if (src / "model").is_dir() else src
    if not any(folder.glob("*.pieces.json")) and not (folder / "model.safetensors").is_file():
        raise ValueError(f"no model pieces in {folder} (give the OUT folder run.sh wrote)")
    dest = dest.resolve()  # `--out .` has no name of its own to put ".tmp" after
    if dest.exists() and not (dest / "training_run.json").is_file() and (not dest.is_dir() or any(dest.iterdir())):
        # Only an earlier unpack is replaced: any other folder may hold the user's files.
        raise ValueError(f"{dest} exists and holds no unpacked model: give an --out that does not exist yet")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(folder, tmp)
    try:
        join_pieces(tmp)
        missing = [name for name in UNPACKED_FILES if not (tmp / name).is_file()]
        if missing:
            raise ValueError(f"{folder} is incomplete: no {', '.join(missing)} (copy all of run.sh's OUT back)")
    except ValueError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def main(argv: list[str] | None = None) -> None:
    """``python -m codeneedle.training.pack BUNDLE OUT`` (what run.sh calls)."""
    import os

    args = sys.argv[1:] if argv is None else argv
    bundle, out = Path(args[0]), Path(args[1])
    budget = os.environ.get("NEEDLE_BUDGET_S")
    steps = os.environ.get("NEEDLE_STEPS")
    run_bundle(bundle, out, os.environ.get("NEEDLE_DEVICE") or None, float(budget) if budget else None,
               int(steps) if steps else None)


if __name__ == "__main__":
    main()
