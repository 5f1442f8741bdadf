"""`needle train` and `needle eval`: rich progress and result tables over the training library API."""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import shutil
import time
from pathlib import Path

from codeneedle.errors import NeedleError


def run_train(args: argparse.Namespace) -> int:
    """Adapt the encoder to one repository (``--repo``) and re-index it, train on a pairs file (``--data``),
    write a GPU bundle of it (``--data --pack DIR``) or bring a bundle's model home (``--unpack DIR``)."""
    if getattr(args, "unpack", None):
        return _unpack(args)
    if getattr(args, "reranker", False):
        return _train_reranker(args)
    if getattr(args, "query_tower", False):
        return _train_query_tower(args)
    if args.repo and args.data:
        raise NeedleError("--repo and --data are two kinds of training (adapt to a repository, or train on a pairs "
                          "file): give one")
    if not (args.repo or args.data):
        raise NeedleError("say what to train on: --repo PATH (adapt to a repository) or --data PAIRS.jsonl")
    if getattr(args, "pack", None):
        if not args.data:
            raise NeedleError("--pack needs --data PAIRS.jsonl")
        return _pack(args)
    if args.repo and (getattr(args, "adapter", False) or getattr(args, "remove_adapter", False)):
        return _query_adapter(args)
    return _adapt(args) if args.repo else _train_general(args)


def _err_console():
    # rich's own Console, not codeneedle.console: that module pulls in the indexer (tree-sitter, sqlite-utils),
    # which a training-only machine does not have.
    import sys

    from rich.console import Console

    from codeneedle.terminal_encoding import redraws

    return Console(stderr=True, force_interactive=redraws(sys.stderr))


def _step_bar(title: str, total: int):
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its per-shard bars would interleave with ours
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    err = _err_console()
    bar = Progress(TextColumn(f"[bold]{title}"), BarColumn(),
                   TextColumn("{task.fields[done]} · {task.fields[stage]} · loss {task.fields[loss]}"),
                   TimeElapsedColumn(), console=err)
    task = bar.add_task(title, total=1.0, done=f"0/{total} steps", stage="", loss="-")

    def update(p: dict) -> None:
        if "step" in p:
            # A run with a clock (--minutes, a recipe's max_time_s) ends at whichever comes first, steps or time:
            # the bar follows that, not the step count alone (7/100000 for a 95-minute recipe, ended at 2 %).
            done = f"{p['step']}/{p['steps']} steps"
            if p.get("max_time_s"):
                done += f" or {p['max_time_s'] / 60:.3g} min"
            bar.update(task, completed=p.get("fraction", p["step"] / max(1, p["steps"])), done=done,
                       stage=p.get("stage", ""), loss=f"{p['loss']:.4f}")
        elif "message" in p:
            err.print(p["message"], markup=False, highlight=False)

    return bar, update


def _adapt(args: argparse.Namespace) -> int:
    import attrs

    from codeneedle import console
    from codeneedle.cli_options import explicit_from, settings_from
    from codeneedle.indexer.index import Index
    from codeneedle.training.adapt import adapt_to_repo

    repo = Path(args.repo).expanduser().resolve()
    if not repo.is_dir():
        raise NeedleError(f"not a folder: {repo}")
    settings = settings_from(args)
    stamp = time.strftime("adapted-%Y%m%d-%H%M%S")
    work = Path(args.out) if args.out else settings.index_dir_for(repo) / "training" / stamp
    t0 = time.time()
    bar, update = _step_bar("adapting", args.steps or 0)
    with bar:
        model = adapt_to_repo(repo, args.base, work, time_budget_s=(args.minutes or 10) * 60, progress=update,
                              threads=args.threads, steps=args.steps, index_dir=settings.index_dir_for(repo),
                              batch_size=args.batch_size, code_max_tokens=args.code_max_tokens)
    if _train_state(model).get("ended") == "signal":
        # Ctrl-C means "cancel": a half-adapted model must not replace the index's vectors.
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
        _err_console().print("[yellow]needle:[/] stopped: nothing changed (the index keeps its model)",
                             highlight=False)
        return 130
    if not args.out:
        # The folder's name becomes the model's name in `needle status`; the scratch files are not needed again.
        final = settings.index_dir_for(repo) / "models" / stamp
        final.parent.mkdir(parents=True, exist_ok=True)
        model = Path(shutil.move(str(model), final))
        shutil.rmtree(work, ignore_errors=True)
    trained_s = time.time() - t0
    # The new weights change every vector: re-embed the repository so search uses them from now on (an index
    # keeps the model it was built with, so later `needle index` runs stay on the adapted model).
    stats = None
    if not args.no_reindex:
        with Index.open(repo, attrs.evolve(settings, model=str(model)), asked=True, explicit=explicit_from(args),
                        notify=lambda m: console.err.print(f"[yellow]needle:[/] {console.escape_text(m)}", highlight=False)) as index:
            with console.index_progress(not args.json) as progress:
                stats = index.update(progress=progress)
            adapter = index.status().query_adapter
            if adapter and not adapter["in_use"]:
                # It was fitted to the old model's query vectors, so searches now leave it out; only `needle
                # status` would say so otherwise.
                console.err.print(f"[yellow]needle:[/] the query adapter was fitted for the model before: searches "
                                  f"leave it out until `needle train --repo {console.escape_text(shlex.quote(str(repo)))} --adapter` "
                                  "refits it", highlight=False)
        if not args.out:
            _drop_older_adaptations(model)
    from codeneedle.indexer.feedback import read_events

    summary = {"model": str(model), "train_seconds": round(trained_s, 1),
               "feedback_events": len(read_events(settings.index_dir_for(repo))),
               "reindexed_chunks": stats.chunks_embedded if stats else 0, **_train_state(model)}
    _report(args, "adapted encoder", summary)
    return 0


