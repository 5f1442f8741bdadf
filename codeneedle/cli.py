"""`needle`: index, search, watch and serve a repository from the shell. A thin door over the library API."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from codeneedle import __version__
from codeneedle.cli_options import (
    add_index_options,
    add_search_options,
    check_rerank,
    explicit_from,
    settings_from,
)
from codeneedle.errors import (
    IndexLockedError,
    IndexMissingError,
    IndexReadOnlyError,
    IndexStartingError,
    IndexWriteError,
    NeedleError,
)
from codeneedle.indexer import native

native.calm_thread_pools()  # before numpy and torch load their thread pools


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="needle", description="Local semantic code search.",
        epilog="PATH is found the way git finds its work tree: the nearest folder at or above it (default: the "
               "current folder) holding a .needle/ index, else a .git, else PATH itself. A search's PATH inside "
               "the repository (a folder or file) narrows the search to it.")
    parser.add_argument("--version", action="version", version=f"needle {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from codeneedle.training.options import add_train_options, positive_float, positive_int

    def path_options(p: argparse.ArgumentParser, many: bool = False, narrows: bool = False) -> None:
        what = ("a folder or file of the repository: results only from there (default: the whole repository of "
                "the current folder)" if narrows else "a folder of the repository (default: the current folder)")
        p.add_argument("path", nargs="*" if many else "?", default=None, metavar="PATH",
                       help=what + ("; several: each its own index" if many else ""))
        p.add_argument("--path", dest="path_option", metavar="PATH", action="append" if many else "store",
                       help="the same, as an option" + (" (repeatable: several repositories)" if many else ""))
        if many:
            p.add_argument("--collection", metavar="FILE", help="also the repositories listed in FILE, one per line")

    p = sub.add_parser("index", help="build or update the index of a repository",
                       description="Build or update the index of a repository (or of several).")
    path_options(p, many=True)
    add_index_options(p)
    p.add_argument("--ray", metavar="ADDRESS", help="embed on the Ray cluster at ADDRESS (e.g. 127.0.0.1:6379)")
    p.add_argument("--ray-workers", type=positive_int, metavar="N",
                   help="--ray: encoder actors (default: one per GPU, else one per --ray-cpus CPUs)")
    p.add_argument("--ray-cpus", type=positive_int, default=1, metavar="N",
                   help="--ray: CPUs per CPU actor (default 1)")
    p.add_argument("--json", action="store_true", help="print the update's figures as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--compact", action="store_true",
                   help="after the update, give the space the database holds free back to the disk (an update "
                        "does it by itself once a fifth of the file is free)")

    p = sub.add_parser("search", help="search a repository (indexing it first if needed)",
                       description="Search a repository, indexing it first if needed.")
    p.add_argument("query", nargs="?", help="what you are looking for, in words or identifiers")
    path_options(p, many=True, narrows=True)
    p.add_argument("-k", "--top-k", type=int, default=10, dest="k", help="number of results (default 10)")
    p.add_argument("--lang", help="only these languages, e.g. python,go; a format (vue, svelte, jupyter, markdown) "
                   "selects its files, code and text alike")
    p.add_argument("--kind", help="only these kinds of code: function, method, class, block, text, or def (every "
                                  "named definition), e.g. function,method")
    p.add_argument("--glob", action="append", metavar="GLOB",
                   help="only paths matching this gitignore-style glob, e.g. 'src/**/*.py'; '!GLOB' leaves "
                        "paths out (repeatable)")
    p.add_argument("--exclude-glob", action="append", metavar="GLOB",
                   help="leave out paths matching this glob at search time, e.g. 'dist/**' (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per query on stdout")
    p.add_argument("-n", "--lines", type=int, default=1, metavar="N",
                   help="show the first N lines of each result's code, numbered (default 1; 0: none)")
    p.add_argument("--queries", metavar="FILE", help="batch mode: one query per line ('-' for stdin)")
    p.add_argument("--no-refresh", action="store_true", help="search the index as it is, without updating it")
    p.add_argument("--open", type=int, metavar="N",
                   help="open result N (1-based) in $VISUAL/$EDITOR, or print its path:line; recorded for training")
    p.add_argument("--no-feedback", action="store_true",
                   help="do not record which result you opened (--open), nor put first what you opened for the same "
                   "query before")
    add_index_options(p)
    add_search_options(p)

    p = sub.add_parser("similar", help="find code like the function at FILE:LINE",
                       description="Find code like the function, method or block at FILE:LINE (the code itself left "
                                   "out): duplicates, or other implementations of the same idea.")
    p.add_argument("location", metavar="FILE:LINE", help="a file and a 1-based line inside the code, e.g. "
                                                          "src/net/retry.go:12 (a column after it is ignored)")
    p.add_argument("-k", "--top-k", type=int, default=10, dest="k", help="number of results (default 10)")
    p.add_argument("-n", "--lines", type=int, default=1, metavar="N",
                   help="show the first N lines of each result's code, numbered (default 1; 0: none)")
    p.add_argument("--cell", type=positive_int, metavar="N",
                   help="in a Jupyter notebook: the cell (counted from 1); LINE is then a line of that cell")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.add_argument("--no-refresh", action="store_true", help="use the index as it is, without updating it")
    add_index_options(p)

    p = sub.add_parser("status", help="show what an index holds",
                       description="Show what an index holds: files, chunks, model, size, skipped files (of several "
                                   "repositories: one table, or one JSON line, each).")
    path_options(p, many=True)
    p.add_argument("--index-dir", type=Path, help="where the index lives (default: <repo>/.needle)")
    p.add_argument("--json", action="store_true", help="print the status as one JSON object")

    p = sub.add_parser("watch", help="keep the index in sync with the working tree",
                       description="Index once, then keep the index in sync with the working tree until "
                                   "interrupted.")
    path_options(p)
    add_index_options(p)
    p.add_argument("--debounce", type=float, default=0.1, help="seconds of quiet before absorbing changes (default 0.1)")

    sub.add_parser("lsp", help="run the language server on stdio",
                   description="Run the language server on stdio (for VS Code, Neovim and any LSP editor); "
                               "the editor sends the workspace folders and settings.")
    p = sub.add_parser("mcp", help="run the MCP server on stdio",
                       description="Run the MCP server on stdio (tools: search, similar, status).")
    p.add_argument("--path", help="a folder of the repository (default: $NEEDLE_ROOT or the current folder)")
    p.add_argument("--extra-root", action="append", metavar="PATH",
                   help="another repository searched with the root (repeatable; default: $NEEDLE_EXTRA_ROOTS)")
    add_index_options(p)
    add_search_options(p)

    p = sub.add_parser("train", help="fine-tune the encoder: adapt it to one repository, or train on a pairs file",
                       description="Fine-tune the encoder: adapt it to one repository (--repo, then re-index it), "
                                   "train on a pairs file (--data), or fit a query adapter to the results you "
                                   "opened (--repo --adapter). See docs/TRAINING.md.")
    p.add_argument("--repo", type=Path, help="adapt to this repository (its doc comments), then re-index it")
    p.add_argument("--data", type=Path, help="training pairs (JSONL) built by scripts/build_training_set.py")
    # --repo starts from the shipped encoder (whose replay sample it mixes in), not from whatever the index is on:
    # adapting an adapted model would drift further from the general one each run.
    p.add_argument("--base", default=None, help="model to start from (default: --repo: the shipped encoder, "
                                             "needle-code-v3, whatever model the index is on; --data: minilm, the "
                                             "untuned base)")
    p.add_argument("--out", type=Path, help="folder for the trained model (default: --repo: under the index folder; "
                                            "--data: a new .cache/runs/run-DATE-TIME in the current folder)")
    p.add_argument("--config", type=Path, help="--data: a recipe (a run's config.json or a model's train_state.json); "
                                               "--reranker: a re-ranker's rerank_train.json")
    p.add_argument("--minutes", type=positive_float,
                   help="wall-clock budget in minutes (default: 10 for --repo, none for --data; a resumed run's "
                        "budget counts the time it has already run)")
    p.add_argument("--steps", type=positive_int,
                   help="optimizer steps (default: --data 300; --repo: as many as --minutes allows)")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default 2)")
    p.add_argument("--fresh", action="store_true", help="--data: ignore checkpoints of an earlier run in --out")
    p.add_argument("--reranker", action="store_true",
                   help="--data: train the cross-encoder re-ranker instead of the encoder (negatives mined by "
                        "--base, default the shipped encoder)")
    add_train_options(p)
    p.add_argument("--no-reindex", action="store_true", help="--repo: do not re-embed the repository afterwards")
    p.add_argument("--index-dir", type=Path, help="index folder (default: <repo>/.needle)")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON")

    p = sub.add_parser("eval", help="measure retrieval quality (MRR@10, Recall@1/5/10)",
                       description="Measure an encoder's retrieval quality (MRR@10, Recall@1/5/10) on a benchmark: "
                                   "CoSQA (its data folder: $NEEDLE_COSQA_DIR), mined held-out pairs, or a "
                                   "repository's own doc comments.")
    p.add_argument("--model", default=None, help="model name or folder (default: the default encoder)")
    p.add_argument("--compare", help="a second model to print beside it, with ratios (e.g. minilm)")
    p.add_argument("--benchmark", default="cosqa-dev",
                   help="cosqa-dev, cosqa-test, heldout (needs --pairs), or a repository folder")
    p.add_argument("--pairs", default=".cache/corpus/pairs", help="mined pairs folder for heldout/valid")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default 2)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(subparsers=sub.choices)
    return parser


def root_from(args: argparse.Namespace) -> Path:
    """The repository root: PATH (or --path, or the current folder) resolved the way git finds its work tree."""
    from codeneedle.indexer.root import find_root

    given = getattr(args, "path_option", None) or getattr(args, "path", None) or "."
    if isinstance(given, list):  # index/search take several; the first one where one is wanted
        given = given[0]
    return find_root(given, index_markers=getattr(args, "index_dir", None) is None)


def roots_from(args: argparse.Namespace, files: bool = False,
               missing: list[tuple[str, NeedleError]] | None = None) -> list[Path]:
    """Every repository an index/search names: PATHs, --path options, then --collection's lines; default ``.``.
    ``files``: a PATH may be a file (a search narrowed to it), whose repository is that of its folder. ``missing``:
    where a PATH that is not there goes, as (PATH, error), the others still returned (else it is the error); a
    --collection line that names no folder always goes there (a repository removed from disk leaves the rest of its
    list usable), unless it names none."""
    from codeneedle.indexer.collection import read_collection, unique_roots
    from codeneedle.indexer.root import find_root

    given = [*(args.path or []), *(args.path_option or [])]
    if args.collection:
        gone: list[tuple[str, NeedleError]] = []
        given += [str(p) for p in read_collection(args.collection, missing=gone)]
        if gone:
            args.collection_missing = gone
            if missing is None:
                for _, exc in gone:
                    _error(exc)
            else:
                missing.extend(gone)
    markers = args.index_dir is None
    found = []
    for g in given or ["."]:
        try:
            found.append(find_root(g, index_markers=markers, files=files))
        except NeedleError as exc:
            if missing is None:
                raise
            missing.append((g, exc))
    roots = unique_roots(found)
    if args.index_dir is not None and len(roots) > 1:
        raise NeedleError("--index-dir names one repository's index; leave it out to use several")
    return roots


def _open_index(args: argparse.Namespace, root: Path | None = None, **kwargs):
    from codeneedle.indexer.index import Index

    return Index.open(root or root_from(args), settings_from(args), notify=_notify, explicit=explicit_from(args),
                      **kwargs)


def _names_several(args: argparse.Namespace) -> bool:
    """Whether the command line names several repositories (``--collection``, or more than one path)."""
    return bool(args.collection) or len([*(args.path or []), *(args.path_option or [])]) > 1


def cmd_index(args: argparse.Namespace) -> int:
    from codeneedle import console
    from codeneedle.indexer.index import Index

    roots = roots_from(args)
    if args.ray is None and (args.ray_workers is not None or args.ray_cpus != 1):
        raise NeedleError("--ray-workers and --ray-cpus size the workers of a Ray cluster: they go with --ray")
    gone = getattr(args, "collection_missing", [])  # --collection lines naming no folder (said on stderr)
    if args.json:
        for where, exc in gone:
            console.print_json({"collection": where, "error": str(exc)})
    pool = None  # one actor pool, for the model of the repository at hand (repositories may keep different ones)
    failed: list[tuple[Path, str]] = []
    try:
        for root in roots:
            try:
                with Index.open(root, settings_from(args), notify=_notify, explicit=explicit_from(args),
                                asked=True) as index:
                    if args.ray is not None:
                        if pool is not None and pool.model_id != index.model_id:
                            pool.close()  # its actors hold the cluster's CPUs: the next model's need them
                            pool = None
                        pool = pool or _ray_pool(index, args)
                        index.embedder = pool  # the pipeline's Embedder seam
                    _index_one(index, args, (lambda p=pool: {"ray_workers": p.workers}) if pool is not None else None)
            except NeedleError as exc:
                if len(roots) == 1 or (pool is not None and pool.failed):
                    # The cluster can take none of the others either (its head is gone; no room for a worker of
                    # --ray-cpus): each would commit its files unembedded, then fail the same way.
                    raise
                # One repository that cannot be indexed now (another process writes it, a disk error) does not
                # keep the others from being indexed; it is named again at the end.
                failed.append((root, str(exc)))
                console.err.print(f"[red]needle: error:[/] {console.escape_text(f'{root}: {exc}')}", highlight=False)
                if args.json:
                    console.print_json({"repo": str(root), "error": str(exc)})
    finally:
        if pool is not None:
            pool.close()
    if failed or gone:
        names = ", ".join([*(str(root) for root, _ in failed), *(where for where, _ in gone)])
        _error(f"{len(failed) + len(gone)} of {len(roots) + len(gone)} repositories not indexed: {names}")
        return 1
    return 0


def _ray_pool(index, args: argparse.Namespace):
    from codeneedle.indexer.ray_embed import LazyRayEmbedder

    return LazyRayEmbedder(args.ray, index.model_name, index.model_dir, index.model_id, workers=args.ray_workers,
                           cpus_per_worker=args.ray_cpus)


def _index_one(index, args: argparse.Namespace, extra: Callable[[], dict] | None = None) -> None:
    from codeneedle import console

    with console.index_progress(not (args.quiet or args.json)) as progress:
        stats = index.update(progress=progress)
    # Asked for (--compact) and not done already by the update itself (compaction.due).
    compacted = (index.compact(force=True) if args.compact and not stats.cancelled and not stats.compacted_bytes
                 else None)
    if compacted is not None and compacted.skipped is None:
        stats.compacted_bytes += compacted.freed
    if args.json:
        console.print_json({"repo": str(index.root), **stats.to_dict(), **(extra() if extra else {})})
    else:
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(stats.skipped.items())) or "none"
        console.err.print(
            f"indexed {console.escape_text(str(index.root))}: {stats.files_changed} files changed, {stats.files_unchanged} unchanged, "
            f"{stats.files_removed} removed; {stats.embedded_text()}, "
            f"{stats.chunks_added} added, {stats.chunks_removed} removed in {stats.seconds:.2f}s "
            f"(skipped: {skipped})"
            + (f"; {console.human_bytes(stats.compacted_bytes)} of free space given back to the disk"
               if stats.compacted_bytes and compacted is None else "")
        )
    if compacted is not None:  # asked for: said whatever came of it
        console.err.print(console.escape_text(compacted.message()), highlight=False)


def cmd_search(args: argparse.Namespace) -> int:
    from codeneedle import console
    from codeneedle.indexer.filters import check_query, kind_filter, split_globs
    from codeneedle.indexer.search import language_filter

    check_search_args(args)
    from codeneedle.terminal_encoding import as_typed

    args.query = as_typed(args.query)  # a QUERY now, not a PATH (check_search_args)
    # Bad arguments fail before any indexing work, with the reason.
    check_query(args.query if args.queries is None else "-", args.k)
    language_filter(args.lang)
    kind_filter(args.kind)
    split_globs(args.glob, args.exclude_glob)
    check_rerank(args)
    roots = roots_from(args, files=True)
    args.within = _named_paths(args)
    if len(roots) > 1 or _names_several(args):
        # Several named (paths or a collection) answer as several, with each result's repo, even when they turn
        # out to be one repository: a script's output must not change shape with its input.
        code = _search_many(roots, args, console)
        # A --collection line naming no folder was said on stderr; the others answered, but the search is not whole.
        return max(code, 1 if getattr(args, "collection_missing", None) else 0)
    _globs_from_here(args, roots[0])
    with _open_index(args, root=roots[0]) as index:
        # The query's vector and the second stage's model do not depend on the index: ready them meanwhile.
        prepared = index.prepare(args.query) if args.queries is None and index.stored_model is not None else None
        _refresh(index, args, console)
        if args.queries is not None:
            return _batch_search(index, args, console)
        results = _search(index, args, args.query, prepared.result() if prepared is not None else None)
        if args.open is not None:
            return _open_result(index, args, results)
        done = index.completeness()
        if args.json:
            console.print_json({**_json_answer(args.query, results, index.root), **_partial_fields(done)})
        else:
            console.print_results(results, index.root, args.lines)
            _say_partial(done)
        if not results and (note := index.within_note(_within(args, index.root)) or index.glob_note(args.glob)):
            _notify(note)
    return 0


def _within_notes(indexes, args: argparse.Namespace) -> str | None:
    """Why a search over several repositories narrowed to named folders found nothing: none of them holds an
    indexed file (each repository's note)."""
    from codeneedle.indexer.filters import within_of

    if args.within is None:
        return None
    notes = [index.within_note(narrowed) for index in indexes
             if (narrowed := within_of(index.root, args.within))]
    return "; ".join(notes) if notes and all(notes) else None


def _named_paths(args: argparse.Namespace) -> list[Path] | None:
    """The folders and files a search names (PATHs, --path), resolved: its results come from there only. None
    when it names none (the whole repository of the current folder; --collection names whole repositories)."""
    given = [*(args.path or []), *(args.path_option or [])]
    if not given:
        return None
    from codeneedle.indexer.root import named_path

    named = [named_path(Path(g).expanduser()) for g in given]
    if args.collection:
        from codeneedle.indexer.collection import read_collection

        named += [Path(p).expanduser().resolve() for p in read_collection(args.collection, missing=[])]
    return named


def _within(args: argparse.Namespace, root: Path) -> tuple[str, ...] | None:
    """The named paths of one repository's search, relative to its root (None or (): all of it)."""
    from codeneedle.indexer.filters import within_of

    return within_of(root, args.within) if args.within is not None else None


def _globs_from_here(args: argparse.Namespace, root: Path) -> None:
    """A glob starting with ``./`` names paths from the current folder (``filters.globs_from_folder``)."""
    from codeneedle.indexer.filters import globs_from_folder

    here = _here()
    if here is None or not here.is_relative_to(root):
        return
    folder = here.relative_to(root).as_posix()
    args.glob = globs_from_folder(args.glob, folder)
    args.exclude_glob = globs_from_folder(args.exclude_glob, folder)


def _here() -> Path | None:
    try:
        return Path.cwd().resolve()
    except OSError:  # the current folder is gone
        return None


def check_lines(args: argparse.Namespace) -> None:
    if args.lines < 0:
        raise NeedleError(f"--lines {args.lines}: give 0 (no code) or more lines")


def check_search_args(args: argparse.Namespace) -> None:
    """Combinations that would silently drop one of the user's options are refused, with the reason."""
    check_lines(args)
    if args.queries is not None and args.query is not None and Path(args.query).is_dir():
        # `needle search --queries FILE REPO`: with the queries in a file, a folder named first is a PATH
        args.path, args.query = [args.query, *(args.path or [])], None
    if args.queries is None and args.query is None:
        raise NeedleError("give a QUERY or --queries FILE")
    if args.queries is not None and args.query is not None:
        raise NeedleError("give a QUERY or --queries FILE, not both")
    if args.open is None:
        return
    if args.open < 1:
        raise NeedleError(f"--open {args.open}: results are numbered from 1")
    if args.queries is not None:
        raise NeedleError("--open opens a result of one query: it does not go with --queries")
    if _names_several(args):
        raise NeedleError("--open opens a result of one repository's search: give one PATH")
    _editor_command()  # an editor that cannot run is said before any search work


def _search_many(roots: list[Path], args: argparse.Namespace, console) -> int:
    """One search over several repositories' indexes, merged (each keeps its ranking order); each result names its ``repo``."""
    from codeneedle.indexer.collection import Collection, glob_note

    with Collection.open(roots, settings_from(args), notify=_notify, explicit=explicit_from(args)) as many:
        for index in many.indexes:
            _refresh(index, args, console)

        def answer(query: str) -> None:
            results = many.search(query, k=args.k, lang=args.lang, glob=args.glob, exclude=args.exclude_glob,
                                  kind=args.kind, within=args.within, here=_here())
            partial = [(index.root, done) for index in many.indexes if (done := index.completeness()).partial]
            if args.json:
                gone = getattr(args, "collection_missing", ())  # as index/status --json name them
                console.print_json({**_json_answer(query, results), "partial": bool(partial),
                                    **({"partial_repos": [str(root) for root, _ in partial]} if partial else {}),
                                    **({"errors": [{"collection": where, "error": str(exc)} for where, exc in gone]}
                                       if gone else {})})
                return
            if args.queries is not None:
                console.out.print(f"[bold]# {console.escape_text(query)}[/]")
            console.print_results(results, lines=args.lines)
            for root, done in partial:
                sys.stderr.write(console.visible(f"needle: results from {root} are partial: the index is "
                                                 f"{done.message()}") + "\n")
            if not results and (note := _within_notes(many.indexes, args) or glob_note(many.indexes, args.glob)):
                _notify(note)

        if args.queries is None:
            answer(args.query)
            return 0
        with _open_queries(args.queries) as source:
            return _each_query(source, args, console, answer)


def _search(index, args: argparse.Namespace, query: str, qvec=None):
    return index.search(query, k=args.k, lang=args.lang, glob=args.glob, exclude=args.exclude_glob, qvec=qvec,
                        kind=args.kind, within=_within(args, index.root))


def _json_answer(query: str, results, root: Path | None = None) -> dict:
    """``--json``'s answer to one query; ``root``, the one repository's, which its results' paths are relative to
    (results from several repositories name theirs, ``repo``, each)."""
    from codeneedle.indexer.scores import good_match

    return {"query": query, **({"root": str(root)} if root is not None else {}),
            "results": [r.to_dict() for r in results], "good_match": good_match(results)}


def _partial_fields(done) -> dict:
    """``--json``: ``partial`` always, the index's progress while it is partial."""
    return {"partial": done.partial, **({"index": done.to_dict()} if done.partial else {})}


def _say_partial(done) -> None:
    if done.partial:
        sys.stderr.write(f"needle: results are partial: the index is {done.message()}\n")


def _open_result(index, args: argparse.Namespace, results) -> int:
    """``--open N``: record the choice (the local feedback log `needle train --repo` learns from), print
    ``path:line`` and hand it to $VISUAL/$EDITOR as ``+LINE PATH`` (vi, nano and emacs take that)
    when one is set."""
    import shlex
    import subprocess

    from codeneedle import console
    from codeneedle.indexer.feedback import Shown, record_open

    if args.open > len(results):
        raise NeedleError(f"--open {args.open}: the search returned {len(results)} results")
    hit = results[args.open - 1]
    target = index.root / hit.path
    if not console.inside(index.root, str(target)):
        # A `../` path in an index that came with a repository, or a file since swapped for a link out of it: the
        # editor would open (and the log record) a file Needle never indexed.
        raise NeedleError(f"--open {args.open}: {console.visible(hit.path)} lies outside {index.root}; not opened")
    # The editor is checked before anything is printed or recorded: an open that cannot happen teaches nothing.
    editor = _editor_command()
    if args.json:
        console.print_json({**_json_answer(args.query, results, index.root), **_partial_fields(index.completeness()),
                            "opened": {**hit.to_dict(), "file": str(target)}})
    else:
        # Shown as the result lines show it: a file name is no way to drive the terminal (OSC 52, a title, ...).
        sys.stdout.write(console.visible(f"{target}:{hit.start_line}") + "\n")
        sys.stdout.flush()
    from codeneedle.indexer.query_adapter import refit_due

    shown = [Shown(r.path, r.start_line, r.name) for r in results]
    was_due = refit_due(index.index_dir)
    try:
        recorded = record_open(index.index_dir, args.query, shown[args.open - 1], shown[:args.open - 1],
                               setting=not args.no_feedback)
    except OSError as exc:  # the log is not writable: the open itself still happens
        recorded = False
        _notify(f"cannot record the open in {index.index_dir}: {exc.strerror or exc}")
    if recorded and not was_due and refit_due(index.index_dir):
        # The language server refits by itself; from the shell it is one command, said once, on the open that
        # makes a fit due (not on every open after it).
        _notify(f"search can learn from the results you opened: `needle train --repo {shlex.quote(str(index.root))} "
                "--adapter` (seconds; nothing is re-embedded)")
    if editor is None:
        return 0
    name, command = editor
    try:
        return subprocess.call([*command, f"+{hit.start_line}", str(target)])
    except OSError as exc:
        raise NeedleError(f"cannot run {name} ({shlex.join(command)}): {exc.strerror or exc}") from None


def _editor_command() -> tuple[str, list[str]] | None:
    """(``$VISUAL`` or ``$EDITOR``, its command split as a shell would), the first one set and not blank; None
    when neither is. NeedleError when it cannot be read or is no program that can run."""
    import os
    import shlex
    import shutil

    for name in ("VISUAL", "EDITOR"):
        editor = os.environ.get(name, "").strip()
        if not editor:
            continue
        try:
            command = shlex.split(editor)
        except ValueError as exc:
            raise NeedleError(f"cannot read ${name} ({editor!r}): {exc}") from None
        if shutil.which(command[0]) is None:
            raise NeedleError(f"cannot run ${name} ({editor!r}): {command[0]} is not a program that can run here")
        return f"${name}", command
    return None


def cmd_similar(args: argparse.Namespace) -> int:
    from codeneedle import console
    from codeneedle.indexer.filters import check_query
    from codeneedle.indexer.root import find_root, named_path

    path, line = _file_and_line(args.location)
    check_query("-", args.k)
    check_lines(args)
    root = find_root(path, index_markers=args.index_dir is None, files=True)
    if not path.is_file():
        raise NeedleError(f"not a file: {path}")
    with _open_index(args, root=root) as index:
        _refresh(index, args, console)
        rel = index.relative(named_path(path))
        results = index.similar(rel, line, k=args.k, cell=args.cell or 0)
        done = index.completeness()
        if args.json:
            console.print_json({"root": str(index.root), "path": rel, "line": line,
                                **({"cell": args.cell} if args.cell else {}),
                                "results": [r.to_dict() for r in results], **_partial_fields(done)})
        else:
            console.print_results(results, index.root, args.lines)
            _say_partial(done)
    return 0


def _file_and_line(location: str) -> tuple[Path, int]:
    """``src/x.py:12`` (or ``src/x.py:12:5``, as grep -n, compilers and ``rg --vimgrep`` write it, and with the
    colon that follows when copied from their output) -> (path, 12)."""
    parts = location.removesuffix(":").split(":")
    named = Path(":".join(parts[:-1])).expanduser()
    if len(parts) > 2 and parts[-1].isdigit() and int(parts[-1]) >= 1 and named.is_file():
        return named, int(parts[-1])  # a file named `notes.py:3` at line 1, not notes.py at line 3 column 1
    while len(parts) > 2 and parts[-1].isdigit() and parts[-2].isdigit():
        parts.pop()  # a column
    if len(parts) < 2 or not parts[-1].isdigit() or not ":".join(parts[:-1]):
        raise NeedleError(f"give FILE:LINE, e.g. src/net/retry.go:12 (got {location!r})")
    line = int(parts[-1])
    if line < 1:
        raise NeedleError(f"{location}: lines are counted from 1")
    return Path(":".join(parts[:-1])).expanduser(), line


def _refresh(index, args: argparse.Namespace, console) -> None:
    """Bring the index up to date before searching; a missing index is built, a locked one read as is."""
    exists = index.stored_model is not None
    if args.no_refresh and exists:
        return
    try:
        # A bar when there is real work ahead: a new index, one an interrupted run left partial, or one an older
        # Needle made (every file re-read, or all re-embedded for another model: the first search after an upgrade
        # worked for a minute on a big repository without a word).
        show = not exists or index.completeness().state == "partial" or index.rebuild_due() is not None
        with console.index_progress(enabled=show) as progress:
            index.update(progress=progress)  # the writer lock is released on return
    except IndexLockedError as exc:
        if not exists:
            raise NeedleError(f"the index of {index.root} is being created by another needle process; search again "
                              f"in a moment (`needle status {index.root}` shows how far it is)") from None
        if isinstance(exc, IndexReadOnlyError):
            _notify(str(exc))
        # Else another process (a watcher, the language server) is the writer and keeps the index fresh.
    except IndexWriteError as exc:
        if not exists:
            raise
        # A full disk stops the update, not the search: what the index holds is intact (failed with no answer).
        _notify(f"searching the index as it is: {exc}")


def _batch_search(index, args: argparse.Namespace, console) -> int:
    def answer(query: str) -> None:
        results = _search(index, args, query)
        done = index.completeness()
        if args.json:
            console.print_json({**_json_answer(query, results, index.root), **_partial_fields(done)})
        else:
            console.out.print(f"[bold]# {console.escape_text(query)}[/]")
            console.print_results(results, index.root, args.lines)
            _say_partial(done)

    with _open_queries(args.queries) as source:
        return _each_query(source, args, console, answer)


def _each_query(source, args: argparse.Namespace, console, answer: Callable[[str], None]) -> int:
    """``answer`` each query line of a batch. A line the search refuses (too long, not UTF-8, ...) is reported
    with its number, as an ``error`` object under ``--json``, and the batch goes on; the exit status is then 1."""
    failed = 0
    for number, line in enumerate(source, 1):
        query = line.rstrip("\n")
        if not query.strip():
            continue
        try:
            answer(query)
        except NeedleError as exc:
            failed += 1
            if args.json:
                shown = query[:200].encode("utf-8", "replace").decode("utf-8")
                console.print_json({"query": shown, "line": number, "error": str(exc), "results": []})
            else:
                _error(f"line {number}: {exc}")
    return 1 if failed else 0


def _open_queries(path: str):
    # Bytes that are not UTF-8 become lone surrogates: that line's search then says so (check_query), no traceback.
    if path == "-":
        sys.stdin.reconfigure(errors="surrogateescape")
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise NeedleError(f"cannot read queries file {path}: {exc.strerror}") from None


def cmd_status(args: argparse.Namespace) -> int:
    from codeneedle import console

    # Of several, a PATH that is not there is reported in its place, as one without an index is: the others still are.
    missing: list[tuple[str, NeedleError]] | None = [] if _names_several(args) else None
    try:
        roots = roots_from(args, missing=missing)
    except NeedleError as exc:
        if not args.json:
            raise
        # Scripts read stdout: a path that is not there is a state too, not only a message on stderr.
        given = [*(args.path or []), *(args.path_option or [])]
        console.print_json({**({"root": given[0]} if len(given) == 1 else {}), "state": "none", "error": str(exc)})
        return 1
    lines = {where for where, _ in getattr(args, "collection_missing", ())}
    for given, exc in missing or ():
        if args.json:
            # A --collection line is named as `needle index --json` names it (it has no root to give).
            console.print_json({"collection" if given in lines else "root": given, "state": "none", "error": str(exc)})
        _error(exc)
    codes = [_status_one(args, root, console) for root in roots]
    return max([*codes, 1 if missing else 0])


def _status_one(args: argparse.Namespace, root: Path, console) -> int:
    from codeneedle.indexer.late_interaction import DEPTH as LATE_DEPTH

    try:
        with _open_index(args, root=root, create=False) as index:
            status = index.status()
    except IndexStartingError as exc:
        # Another process has just begun this index: a state, not a failure (scripts poll while it builds).
        if args.json:
            console.print_json({"root": str(root), "index_dir": str(settings_from(args).index_dir_for(root)),
                                "state": "indexing", "files": 0, "chunks": 0, "chunks_embedded": 0,
                                "message": str(exc)})
        else:
            sys.stdout.write(console.visible(f"{root}: indexing ({exc})") + "\n")
        return 0
    except IndexMissingError as exc:
        if not args.json:
            if _names_several(args):
                _error(exc)  # the others are still reported
                return 1
            raise
        # Scripts read stdout: "no index" is a state there too, not only a message on stderr.
        console.print_json({"root": str(root), "index_dir": str(settings_from(args).index_dir_for(root)),
                            "state": "none", "error": str(exc)})
        return 1
    except NeedleError as exc:
        # An index that cannot be read now (damaged, read-only folder, another schema): the error line as ever, and
        # under --json a state on stdout too, as for a missing one; the other repositories are still reported.
        if args.json:
            console.print_json({"root": str(root), "index_dir": str(settings_from(args).index_dir_for(root)),
                                "state": "error", "error": str(exc)})
        if args.json or _names_several(args):
            _error(f"{root}: {exc}" if _names_several(args) else exc)
            return 1
        raise
    if args.json:
        console.print_json(asdict(status))
        return 0
    console.print_table("Needle index", [
        ("root", status.root),
        ("index", status.index_dir),
        ("model", status.model),
        ("state", _state_line(status)),
        ("files", str(status.files)),
        ("chunks", str(status.chunks)),
        ("size", console.human_bytes(status.size_bytes) + (
            f" ({console.human_bytes(status.reclaimable_bytes)} reclaimable: `needle index --compact`)"
            if status.reclaimable_bytes else "")),
        ("last update", status.last_update or "never"),
        ("languages", ", ".join(f"{k} {v}" for k, v in status.languages.items()) or "-"),
        ("skipped", ", ".join(f"{k} {v}" for k, v in status.skipped.items()) or "none"),
        ("query tower", status.query_tower or "none (queries use the encoder's shared weights)"),
        ("query adapter", _adapter_line(status.query_adapter)),
        ("re-ranker", f"{status.reranker} (top {status.rerank_depth} re-scored; typed questions: late "
         f"interaction over the top {LATE_DEPTH} instead)" if status.reranker
         else "off (searches use the first stage alone)"),
        ("shared vectors", _shared_line(status.shared_cache, console)),
    ])
    return 0


def _shared_line(usage: dict | None, console) -> str:
    if usage is None:
        return "off (NEEDLE_EMBEDDING_CACHE=off: every index embeds its own)"
    return (f"{usage['path']}, {console.human_bytes(usage['bytes'])} of {console.human_bytes(usage['max_bytes'])} "
            "(vectors every index on this machine reuses)")


def _adapter_line(adapter: dict | None) -> str:
    if adapter is None:
        return "none (`needle train --repo DIR --adapter` fits one to the results you opened)"
    line = f"fitted {adapter.get('fitted', '?')} on {adapter.get('events', '?')} open events"
    if adapter.get("scale") == 0:
        line += " (a held-out check found nothing that carries to new queries: only repeated ones move)"
    elif "scale" in adapter:
        line += f", strength {adapter['scale']:g}"
    return line if adapter["in_use"] else f"{line}, for another model (unused: refit it)"


def _state_line(status) -> str:
    from codeneedle.indexer.progress import Completeness

    line = Completeness(status.state, status.chunks_embedded, status.chunks, other_model=status.other_model).message()
    if status.rebuild_due and not status.other_model:
        line += f"; {status.rebuild_due}: the next `needle index` or search reads every file again"
    return line


def cmd_watch(args: argparse.Namespace) -> int:
    """Update once, then absorb changes until interrupted, one line per batch: a live index plus the console."""
    import logging
    import time

    from codeneedle import console
    from codeneedle.indexer.index import Index
    from codeneedle.indexer.live import LiveEvents, LiveIndex

    class Events(LiveEvents):
        bar = None  # the first update's progress bar

        def message(self, level: int, text: str) -> None:
            if level == logging.WARNING:  # failures end the command with their own error line
                _notify(text)

        def progress(self, progress) -> None:
            if self.bar is not None:
                self.bar(progress)

        def batch(self, report) -> None:
            console.out.print(f"{time.strftime('%H:%M:%S')} {report.line()}")

        def batch_failed(self, exc: Exception) -> None:
            console.err.print(f"[red]needle: update failed:[/] {console.escape_text(str(exc))}")

    events = Events()
    # `needle watch` is the writer or a one-line refusal (IndexLockedError), before any progress bar.
    with Index.open(root_from(args), settings_from(args), notify=_notify, explicit=explicit_from(args),
                    asked=True) as index, index.writing():
        live = LiveIndex(index.root, index=index, events=events, lock_retry_s=None, debounce=args.debounce).start()
        try:
            with console.index_progress() as events.bar:
                live.refresh(wait=None)
            events.bar = None
            status = live.status(counts=False)
            if status.state == "error" or not status.watching:
                raise NeedleError(status.message or f"cannot watch {index.root}: file watching is unavailable")
            # Announced only once watching has really started (the live index rescans what changed meanwhile).
            files = index.reader().counts()[0]  # as `needle status` counts: a generated file read and left is none
            console.err.print(f"watching {console.escape_text(str(index.root))} ({files} files); Ctrl-C to stop")
            try:
                while index.root.is_dir():
                    time.sleep(1.0)
            except KeyboardInterrupt:
                pass
            else:
                # The project went (rm -rf, moved away): nothing is left to watch, and writing on would bring an
                # empty index back into its place.
                raise NeedleError(f"{index.root} was deleted or moved away; stopped watching")
        finally:
            live.close()
            live.wait_closed()
    return 0


def cmd_lsp(args: argparse.Namespace) -> int:
    from codeneedle.server.app import serve_stdio

    serve_stdio()
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from codeneedle.server.mcp_server import serve_mcp
    except ModuleNotFoundError as exc:
        if exc.name != "mcp" and not (exc.name or "").startswith("mcp."):
            raise
        # An optional extra: installed from the wheel alone, `needle mcp` was a two-screen traceback.
        raise NeedleError("`needle mcp` needs the MCP SDK, an optional part of Needle: pip install 'mcp>=2.3,<3' "
                          "into Needle's environment (or install Needle with its extra: pip install "
                          f"'codeneedle-{__version__}-py3-none-any.whl[mcp]')") from None

    check_rerank(args)
    # The server finds the root (find_root).
    serve_mcp(root=args.path, settings=settings_from(args), extra_roots=args.extra_root, explicit=explicit_from(args))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from codeneedle.cli_train import run_train

    return run_train(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from codeneedle.cli_train import run_eval

    return run_eval(args)


COMMANDS = {
    "index": cmd_index, "search": cmd_search, "similar": cmd_similar, "status": cmd_status, "watch": cmd_watch,
    "lsp": cmd_lsp, "mcp": cmd_mcp, "train": cmd_train, "eval": cmd_eval,
}


def _error(message: object) -> None:
    """``needle: error: ...`` on stderr. A message may name a path or a query: shown, not obeyed (``\x1b]52;...``
    in a file name would write the clipboard). ``visible`` is a leaf module: ``needle train --data`` runs without
    the console's rich."""
    from codeneedle.visible import visible

    sys.stderr.write(visible(f"needle: error: {message}") + "\n")


def _notify(message: str) -> None:
    from codeneedle import console

    console.err.print(f"[yellow]needle:[/] {console.escape_text(message)}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `needle` command."""
    if argv is None:
        from codeneedle.terminal_encoding import printable_streams, restart_in_utf8_mode

        restart_in_utf8_mode()
        printable_streams()
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        # `needle` alone: what it can do, not only "the following arguments are required: COMMAND".
        parser.print_help(sys.stderr)
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "path", None), list) and not any(e.startswith("-") for e in extra):
        # argparse fills the positionals from the first run of them only: in `needle search "q" -k 5 REPO` (or
        # `needle index a --quiet b`) the PATHs after an option came back as "unrecognized arguments". They are
        # the command's further PATHs, in the order given.
        args.path = [*args.path, *extra]
        extra = []
    if extra:
        # A typo'd option of a subcommand gets that subcommand's usage, not the top-level one.
        args.subparsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        native.require_numpy()  # every command needs it: an old CPU gets one line, not a traceback
        return COMMANDS[args.command](args)
    except NeedleError as exc:
        _error(exc)
        return 1
    except sqlite3.DatabaseError as exc:
        _error(f"the index database is damaged ({exc}); run `needle index` to repair it")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("needle: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
