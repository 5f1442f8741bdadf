"""Open events (``codeneedle.indexer.feedback``) -> training triplets for `needle train --repo`.

The opened result is the positive for the query; the results ranked above it that the user passed over are
its hard negatives (the training loop adds up to two of them to the query's InfoNCE candidates). Chunks are
found again in the current working tree by path and first line (or by name when the file moved lines), and
rendered with ``embed_text`` exactly as the index embeds them.
"""

from __future__ import annotations

from pathlib import Path

from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.encoder import embed_text
from codeneedle.indexer.feedback import match_shown, read_events


def _chunks(repo: Path, rel: str, cache: dict[str, list[Chunk]]) -> list[Chunk]:
    if rel not in cache:
        from codeneedle.indexer.chunker import chunk_source
        from codeneedle.indexer.languages import language_for_path, language_for_source

        cache[rel] = []
        path = (repo / rel).resolve()
        if language_for_path(rel) and path.is_relative_to(repo) and path.is_file():  # never read outside the repository
            try:
                data = path.read_bytes()
            except OSError:
                return cache[rel]
            # As the index read it: an Objective-C or C++ `.h` header is not C, a MATLAB `.m` file not Objective-C.
            language = language_for_source(rel, data)
            if language:
                cache[rel] = chunk_source(rel, data, language)
    return cache[rel]


def _find(repo: Path, shown: dict, cache: dict[str, list[Chunk]]) -> Chunk | None:
    rel, line, name = str(shown.get("path", "")), shown.get("start_line"), shown.get("name") or ""
    if not rel or not isinstance(line, int):
        return None
    return match_shown(_chunks(repo, rel, cache), line, name)


def feedback_records(repo: Path, index_dir: Path, repo_id: str) -> list[dict]:
    """Training records from the repository's open events, newest event per (query, opened result) kept."""
    repo = Path(repo).resolve()
    cache: dict[str, list[Chunk]] = {}
    seen: set[tuple[str, str, int]] = set()
    out = []
    for event in reversed(read_events(index_dir)):
        opened = _find(repo, event["opened"], cache)
        if opened is None:
            continue
        key = (event["query"].lower(), opened.path, opened.start_line)
        if key in seen:
            continue
        seen.add(key)
        negatives = [embed_text(c) for c in (_find(repo, s, cache) for s in event.get("above", ())
                                             if isinstance(s, dict))
                     if c is not None and c.text != opened.text]
        out.append({"repo": repo_id, "language": opened.language, "path": opened.path, "name": opened.name,
                    "query": event["query"], "query_style": "feedback", "code_variant": "index",
                    "code": embed_text(opened), "code_plain": opened.text, "doc_query": event["query"],
                    "negatives": negatives})
    return out