def _drop_older_adaptations(current: Path) -> None:
    """Delete the repository's earlier adapted models (88 MB each) once the index is on ``current``: nothing
    uses them, and each run would otherwise leave one more behind."""
    for older in current.parent.glob("adapted-*"):
        if older != current and older.is_dir():
            shutil.rmtree(older, ignore_errors=True)


def _query_adapter(args: argparse.Namespace) -> int:
    """``--repo DIR --adapter``: fit the index's query adapter to its feedback log (seconds; nothing re-embedded),
    or ``--remove-adapter``: search as the encoder alone ranks again."""
    from codeneedle import console
    from codeneedle.cli_options import settings_from
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.query_adapter import remove_adapter

    repo = Path(args.repo).expanduser()
    with Index.open(repo, settings_from(args), create=False, explicit=(),
                    notify=lambda m: console.err.print(f"[yellow]needle:[/] {console.escape_text(m)}", highlight=False)) as index:
        if args.remove_adapter:
            removed = remove_adapter(index.index_dir)
            _report(args, "query adapter", {"index": str(index.index_dir), "removed": removed})
            return 0
        from codeneedle.training.query_adapter import AdapterConfig, fit_query_adapter

        with console.err.status("fitting the query adapter to the results you opened"):
            fit = fit_query_adapter(index, AdapterConfig(threads=args.threads),
                                    progress=lambda m: console.err.print(m, markup=False, highlight=False))
        try:
            path = fit.adapter.save(index.index_dir)
        except OSError as exc:  # a full disk, `ulimit -f`: the fit is lost, the index and an older adapter are not
            hint = "; free some space and run again" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
            raise NeedleError(f"cannot write the query adapter in {index.index_dir}: {exc.strerror or exc}{hint}; "
                              "searches go on as before") from None
    _report(args, "query adapter", {"adapter": str(path), "model": fit.adapter.model_id, **fit.to_dict()})
    return 0


