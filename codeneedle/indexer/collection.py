"""Many repositories searched as one: each keeps its own index (shard); the ranked lists are merged.

A shard is an ordinary ``Index`` (SQLite + usearch in the repository's own ``.needle``), so every
single-repository feature keeps working on each. A search encodes the query once per model, ranks each
shard in turn, merges the shards' ranked hits by their heads (``merge_ranked``: each shard keeps its order)
and builds results (snippets) for the winners only, each naming its repository.

Shards are searched one after another, not on threads: a shard's search is mostly Python, and on threads
each SQLite or usearch call gave up the GIL and waited to take it back. 10 shards of 265 chunks on 2 cores:
34.6 ms on 8 threads, 23.7 ms in turn (one shard 10.3 ms); encoding the query on a thread of its own while
the shards' BM25 ran lost 0.5 ms the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeneedle.errors import NeedleError
from codeneedle.indexer.filters import globs_from_folder, within_of
from codeneedle.indexer.index import Index, check_query_length
from codeneedle.indexer.merge import head_score, held_by_inner, inner_roots, merge_ranked
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.types import SearchResult


@dataclass(frozen=True, slots=True)
class RepoResult(SearchResult):
    """A search result plus the repository (absolute root) it comes from; ``path`` is relative to it."""

    repo: str = ""


def read_collection(file: str | os.PathLike[str],
                    missing: list[tuple[str, NeedleError]] | None = None) -> list[Path]:
    """Repository folders listed in ``file``, one per line; blank lines and ``#`` comments are skipped.

    Relative paths are taken relative to the file's own folder, so a collection file travels with its tree.
    ``missing``: where a line that names no folder goes, as (``file:line``, error), the others still returned
    (else it is the error); a file none of whose lines names a folder is an error all the same.
    """
    path = Path(file).expanduser()
    try:
        # File names are bytes: one that is not UTF-8 is kept as it is (surrogate escapes, as os.listdir does).
        lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NeedleError(f"cannot read collection file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    roots = []
    gone: list[tuple[str, NeedleError]] = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        root = Path(entry).expanduser()
        root = root if root.is_absolute() else path.parent / root
        if not root.is_dir():
            error = NeedleError(f"{path}:{number}: not a folder: {entry}")
            if missing is None:
                raise error
            gone.append((f"{path}:{number}", error))
            continue
        roots.append(root)
    if not roots:
        raise gone[0][1] if gone else NeedleError(f"collection file {path} lists no repository")
    if missing is not None:
        missing.extend(gone)
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

    def search(self, query: str, k: int = 10, lang=None, glob=None, exclude=None, kind=None,
               within: Sequence[Path] | None = None, here: Path | None = None) -> list[RepoResult]:
        """The best ``k`` results over every shard, best first (ties keep the order the shards were given).
        ``within``: folders or files (absolute paths) the results must be in; None for everything. ``here``: the
        folder (absolute) that ``./`` globs start from in the repository holding it (a shell's current folder)."""
        return search_indexes(self.indexes, query, k, lang, glob, exclude=exclude, kind=kind, within=within,
                              here=here)

    def close(self) -> None:
        for index in self.indexes:
            index.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def glob_note(indexes: Sequence[Index | None], glob) -> str | None:
    """``Index.glob_note`` over several repositories: said when no repository has a file the glob matches (one is
    enough for the glob to be right), else None. A None entry is a repository not open yet."""
    notes = [index.glob_note(glob) if index is not None else None for index in indexes]
    return notes[0] if notes and all(notes) else None


def _globs_here(root: Path, here: Path | None, glob, exclude) -> tuple:
    """(glob, exclude) of one repository's search: ``./`` globs read from ``here`` where that is inside ``root`` (a
    search run from a folder of one repository: as that repository's own search reads them), else from the root."""
    if here is None or not here.is_relative_to(root):
        return glob, exclude
    folder = here.relative_to(root).as_posix()
    return globs_from_folder(glob, folder), globs_from_folder(exclude, folder)


def within_each(indexes: Sequence[Index], within: Sequence[Path]) -> list[tuple[str, ...] | None]:
    """For each index, what of it a search narrowed to ``within`` covers (``filters.within_of``)."""
    return [within_of(index.root, within) for index in indexes]


def search_indexes(indexes: Sequence[Index], query: str, k: int = 10, lang=None, glob=None, *,
                   exclude=None, kind=None, within: Sequence[Path] | None = None,
                   here: Path | None = None) -> list[RepoResult]:
    """The best ``k`` results over every index (ties go to the index given first); ``within``, ``here``: as
    :meth:`Collection.search`."""
    if within is not None:
        narrowed = within_each(indexes, within)
        kept = [(index, paths) for index, paths in zip(indexes, narrowed, strict=True) if paths is not None]
        indexes = [index for index, _ in kept]
        inner_within = [paths for _, paths in kept]
    else:
        inner_within = [() for _ in indexes]
    if not query.strip() or k <= 0 or not indexes:
        return []
    check_query_length(query)  # before the query is encoded once for all of them
    # One query vector per model: shards built with the same encoder (the usual case) share it.
    vectors = {}
    for index in indexes:
        if index.model_id not in vectors:
            vectors[index.model_id] = index.encoder.encode_queries([query])[0]
    inner_of = inner_roots([index.root for index in indexes])
    per_shard = [[(n, hit) for hit in index.hits(query, k, lang, *_globs_here(index.root, here, glob, exclude),
                                                 qvec=vectors[index.model_id], kind=kind, within=paths)
                  if not held_by_inner(hit.row.path, inner)]
                 for n, (index, inner, paths) in enumerate(zip(indexes, inner_of, inner_within, strict=True))]
    return [RepoResult(**hit.result().to_dict(), repo=str(indexes[n].root))
            for n, hit in merge_ranked(per_shard, k, score=lambda t: head_score(t[1]))]
