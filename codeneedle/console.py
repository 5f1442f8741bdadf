"""Terminal output for the CLI: progress bars on stderr, grep-like results, status tables."""

from __future__ import annotations

import codecs
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from codeneedle.indexer.regular_file import read_regular_file
from codeneedle.terminal_encoding import redraws
from codeneedle.visible import visible

if TYPE_CHECKING:  # type names only, from the leaf module (the pipeline's SQLite layer and chunker stay unloaded)
    from codeneedle.indexer.types import Progress as IndexProgress
    from codeneedle.indexer.types import SearchResult



class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (``needle search ... | head -1``): rich exits with status 1 here, which failed
        every ``set -o pipefail`` script. Output goes to /dev/null from now on (nothing fails at exit) and the
        BrokenPipeError is raised on, for ``main`` to end with 0 as a closed pipe should."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, (sys.stderr if self.stderr else sys.stdout).fileno())
        os.close(devnull)
        raise BrokenPipeError


# Soft wrap: a message in a log or a pipe stays one line (rich would cut it at 80 columns off a terminal). No emoji
# codes: an Objective-C selector (initWithItems:repeat:) or a Ruby symbol pair would print as a picture.
err = _Console(stderr=True, soft_wrap=True, emoji=False, force_interactive=redraws(sys.stderr))
out = _Console(highlight=False, soft_wrap=True, emoji=False)