def _recipe(args: argparse.Namespace, out: Path) -> dict:
    """The run's TrainConfig as a dict: --config (or defaults), then the flags given."""
    from codeneedle.training.train import TrainConfig

    recipe: dict = {}
    if args.config:
        # A run's config.json, or a shipped model's train_state.json (its "config" object): the exact recipe.
        recipe = _read_config(args.config)
        unknown = sorted(set(recipe) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise NeedleError(f"--config {args.config}: not a training recipe key: {', '.join(unknown)}")
    # Absolute: a run resumed from another folder must find its data.
    recipe.update(train_data=str(Path(args.data).resolve()), out_dir=str(out), threads=args.threads)
    if args.base or "base_model" not in recipe:
        recipe["base_model"] = args.base or TrainConfig.base_model
    recipe.update(_given_flags(args))
    if args.minutes:
        recipe.update(max_time_s=args.minutes * 60, time_schedule=True)
    return recipe


def _given_flags(args: argparse.Namespace) -> dict:
    """The recipe fields set by flags on this command line."""
    from codeneedle.training.options import RECIPE_FLAGS

    given = {name: getattr(args, flag) for flag, name in RECIPE_FLAGS.items() if getattr(args, flag, None) is not None}
    if args.steps:
        given["steps"] = args.steps
    if args.base:
        given["base_model"] = args.base
    return given


def _read_config(path: Path) -> dict:
    """A recipe file: a run's config.json or a model's train_state.json (whose "config" it is)."""
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise NeedleError(f"cannot read --config {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NeedleError(f"--config {path} is not a JSON recipe ({exc})") from None
    recipe = loaded.get("config", loaded) if isinstance(loaded, dict) else None
    if not isinstance(recipe, dict):
        raise NeedleError(f"--config {path} is not a JSON object")
    return recipe


def _resumed_recipe(args: argparse.Namespace, checkpoint: Path) -> tuple[str, ...]:
    """The fields this command may change in the run it resumes (beyond the time budget): its data's path when
    the run's own path no longer leads to it. A flag that would change the recipe is refused: a run resumes as
    it was configured, so results do not depend on where it was stopped."""
    saved = json.loads((checkpoint / "train_state.json").read_text())["config"]
    changed = [f"--{k.replace('_', '-')} {v} (the run's: {saved.get(k)})"
               for k, v in _given_flags(args).items() if saved.get(k) != v]
    if args.config:
        changed += [f"--config's {k} {v} (the run's: {saved.get(k)})" for k, v in _read_config(args.config).items()
                    if k in saved and k not in ("out_dir", "train_data") and saved[k] != v]
    if changed:
        raise NeedleError(f"--resume continues the run as it was configured, and these differ: {'; '.join(changed)}. "
                          "Leave them out to resume, or start a new run with --fresh or another --out")
    data, own = Path(args.data).resolve(), Path(saved["train_data"])
    if own.is_file() and not data.samefile(own):
        raise NeedleError(f"--resume continues the run on its own data, {own}; --data {args.data} is another file")
    return ("max_time_s",) if own.is_file() else ("max_time_s", "train_data")


def _train_general(args: argparse.Namespace) -> int:
    from codeneedle.training.train import TrainConfig, latest_checkpoint, train_model

    if not Path(args.data).is_file():
        raise NeedleError(f"no training pairs at {args.data} (build them with scripts/build_training_set.py)")
    if args.resume and args.fresh:
        raise NeedleError("--resume and --fresh contradict each other")
    if args.resume and not args.out:
        raise NeedleError("--resume continues the run in --out: give the run's --out")
    checkpoint = latest_checkpoint(Path(args.out)) if args.out else None
    if args.resume and not checkpoint:
        raise NeedleError(f"nothing to resume: no checkpoint under {args.out}/checkpoints (give the run's --out)")
    if checkpoint and not (args.resume or args.fresh):
        raise NeedleError(f"{args.out} holds a run stopped at {checkpoint.name}: --resume continues it as it was "
                          "configured, --fresh starts it over (or give another --out)")
    out = args.out or Path(".cache/runs") / time.strftime("run-%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NeedleError(f"cannot make the run folder {out}: {exc.strerror or exc}") from None
    config = TrainConfig.from_dict(_recipe(args, out))
    keep = _resumed_recipe(args, checkpoint) if args.resume else ()
    t0 = time.time()
    bar, update = _step_bar("training", config.steps)
    with bar:
        model = train_model(config, progress=update, resume=args.resume, keep=keep)
    summary = {"model": str(model), "train_seconds": round(time.time() - t0, 1), **_train_state(model)}
    if summary.get("ended") == "signal":
        from rich.markup import escape

        _err_console().print(f"[yellow]needle:[/] stopped at step {summary['steps']}; continue with the same "
                             f"command and --resume (--out {escape(str(out))})", highlight=False)
    _report(args, "trained encoder", summary)
    return 0


def _train_reranker(args: argparse.Namespace) -> int:
    """``--reranker --data PAIRS``: the cross-encoder re-ranker, against the shipped encoder's mined negatives.
    ``--config`` takes a recipe (a re-ranker's ``rerank_train.json``); the flags given override it."""
    from dataclasses import fields

    from codeneedle.training.rerank import RerankConfig, train_reranker

    recipe: dict = {}
    if args.config:
        known = {f.name for f in fields(RerankConfig)}
        recipe = {k: v for k, v in _read_config(args.config).items() if k in known and k != "out"}
    given = {"data": args.data and str(args.data), "base": args.base, "minutes": args.minutes, "steps": args.steps,
             "lr": args.lr, "residual": args.residual, "vectors": args.vectors and str(args.vectors)}
    recipe.update({k: v for k, v in given.items() if v is not None})
    if not recipe.get("data") or not Path(recipe["data"]).is_file():
        raise NeedleError(f"--reranker needs --data PAIRS.jsonl (no training pairs at {recipe.get('data')}; build "
                          "them with scripts/build_training_set.py)")
    out = args.out or Path(".cache/runs") / time.strftime("rerank-%Y%m%d-%H%M%S")
    config = RerankConfig(**{"minutes": 60.0, **recipe, "out": str(out), "threads": args.threads})
    t0 = time.time()
    bar, update = _step_bar("re-ranker", config.steps)
    with bar:
        folder = train_reranker(config, progress=update)
    run = json.loads((folder / "rerank_train.json").read_text())["run"]
    _report(args, "trained re-ranker", {"model": str(folder), "train_seconds": round(time.time() - t0, 1), **run,
                                         "measure": f"NEEDLE_RERANKER={folder} python bench/quality.py --split dev"})
    return 0


def _train_query_tower(args: argparse.Namespace) -> int:
    """``--query-tower --data PAIRS``: retrain the query side against the code vectors indexes already hold;
    ``--query-tower --out DIR --install`` without ``--data``: install a tower trained before."""
    from codeneedle.training.query_tower import TOWER_RECORD, TowerConfig, reexport_tower, train_query_tower

    if args.reexport:
        if args.wise_alpha is None or not args.out:
            raise NeedleError("--reexport TOWER needs --wise-alpha A and --out DIR")
        try:
            folder = reexport_tower(Path(args.reexport), args.wise_alpha, Path(args.out))
        except (OSError, ValueError) as exc:
            raise NeedleError(f"--reexport {args.reexport}: {exc}") from exc
        summary = {"tower": str(folder), "alpha": args.wise_alpha, "reexported_from": str(args.reexport)}
        if args.install:
            summary["installed"] = str(_install_tower(folder, args.base))
        _report(args, "query tower", summary)
        return 0
    if args.install and not args.data and args.out and (Path(args.out) / TOWER_RECORD).is_file():
        folder = Path(args.out)
        _report(args, "query tower", {"tower": str(folder), "installed": str(_install_tower(folder, args.base))})
        return 0
    if not args.data or not Path(args.data).is_file():
        raise NeedleError(f"--query-tower needs --data PAIRS.jsonl (no training pairs at {args.data}; build them "
                          "with scripts/build_training_set.py), or --out TOWER --install to install one")
    out = args.out or Path(".cache/runs") / time.strftime("query-tower-%Y%m%d-%H%M%S")
    defaults = TowerConfig(data="", out="")
    config = TowerConfig(
        data=str(args.data), out=str(out), model=args.base, minutes=args.minutes or defaults.minutes,
        steps=args.steps or 0, batch_size=args.batch_size or defaults.batch_size, lr=args.lr or defaults.lr,
        freeze_layers=args.freeze_layers or 0, alpha=defaults.alpha if args.wise_alpha is None else args.wise_alpha,
        max_pairs=args.max_pairs or 0, threads=args.threads,
        init=str(args.from_tower) if args.from_tower else None)
    t0 = time.time()
    bar, update = _step_bar("query tower", config.steps)
    try:
        with bar:
            folder = train_query_tower(config, progress=update)
    except ValueError as exc:
        raise NeedleError(str(exc)) from exc
    record = json.loads((folder / TOWER_RECORD).read_text())
    summary = {"tower": str(folder), "train_seconds": round(time.time() - t0, 1),
               **{k: record[k] for k in ("code_model", "pairs", "steps", "loss_first", "loss_last")}}
    if args.install:
        summary["installed"] = str(_install_tower(folder, args.base))
    else:
        summary["try"] = (f"NEEDLE_QUERY_TOWER={folder} needle search ...  (then: needle train --query-tower "
                          f"--out {folder} --install)")
    _report(args, "query tower", summary)
    return 0


def _install_tower(folder: Path, model: str | None) -> Path:
    """Copy the tower into ``model``'s folder, refusing one trained against another model's code vectors."""
    from codeneedle.indexer.encoder import Encoder, tower_fits
    from codeneedle.training.query_tower import TOWER_RECORD, install_tower

    encoder = Encoder.load(model)
    if not tower_fits(folder, encoder.model_id):
        trained_for = json.loads((folder / TOWER_RECORD).read_text()).get("code_model")
        raise NeedleError(f"{folder} was trained against {trained_for}'s code vectors, not {encoder.model_id}'s: "
                          "its queries would not match the index (train one with --base for this model)")
    return install_tower(folder, encoder.folder)


def _pack(args: argparse.Namespace) -> int:
    from codeneedle.training.pack import make_bundle

    if not Path(args.data).is_file():
        raise NeedleError(f"no training pairs at {args.data} (build them with scripts/build_training_set.py)")
    recipe = _recipe(args, Path(""))
    overrides = {k: recipe[k] for k in ("device", "precision", "batch_size", "checkpoint_every", "steps")
                 if k in recipe and (getattr(args, k, None) is not None)}
    err = _err_console()
    try:
        with err.status("packing") as status:
            summary = make_bundle(recipe, Path(args.pack), budget_s=args.budget_minutes * 60,
                                  wise_alpha=0.5 if args.wise_alpha is None else args.wise_alpha, gpu_overrides=overrides, progress=status.update)
    except ValueError as exc:
        raise NeedleError(str(exc)) from exc
    summary["run"] = f"{Path(args.pack) / 'run.sh'} OUT    # on the GPU machine; then: needle train --unpack OUT --out MODEL_DIR"
    _report(args, "GPU bundle", summary)
    return 0


def _unpack(args: argparse.Namespace) -> int:
    from codeneedle.training.pack import unpack

    if not args.out:
        raise NeedleError("--unpack needs --out MODEL_DIR (where the reassembled model goes)")
    try:
        model = unpack(Path(args.unpack), Path(args.out))
    except ValueError as exc:
        raise NeedleError(str(exc)) from exc
    run = model / "training_run.json"
    summary = {"model": str(model), **(json.loads(run.read_text()) if run.is_file() else {})}
    summary.pop("config", None)
    summary.pop("stage_log", None)
    _report(args, "unpacked model", summary)
    return 0


def _train_state(model: Path) -> dict:
    state_file = Path(model) / "train_state.json"
    if not state_file.is_file():
        return {}
    state = json.loads(state_file.read_text()).get("state", {})
    losses = state.get("losses") or [float("nan")]
    return {"steps": state.get("step", 0), "first_loss": losses[0], "last_loss": losses[-1],
            **({"ended": state["ended"]} if state.get("ended") else {})}


def _report(args: argparse.Namespace, title: str, summary: dict) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from codeneedle.visible import visible

    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        sys.stdout.flush()
        return
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        # As Text, not markup: a repository at `proj[red]/` printed the adapter's path as `proj/`, a path that is not
        # there (and `[/]` in a name ended the command in a MarkupError)
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        table.add_row(key.replace("_", " "), Text(visible(shown)))
    Console(highlight=False, soft_wrap=True).print(table)


def run_eval(args: argparse.Namespace) -> int:
    """MRR@10 and Recall@1/5/10 of BM25, the encoder, and both fused, on a named benchmark or a repository;
    ``--compare`` adds a second encoder's rows and ratios against it."""
    from codeneedle import console
    from codeneedle.indexer.models import resolve_model
    from codeneedle.training.evaluate import evaluate_model, format_table

    pairs = Path(args.pairs)
    models = [args.model] + ([args.compare] if args.compare else [])
    results = {}
    with console.err.status("evaluating") as status:
        for model in models:
            name = resolve_model(model)[0]
            try:
                results[name] = evaluate_model(model, args.benchmark, pairs_dir=pairs, threads=args.threads,
                                               progress=lambda m: status.update(m))
            except (ValueError, FileNotFoundError) as exc:
                raise NeedleError(str(exc)) from exc
    if args.json:
        console.print_json({"benchmark": args.benchmark, "results": {n: r["overall"] for n, r in results.items()}})
        return 0
    rows = []
    for name, result in results.items():
        rows += [(f"{name} {method}" if method != "bm25" else "bm25", metrics)
                 for method, metrics in result["overall"].items()
                 if method != "bm25" or not any(label == "bm25" for label, _ in rows)]
    baseline = f"{resolve_model(args.compare)[0]} dense" if args.compare else "bm25"
    console.out.print(f"benchmark: {args.benchmark}")
    console.out.print(format_table(rows, baseline=baseline))
    return 0
