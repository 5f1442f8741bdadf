"""Command-line runner for training and evaluation (until and beside `needle train` / `needle eval`).

    python -m codeneedle.training.run train --data .cache/corpus/pairs/train.jsonl --out .cache/runs/v2 --steps 300
    python -m codeneedle.training.run train --config .cache/runs/v2/config.json      # rerun or resume a run
    python -m codeneedle.training.run eval --model .cache/runs/v2/model --benchmark cosqa-dev
    python -m codeneedle.training.run interpolate --tuned .cache/runs/v2/model --alpha 0.6 --dest .cache/runs/v2-wise60
    python -m codeneedle.training.run export --model .cache/runs/v4-cpu-wise60 --dest codeneedle/models/needle-code-v3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path


def say(msg: str, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed: this module is a command-line front end."""
    stream = sys.stderr if err else sys.stdout
    stream.write(msg + "\n")
    stream.flush()


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def main(argv: list[str] | None = None) -> None:
    from codeneedle.training.train import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", help="a config.json (e.g. from an earlier run); flags below override it")
    t.add_argument("--data", dest="train_data")
    t.add_argument("--out", dest="out_dir")
    for f in fields(TrainConfig):
        if f.name not in ("train_data", "out_dir"):
            kind = _parse_bool if isinstance(f.default, bool) else type(f.default)
            t.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None)
    t.add_argument("--fresh", action="store_true", help="ignore checkpoints in --out")
    e = sub.add_parser("eval")
    e.add_argument("--model", default="minilm")
    e.add_argument("--benchmark", default="cosqa-dev", help="cosqa-dev | cosqa-test | heldout | valid")
    e.add_argument("--pairs", default=".cache/corpus/pairs")
    e.add_argument("--cache", default=".cache/eval-emb")
    e.add_argument("--threads", type=int, default=1)
    x = sub.add_parser("export")
    x.add_argument("--model", required=True)
    x.add_argument("--dest", required=True)
    x.add_argument("--replay", help="training JSONL to draw the shipped replay sample from")
    x.add_argument("--readme-extra", default="", help="a file whose text is appended to the model README")
    x.add_argument("--manifest", help="the fetch manifest.json (exact package versions) to ship beside the weights")
    m = sub.add_parser("interpolate", help="alpha * tuned + (1 - alpha) * base, saved as a new model folder")
    m.add_argument("--base", default=None, help="base model name or folder (default: the one the run recorded)")
    m.add_argument("--tuned", required=True)
    m.add_argument("--alpha", type=float, default=0.5)
    m.add_argument("--dest", required=True)
    args = ap.parse_args(argv)

    if args.cmd == "train":
        from codeneedle.training.train import train_model

        base = json.loads(Path(args.config).read_text()) if args.config else {}
        base.update({k: v for k, v in vars(args).items() if k in {f.name for f in fields(TrainConfig)} and v is not None})
        config = TrainConfig.from_dict(base)
        t0 = time.monotonic()

        def progress(p: dict) -> None:
            if p["step"] % 5 == 0 or p["step"] == 1:
                say(f"step {p['step']}/{p['steps']} [{p['stage']}] loss {p['loss']:.4f} {p['elapsed_s']:.0f}s")

        out = train_model(config, progress=progress, resume=not args.fresh)
        say(f"model: {out} ({time.monotonic() - t0:.0f}s)")
    elif args.cmd == "eval":
        from codeneedle.training.evaluate import evaluate_model, format_table

        r = evaluate_model(args.model, args.benchmark, progress=lambda m: say(m, err=True),
                           pairs_dir=Path(args.pairs), cache=Path(args.cache), threads=args.threads)
        say(format_table([(f"{args.model} {m}", v) for m, v in r["overall"].items()]))
        say(json.dumps(r["overall"]))
    elif args.cmd == "interpolate":
        from codeneedle.training.train import interpolate_models

        say(f"interpolated: {interpolate_models(args.base, Path(args.tuned), args.alpha, Path(args.dest))}")
    else:
        from codeneedle.training.train import export_model

        extra = Path(args.readme_extra).read_text() if args.readme_extra else ""
        dest = export_model(Path(args.model), Path(args.dest), readme_extra=extra,
                            replay=Path(args.replay) if args.replay else None,
                            manifest=Path(args.manifest) if args.manifest else None)
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        say(f"exported {dest} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
