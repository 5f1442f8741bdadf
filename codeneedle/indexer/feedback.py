"""Which result a user opened for a query: a small local log in the index folder, for `needle train --repo`.

Each line of ``<index>/feedback.jsonl`` is one open event: the query, the result opened and the results that
were ranked above it (seen and passed over). Nothing leaves the machine; the log is bounded (the oldest
events go first once it passes ``MAX_BYTES``); ``NEEDLE_FEEDBACK=off`` (or the editors' ``feedback`` setting,
or ``needle search --no-feedback``) turns recording off.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

LOG_NAME = "feedback.jsonl"
MAX_BYTES = 512 * 1024  # some 2,000 events; training uses the newest
MAX_ABOVE = 20
MAX_QUERY_CHARS = 500

T = TypeVar("T")  # a Chunk, or a ChunkRow of the store: anything with start_line and name


@dataclass(frozen=True, slots=True)
class Shown:
    """A result as the user saw it: a path relative to the root, its first line (1-based) and its name."""

    path: str
    start_line: int
    name: str = ""


def enabled(setting: bool = True) -> bool:
    """Recording is on unless the caller's setting or ``NEEDLE_FEEDBACK`` (0/off/false/no) turns it off."""
    env = os.environ.get("NEEDLE_FEEDBACK", "").strip().lower()
    return setting and env not in ("0", "off", "false", "no")


def record_open(index_dir: Path, query: str, opened: Shown, above: Sequence[Shown] = (), setting: bool = True,
                max_bytes: int = MAX_BYTES) -> bool:
    """Append one open event; returns False when recording is off or the event is unusable (no query)."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not enabled(setting) or not query or opened.start_line < 1 or not opened.path:
        return False
    event = {"t": round(time.time()), "query": query, "opened": asdict(opened),
             "above": [asdict(s) for s in above[:MAX_ABOVE] if (s.path, s.start_line) != (opened.path,
                                                                                           opened.start_line)]}
    line = json.dumps(event, ensure_ascii=False) + "\n"
    try:
        data = line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (not valid Unicode): no UTF-8 log can hold it
        return False
    index_dir.mkdir(parents=True, exist_ok=True)
    log = index_dir / LOG_NAME
    # The queries a user typed are theirs alone (as a shell's history is), and never appended through a link
    # (a planted feedback.jsonl -> elsewhere had them written there): O_NOFOLLOW fails on one.
    fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "ab") as fh:  # one short append: concurrent writers do not interleave
        st = os.fstat(fd)
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # a log written before it was kept private
        if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
            # An append a full disk cut short left half a line: without a line break of its own, this event joined
            # it and was lost with it (each damaged line is skipped when read).
            data = b"\n" + data
        fh.write(data)
    if log.stat().st_size > max_bytes:
        _trim(log, max_bytes * 3 // 4)
    return True


def _trim(log: Path, keep_bytes: int) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    kept: list[bytes] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) > keep_bytes:
            break
        kept.append(line)
        size += len(line)
    # A temp file of its own: the language server and a CLI run may trim the same log at once.
    fd, tmp = tempfile.mkstemp(dir=log.parent, prefix=log.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(reversed(kept)))
        os.replace(tmp, log)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_events(index_dir: Path) -> list[dict]:
    """Every well-formed event of the log, oldest first (damaged lines are skipped)."""
    log = index_dir / LOG_NAME
    if not log.is_file():
        return []
    events = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and isinstance(e.get("query"), str) and isinstance(e.get("opened"), dict):
            events.append(e)
    return events


def match_shown(chunks: Sequence[T], line: int, name: str) -> T | None:
    """The chunk of one file a logged result names: by its first line, or by name when the file moved lines."""
    return (next((c for c in chunks if c.start_line == line), None)
            or next((c for c in chunks if name and c.name == name), None))