@contextmanager
def index_progress(enabled: bool = True) -> Iterator:
    """A rich progress bar fed by pipeline Progress snapshots: files while reading and chunking them (keyword
    search works once this is done), then chunks while embedding, with the rate and the ETA."""
    if not enabled:
        yield lambda p: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        # Off a terminal (a pipe, a log, TERM=dumb) only the last state is written: a line of bar glyphs there was
        # noise in every CI log ("done ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 680/680 chunks").
        *([BarColumn()] if err.is_interactive else []),
        # "done/total " once a total is known: a scan, or a run with nothing to read, has none to show
        TextColumn("[green]{task.fields[count]}[/]{task.fields[unit]}{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    with bar:
        task = bar.add_task("scanning", total=None, count="", unit="files", detail="")
        log = _ProgressLog(bar.console) if not err.is_interactive else None

        def update(p: IndexProgress) -> None:
            if log is not None:
                log.update(p)
            if p.phase == "embed":
                from codeneedle.indexer.progress import embed_pace

                detail = embed_pace(p.rate, p.eta_s, p.chunks_embedded, sep=" · ")
                bar.update(task, description="embedding", total=p.chunks_to_embed or None,
                           completed=p.chunks_embedded, count=_count(p.chunks_embedded, p.chunks_to_embed),
                           unit="chunks", detail=detail)
            elif p.phase in ("scan", "index"):
                bar.update(task, description="reading" if p.phase == "index" else "scanning",
                           total=p.files_total or None, completed=p.files_done,
                           count=_count(p.files_done, p.files_total), unit="files", detail="")
            elif p.phase == "done" and bar.tasks[0].total is None:  # nothing was read or embedded
                bar.update(task, description="done", total=1, completed=1, count="", unit="up to date", detail="")
            elif p.phase == "done":  # an ETA of 0:13 beside "done" reads as work left undone
                bar.update(task, description="done", detail="")
            else:  # the rate and ETA of the embedding done: beside "saving" (seconds on a big index) they read as hung
                bar.update(task, description="saving", detail="")

        yield update


class _ProgressLog:
    """Off a terminal the live bar is drawn once, at the end: a 15-minute build of a big repository wrote nothing
    to a CI log or a redirected stderr until it finished (no count, no rate, no ETA: it looked hung). There, a plain
    line is written when the phase changes and then every ``every_s`` seconds: ``embedding 12000/52745 chunks,
    98.1/s, ETA 5:55``."""

    def __init__(self, console: Console, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.console, self.every_s, self.clock = console, every_s, clock
        self.phase, self.last = "", 0.0

    def update(self, p: IndexProgress) -> None:
        if p.phase in ("scan", "done", "save"):
            return  # the final line is the bar's own; a scan says nothing worth a line
        now = self.clock()
        if p.phase == self.phase and now - self.last < self.every_s:
            return
        if not (p.chunks_to_embed if p.phase == "embed" else p.files_total):
            return  # nothing to do in this phase (an index already up to date)
        from codeneedle.indexer.progress import progress_text

        text, _ = progress_text(p.phase, p.files_done, p.files_total, p.chunks_embedded, p.chunks_to_embed,
                                p.rate, p.eta_s)
        self.phase, self.last = p.phase, now
        self.console.print(text, markup=False, highlight=False)


def _count(done: int, total: int) -> str:
    return f"{done}/{total} " if total else ""


def print_results(results: list[SearchResult], root: str | os.PathLike[str] = "", lines: int = 1) -> None:
    """grep-like lines for people: ``path:line: name  (kind, score)`` then the first ``lines`` lines of its code
    (numbered when more than one; 0: none); a note on stderr when even the best score is below the "good match"
    line. A notebook's result names its cell too (``cell 2, line 5``): the line is the ``.ipynb`` file's, which a
    notebook editor does not show.

    Paths open from the current folder: relative to it for files below it, absolute for the others (``../..``
    chains are harder to read than the path itself). ``root`` is the indexed root of results without a ``repo``.
    """
    from codeneedle.indexer.scores import no_match_note  # numpy and the store: only once there are results

    if not results:
        err.print("no results")
    elif (note := no_match_note(results)) is not None:
        err.print(f"[yellow]{note}[/]", highlight=False)
    for r in results:
        base = getattr(r, "repo", "") or root  # a multi-repository result names its repository
        path = _openable(os.path.join(base, r.path)) if base else r.path
        cell = f"; cell {r.cell}, line {r.cell_start_line}" if r.cell else ""
        out.print(f"[magenta]{escape_text(path)}[/]:[green]{r.start_line}[/]: [bold]{escape_text(r.name)}[/]  "
                  f"[dim]({escape_text(r.kind)}, {escape_text(r.language)}, {r.score:.3f}{cell})[/]")
        if lines == 1:
            first = r.snippet.split("\n")[0].strip() if r.snippet else ""  # the snippet's own breaks
            if first:
                out.print(f"    [dim]{escape_text(first, code=True)}[/]")
        elif lines > 1:
            for number, text in _code_lines(r, os.path.join(base, r.path) if base else r.path, lines, base):
                more = f" [dim]… +{len(text) - MAX_COLUMNS} characters[/]" if len(text) > MAX_COLUMNS else ""
                out.print(f"  [green]{number:>5}[/] {escape_text(text[:MAX_COLUMNS], code=True)}{more}", highlight=False)


# A code line of -n is shown up to this many characters (ripgrep's --max-columns, as people set it): a line of a
# data table or an inlined asset (690 KB in one line, whose file is not "minified" for having spaces) printed
# whole buried every other result; the snippet of the default view is already short.
MAX_COLUMNS = 500


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # where a file's lines end (the snippets' own breaks)


def _code_lines(r: SearchResult, path: str, limit: int, root: str | os.PathLike[str] = "") -> list[tuple[int, str]]:
    """The first ``limit`` lines of a result's code, numbered, as the file now reads (its snippet where the file
    cannot be read, lies outside ``root``, or is a notebook's JSON), tokens redacted as in every snippet."""
    from codeneedle.indexer.secrets import redact_secrets
    from codeneedle.indexer.source_encoding import display_text

    count = min(limit, r.end_line - r.start_line + 1)
    if not r.cell and inside(root, path):
        # A regular file only, of a bounded size: a FIFO or /dev/zero where a stale index had a file hung the
        # command or ran out of memory (else the snippet)
        data = read_regular_file(path)
        if data is not None:
            # Redacted as a whole, as the index stored it: the lines printed the raw AWS and GitHub tokens that
            # the snippets of --json, the editors and MCP hide (a key block keeps its line count).
            text = _LINE_BREAK.split(redact_secrets(display_text(data)), r.start_line - 1 + count)
            if len(text) >= r.start_line:
                return list(enumerate(text[r.start_line - 1 : r.start_line - 1 + count], r.start_line))
    start = r.cell_start_line if r.cell else r.start_line
    return list(enumerate(r.snippet.split("\n")[:count], start))


def inside(root: str | os.PathLike[str], path: str) -> bool:
    """Whether ``path`` resolves inside ``root`` (no root: nothing to hold it to). A file swapped for a link to
    ~/.ssh since it was indexed, or a path like ``../../x`` in an index that came with a repository, is not read:
    the walker never reads such a file, and neither does the display."""
    if not root:
        return True
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def _openable(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except OSError:  # the current folder was deleted: only the absolute path means anything
        return path
    return path if relative == ".." or relative.startswith("../") else relative


def print_json(obj) -> None:
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
        if codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name != "utf-8":
            raise UnicodeEncodeError("utf-8", "", 0, 0, "an output in another encoding")
    except (UnicodeEncodeError, LookupError):
        # A path with bytes that are not UTF-8 holds lone surrogates: written raw they would make the output invalid
        # UTF-8, so such an object is written with \u escapes (\udcff), which Python's and most JSON readers take.
        # So is any object on an output that is not UTF-8 (a Latin-1 terminal, PYTHONIOENCODING=ascii): JSON in
        # Latin-1 (`caf\xe9`) is no JSON to jq or any other reader, and ASCII is the same text in every encoding.
        text = json.dumps(obj)
    if not text.isascii():
        text = _UNPRINTABLE.sub(_json_escape, text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# JSON escapes only ASCII controls: DEL, C1 controls (U+009B is an 8-bit CSI), bidi overrides (U+202E: Trojan
# Source, which a terminal with bidi support reorders), zero-width and other format characters came out raw. They
# are written as \u escapes: the text a JSON reader gets is the same, a terminal showing the JSON gets no control.
_UNPRINTABLE = re.compile("[^\x00-\x7e]")


def _json_escape(match: re.Match[str]) -> str:
    ch = match[0]
    return ch if ch.isprintable() else json.dumps(ch)[1:-1]  # "\u202e", or a surrogate pair past the BMP


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # a path wider than the terminal wraps: cut with an ellipsis, it named nothing
    for key, value in rows:
        table.add_row(escape_text(key), escape_text(value))
    out.print(table)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def escape_text(text: str, code: bool = False) -> str:
    r"""``text`` safe to print: rich markup (``a[/]b.py``) escaped, and control characters (a newline in a file
    name would forge a result line, an escape sequence would drive the terminal) shown as ``\n``, ``\x1b``; a tab
    too, but in ``code`` (indentation), where it is expanded to its tab stop."""
    from rich.markup import escape

    text = visible(text, code)
    body = text.rstrip("\\")
    if len(body) == len(text):
        return escape(text)
    # Backslashes before a tag escape it (two print one), anywhere else they print as they are, and rich's escape()
    # adds one to an odd run at the end: `x\` printed `x\\` at the end of a line, `x\\` before [/] printed `x\`,
    # and `x\\\` before [/] printed the tag itself. Doubled and closed by an empty span of their own, a name's
    # trailing backslashes print as written whatever follows them.
    return escape(body) + "\\" * (2 * (len(text) - len(body))) + "[none][/none]"
