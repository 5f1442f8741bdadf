"""A tiny end-to-end fine-tune on a few pairs: the loss falls, checkpoints carry their config, resume is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codeneedle.training.train import TrainConfig, embed, latest_checkpoint, load_model, train_model

pytestmark = pytest.mark.slow  # training runs

PAIRS = [
    ("read a json config file", "def read_config(path):\n    with open(path) as fh:\n        return json.load(fh)"),
    ("compute the median of numbers", "def median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]"),
    ("send an http get request", "def fetch(url):\n    return urllib.request.urlopen(url).read()"),
    ("reverse the words in a sentence", "def rev(s):\n    return ' '.join(reversed(s.split()))"),
    ("create a temporary directory", "def tmp():\n    return tempfile.mkdtemp(prefix='x')"),
    ("hash a password with a salt", "def hashpw(pw, salt):\n    return hashlib.sha256(salt + pw).hexdigest()"),
]


def write_pairs(path: Path) -> None:
    with open(path, "w") as fh:
        for i, (q, c) in enumerate(PAIRS):
            fh.write(json.dumps({"repo": f"r{i % 2}", "query": q, "code": f"m.py f\n{c}", "code_plain": c}) + "\n")


def pair_loss(model_dir: str) -> float:
    from codeneedle.training.losses import info_nce_loss

    tok, model, _ = load_model(model_dir, "cpu")
    model.eval()
    with torch.no_grad():
        q = embed(model, tok, [q for q, _ in PAIRS], 32, "cpu")
        c = embed(model, tok, [f"m.py f\n{c}" for _, c in PAIRS], 64, "cpu")
        return float(info_nce_loss(q, c, symmetric=False, temperature=0.05))


def config(tmp: Path, out: str, **kw) -> TrainConfig:
    base = dict(train_data=str(tmp / "pairs.jsonl"), out_dir=str(tmp / out), steps=4, batch_size=3, lr=1e-4,
                warmup=0.0, curriculum="none", code_max_tokens=64, query_max_tokens=32, checkpoint_every=2,
                threads=1, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_train_lowers_loss_and_resume_is_exact(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    write_pairs(tmp_path / "pairs.jsonl")
    before = pair_loss("minilm")
    seen: list[dict] = []
    final = train_model(config(tmp_path, "full"), progress=seen.append)
    after = pair_loss(str(final))
    assert after < before
    assert [p["step"] for p in seen] == [1, 2, 3, 4]
    full_losses = json.loads((final / "train_state.json").read_text())["state"]["losses"]

    # the same run, stopped after its first step by the clock, then resumed from the checkpoint
    stopped = train_model(config(tmp_path, "resumed", max_time_s=1e-6))
    ckpt = latest_checkpoint(tmp_path / "resumed")
    assert ckpt is not None and ckpt.name == "step-1"
    saved = json.loads((ckpt / "train_state.json").read_text())
    assert saved["config"]["lr"] == 1e-4 and saved["config"]["steps"] == 4 and saved["state"]["step"] == 1
    assert stopped.is_dir()
    resumed = train_model(config(tmp_path, "resumed", lr=5.0))  # the checkpoint's config wins over this one
    state = json.loads((resumed / "train_state.json").read_text())
    assert state["state"]["step"] == 4 and state["config"]["lr"] == 1e-4
    assert state["state"]["losses"] == pytest.approx(full_losses, abs=1e-4)


def test_progress_follows_the_clock_of_a_run_that_ends_by_time(tmp_path: Path) -> None:
    # A recipe with a clock (the shipped stage 1: 100,000 steps or 95 minutes) ends by time long before its steps:
    # the progress it reports must say how far the run is, not step / steps.
    write_pairs(tmp_path / "pairs.jsonl")
    seen: list[dict] = []
    train_model(config(tmp_path, "clock", steps=1000, max_time_s=1e-6, time_schedule=True), progress=seen.append)
    assert seen[-1]["step"] == 1 and seen[-1]["fraction"] == 1.0 and seen[-1]["max_time_s"] == 1e-6
    seen.clear()
    train_model(config(tmp_path, "steps"), progress=seen.append)
    assert [p["fraction"] for p in seen] == [0.25, 0.5, 0.75, 1.0] and seen[0]["max_time_s"] == 0

    from codeneedle.cli_train import _step_bar

    bar, update = _step_bar("training", 100_000)
    update({"step": 7, "steps": 100_000, "loss": 1.26, "stage": "easy", "fraction": 0.4, "max_time_s": 5700.0})
    task = bar.tasks[0]
    assert task.percentage == 40 and task.fields["done"] == "7/100000 steps or 95 min"


def test_a_run_with_a_clock_is_not_ended_by_the_wall_clock_moving_on(tmp_path: Path, monkeypatch) -> None:
    """`needle train --repo` has a time budget; a laptop closed for an hour mid-run woke with the wall clock an hour
    on, and the run ended by "time" at its next step (an NTP step back made its elapsed time negative). Its clock
    is the monotonic one, which a sleep does not move."""
    import time

    from codeneedle.training import train

    write_pairs(tmp_path / "pairs.jsonl")
    real = time.time
    seen: list[dict] = []
    # The lid closes after the first step and opens an hour later.
    monkeypatch.setattr(train.time, "time", lambda: real() + (3600.0 if seen else 0.0))
    final = train_model(config(tmp_path, "slept", max_time_s=600.0, time_schedule=True), progress=seen.append)
    state = json.loads((final / "train_state.json").read_text())["state"]
    assert (state["step"], state["ended"]) == (4, "steps")
    assert all(0 <= p["elapsed_s"] < 600 for p in seen)


def test_triplet_and_mined_negatives_run(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    write_pairs(tmp_path / "pairs.jsonl")
    final = train_model(config(tmp_path, "bm25", steps=2, loss="both", curriculum="bm25", negatives_per_batch=2,
                               checkpoint_every=100))
    state = json.loads((final / "train_state.json").read_text())["state"]
    assert state["step"] == 2 and 0 < state["mined"] <= 4 and state["stage_log"][0].startswith("stage bm25")


def test_frozen_lower_layers_stay_as_they_were_and_the_upper_ones_learn(tmp_path: Path) -> None:
    """The CPU recipe's `--freeze-layers 3`: embeddings and layers 0-2 are the base's, bit for bit."""
    from safetensors.torch import load_file

    from codeneedle.indexer.models import resolve_model

    torch.set_num_threads(1)
    write_pairs(tmp_path / "pairs.jsonl")
    final = train_model(config(tmp_path, "frozen", steps=2, freeze_layers=3, checkpoint_every=100))
    base = {k.removeprefix("bert."): v for k, v in load_file(str(resolve_model("minilm")[1] / "model.safetensors")).items()}
    tuned = {k.removeprefix("bert."): v for k, v in load_file(str(final / "model.safetensors")).items()}
    frozen = [k for k in tuned if k.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1.",
                                                "encoder.layer.2."))]
    trained = [k for k in tuned if k.startswith("encoder.layer.5.")]
    assert frozen and trained
    assert all(torch.equal(tuned[k].float(), base[k].float()) for k in frozen)
    assert any(not torch.equal(tuned[k].float(), base[k].float()) for k in trained)
    saved = json.loads((final / "train_state.json").read_text())
    assert saved["config"]["freeze_layers"] == 3
