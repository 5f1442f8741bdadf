"""Many repositories searched as one: each keeps its own index (shard); results are merged by score.

A shard is an ordinary ``Index`` (SQLite + usearch in the repository's own ``.needle``), so every
single-repository feature keeps working on each. A search encodes the query once per model, asks every
shard in parallel (a persistent thread pool, so each thread keeps its SQLite read connections) and merges
the shards' results by the ``score`` they carry, each result naming its repository.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from codeneedle.errors import NeedleError
from codeneedle.indexer.index import Index
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.types import SearchResult

# Shard searches are mostly SQLite and usearch calls that release the GIL; more threads than this only
# queue on a small machine's cores.
MAX_SEARCH_THREADS = 8


@dataclass(frozen=True, slots=True)
class RepoResult(SearchResult):
    """A search result plus the repository (absolute root) it comes from; ``path`` is relative to it."""

    repo: str = ""


def read_collection(file: str | os.PathLike[str]) -> list[Path]:
    """Repository folders listed in ``file``, one per line; blank lines and ``#`` comments are skipped.

    Relative paths are taken relative to the file's own folder, so a collection file travels with its tree.
    """
    path = Path(file).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NeedleError(f"cannot read collection file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    roots = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        root = Path(entry).expanduser()
        root = root if root.is_absolute() else path.parent / root
        if not root.is_dir():
            raise NeedleError(f"{path}:{number}: not a folder: {entry}")
        roots.append(root)
    if not roots:
        raise NeedleError(f"collection file {path} lists no repository")
    return roots


def unique_roots(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Resolved roots in the order given, each once (``--path a --path ./a`` is one repository)."""
    out: dict[Path, None] = {}
    for root in roots:
        out[Path(root).expanduser().resolve()] = None
    return list(out)


class Collection:
    """Open indexes over several repositories, searched together."""

    def __init__(self, indexes: Sequence[Index]):
        self.indexes = list(indexes)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_SEARCH_THREADS, len(self.indexes))),
                                        thread_name_prefix="needle-shard")

    @classmethod
    def open(cls, roots: Iterable[str | os.PathLike[str]], settings: IndexSettings | None = None, *,
             create: bool = True, notify: Callable[[str], None] | None = None,
             explicit: Iterable[str] | None = None) -> Collection:
        """Open the index of every repository in ``roots`` (closing those already opened if one fails)."""
        settings = settings or IndexSettings()
        roots = unique_roots(roots)
        if settings.index_dir is not None and len(roots) > 1:
            raise NeedleError("--index-dir names one repository's index; leave it out to search several")
        opened: list[Index] = []
        try:
            for root in roots:
                opened.append(Index.open(root, settings, create=create, notify=notify, explicit=explicit))
        except BaseException:
            for index in opened:
                index.close()
            raise
        return cls(opened)

    def search(self, query: str, k: int = 10, lang=None, glob=None, exclude=None) -> list[RepoResult]:
        """The best ``k`` results over every shard, best first (ties keep the order the shards were given)."""
        return search_indexes(self.indexes, query, k, lang, glob, exclude=exclude, pool=self._pool)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for index in self.indexes:
            index.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def search_indexes(indexes: Sequence[Index], query: str, k: int = 10, lang=None, glob=None, *, exclude=None,
                   pool: ThreadPoolExecutor | None = None) -> list[RepoResult]:
    """Search every index (in ``pool``, else a pool made for this call) and merge by score."""
    if not query.strip() or k <= 0 or not indexes:
        return []
    # One query vector per model: shards built with the same encoder (the usual case) share it.
    vectors = {}
    for index in indexes:
        if index.model_id not in vectors:
            vectors[index.model_id] = index.encoder.encode_queries([query])[0]

    def one(index: Index) -> list[SearchResult]:
        return index.search(query, k=k, lang=lang, glob=glob, exclude=exclude, qvec=vectors[index.model_id])

    if pool is None:
        with ThreadPoolExecutor(max_workers=min(MAX_SEARCH_THREADS, len(indexes))) as own:
            per_shard = list(own.map(one, indexes))
    else:
        per_shard = list(pool.map(one, indexes))
    hits = [(r.score, n, rank, RepoResult(**r.to_dict(), repo=str(index.root)))
            for n, (index, results) in enumerate(zip(indexes, per_shard, strict=True))
            for rank, r in enumerate(results)]
    hits.sort(key=lambda h: (-h[0], h[1], h[2]))
    return [h[3] for h in hits[:k]]
