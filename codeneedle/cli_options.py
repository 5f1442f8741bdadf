"""Command-line options shared by `needle`'s subcommands and `needle train`, mapped onto the one settings model.

Both ``codeneedle.cli`` and ``codeneedle.cli_train`` import this module (never each other).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

from codeneedle.indexer.settings import IndexSettings

# argparse destination -> IndexSettings field. A flag left out (None) keeps the base value.
FLAG_FIELDS = {"model": "model", "index_dir": "index_dir", "max_file_bytes": "max_file_bytes", "exclude": "exclude",
               "rerank": "rerank"}
# Fields that decide what an index holds; given on the command line they replace the stored ones (sticky.py).
STICKY_FLAGS = ("exclude", "max_file_bytes")


def byte_count(text: str) -> int:
    """argparse type of --max-file-bytes: a positive integer (0 or less would silently empty the index)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {value}")
    return value


def add_search_options(p: argparse.ArgumentParser) -> None:
    """--rerank/--no-rerank: whether the cross-encoder re-scores the first stage's top candidates."""
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None,
                   help="re-score the top candidates with the cross-encoder re-ranker (default: on when one is "
                        "installed: the shipped one, or $NEEDLE_RERANKER)")


def check_rerank(args: argparse.Namespace) -> None:
    """``--rerank`` asks for the re-ranker explicitly: without one installed that is an error, not a silent no-op
    (the default, "on when installed", quietly searches with the first stage alone)."""
    if getattr(args, "rerank", None) is True:
        from codeneedle.indexer.rerank import require_reranker

        require_reranker()


def add_index_options(p: argparse.ArgumentParser) -> None:
    """--index-dir, --model, --max-file-bytes, --exclude: the settings flags, one per model field."""
    p.add_argument("--index-dir", type=Path, help="where the index lives (default: <repo>/.needle)")
    p.add_argument("--model", help="encoder: needle-code-v3 (default when shipped), minilm, or a model folder")
    p.add_argument("--max-file-bytes", type=byte_count, default=None,
                   help="skip files larger than this (default 1 MiB; stored with the index)")
    p.add_argument("--exclude", action="append", default=None, metavar="GLOB",
                   help="extra gitignore-style pattern to leave out of the index (repeatable; stored with "
                        "the index and reused until given again; --exclude '' clears it)")


def settings_from(args: argparse.Namespace, base: IndexSettings | None = None) -> IndexSettings:
    """``base`` (default: the defaults) with every settings flag given on the command line (``attrs.evolve``)."""
    given = {field: value for flag, field in FLAG_FIELDS.items() if (value := getattr(args, flag, None)) is not None}
    if getattr(args, "no_feedback", False):
        given["feedback"] = False
    return attrs.evolve(base or IndexSettings(), **given)


def explicit_from(args: argparse.Namespace) -> set[str]:
    """The index-defining settings given on the command line (the others come from the stored index)."""
    return {name for name in STICKY_FLAGS if getattr(args, name, None) is not None}
