"""What a user opened for a query before comes first when they search it again.

The feedback log (``feedback.py``) says which result was opened for which query. Searching the same words again
(case and spacing aside) puts those results first, the most often opened first, then the most recent; a result
is found again by path and first line, or by name when its file moved lines, and only when the search's filters
allow it. The query adapter generalises from the same log; this is the part that needs no generalising.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from codeneedle.indexer.feedback import LOG_NAME, match_shown, read_events
from codeneedle.indexer.reloaded import Reloaded
from codeneedle.indexer.search import Filters
from codeneedle.indexer.store import ChunkRow, Store

MAX_REMEMBERED = 3  # results put first for one query: what a user opened most often, not every click


def query_key(query: str) -> str:
    return " ".join(query.lower().split())


class RememberedOpens:
    """The log's opened results by query, re-read when the log changes (a stat per search is all it costs)."""

    def __init__(self, index_dir: Path):
        self._log = Reloaded(index_dir / LOG_NAME, lambda path: _by_query(read_events(path.parent)), {})

    def for_query(self, query: str) -> list[tuple[str, int, str]]:
        """``(path, start_line, name)`` opened for ``query``, best remembered first."""
        return self._log.get().get(query_key(query), [])


def _by_query(events: list[dict]) -> dict[str, list[tuple[str, int, str]]]:
    counts: dict[str, Counter] = {}
    last: dict[tuple[str, tuple], int] = {}
    for n, event in enumerate(events):
        opened = event["opened"]
        path, line, name = opened.get("path"), opened.get("start_line"), opened.get("name") or ""
        if not isinstance(path, str) or not isinstance(line, int):
            continue
        key, result = query_key(event["query"]), (path, line, str(name))
        counts.setdefault(key, Counter())[result] += 1
        last[key, result] = n
    return {key: sorted(c, key=lambda r, key=key, c=c: (-c[r], -last[key, r]))[:MAX_REMEMBERED]
            for key, c in counts.items()}


def put_first(store: Store, found: list[tuple[int, float, ChunkRow]], remembered: list[tuple[str, int, str]],
              filters: Filters) -> list[tuple[int, float, ChunkRow]]:
    """``found`` with the remembered results that are still indexed (and allowed by ``filters``) moved to the
    front, in the order remembered; the others keep their order."""
    first: list[tuple[int, float, ChunkRow]] = []
    for path, line, name in remembered:
        row = match_shown(store.chunks_in_file(path), line, name)
        if row is None or (filters and not filters.allows(row.path, row.language, row.kind)):
            continue
        if all(cid != row.id for cid, _, _ in first):
            first.append(next(((cid, s, r) for cid, s, r in found if cid == row.id), (row.id, 0.0, row)))
    if not first:
        return found
    ids = {cid for cid, _, _ in first}
    return first + [hit for hit in found if hit[0] not in ids]
