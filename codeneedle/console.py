"""Terminal output for the CLI: progress bars on stderr, grep-like results, status tables."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from codeneedle.indexer.pipeline import Progress as IndexProgress
from codeneedle.indexer.scores import no_match_note
from codeneedle.indexer.search import SearchResult

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


@contextmanager
def index_progress(enabled: bool = True) -> Iterator:
    """A rich progress bar (files, chunks embedded, chunks/s, ETA) fed by pipeline Progress snapshots."""
    if not enabled:
        yield lambda p: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks embedded · {task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    started = time.perf_counter()
    with bar:
        task = bar.add_task("scanning", total=None, chunks=0, rate="0.0")

        def update(p: IndexProgress) -> None:
            rate = p.chunks_embedded / max(time.perf_counter() - started, 1e-6)
            description = {"scan": "scanning", "index": "indexing", "save": "saving", "done": "done"}[p.phase]
            bar.update(task, description=description, total=p.files_total or None, completed=p.files_done,
                       chunks=p.chunks_embedded, rate=f"{rate:.1f}")

        yield update


def print_results(results: list[SearchResult]) -> None:
    """grep-like lines for people: ``path:line: name  (kind, score)`` then the first snippet line; a note on
    stderr when even the best score is below the "good match" line."""
    if not results:
        err.print("no results")
    elif (note := no_match_note(results)) is not None:
        err.print(f"[yellow]{note}[/]", highlight=False)
    for r in results:
        first = r.snippet.splitlines()[0].strip() if r.snippet else ""
        out.print(f"[magenta]{r.path}[/]:[green]{r.start_line}[/]: [bold]{r.name}[/]  "
                  f"[dim]({r.kind}, {r.language}, {r.score:.3f})[/]")
        if first:
            out.print(f"    [dim]{_escape(first)}[/]")


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
