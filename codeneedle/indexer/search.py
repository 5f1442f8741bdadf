"""Query -> results: dense nearest neighbours fused with FTS5 BM25 by reciprocal rank fusion."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeneedle.errors import NeedleError
from codeneedle.indexer import cjk
from codeneedle.indexer.filters import check_languages, path_allowed, path_within
from codeneedle.indexer.formats import FORMAT_ALIASES, format_of
from codeneedle.indexer.ranking import apply_rules
from codeneedle.indexer.secrets import redact_secrets
from codeneedle.indexer.store import ChunkRow, Store
from codeneedle.indexer.types import SearchResult
from codeneedle.indexer.vectors import VectorIndex

RRF_K = 60
DENSE_WEIGHT = 1.0
# Measured on CoSQA dev with needle-code-v1 (bench/cosqa_search.py --weights): for questions in words BM25 is
# a weak ranker (MRR 0.33 vs 0.52 dense); weight 0 -> MRR 0.516 R@10 0.822, 0.05 -> 0.508/0.832, 0.1 ->
# 0.499/0.828. 0.05 keeps the best R@10 (what a result list shows) and a lexical tie-breaker for names at
# -0.008 MRR. For identifiers BM25 is the ranker that knows exact names. So the weight follows the query.
LEXICAL_WEIGHT = 0.05
IDENTIFIER_LEXICAL_WEIGHT = 1.0
# A query in Chinese, Japanese or Korean is ranked by its words: the encoder, trained on English, reads those
# scripts barely better than chance. bench/non_english.py --split dev --sweep (2026-12-07, 251 queries recalled
# from Chinese doc comments): keyword weight 1 -> 0.515, 4 -> 0.729, 16 -> 0.887, 32 -> 0.923, 64 -> 0.955 and no higher
# at 128 or 1000 (BM25 alone 0.961, dense alone 0.143); queries in words the code does not hold score ~0.05 at any.
CJK_LEXICAL_WEIGHT = 64.0
# The same for a query in another alphabet than the Latin one (Cyrillic, Greek, Hebrew, Arabic, the Indic scripts):
# on the dev half of bench/non_english.py's Russian queries (2026-12-08, 703 recalled and 703 described), the
# keyword weight 1 / 4 / 16 / 32 gave 0.928 / 0.955 / 0.968 / 0.971 recalled and 0.777 / 0.799 / 0.793 / 0.790
# described (sum best at 16); the weights of English queries (0 for a short question) gave 0.901 and 0.773.
OTHER_SCRIPT_LEXICAL_WEIGHT = 16.0
_NON_LATIN_LETTER = re.compile("[\u0370-\u052f\u0530-\u058f\u0590-\u06ff\u0900-\u0dff\u10a0-\u10ff]")
# A short question in words ("python get file size", "retry with backoff") is ranked by meaning alone; a longer
# sentence keeps the small BM25 share (its words meet the code's names and comments). Dev split and CoSQA dev,
# needle-code-v3, 2026-12-05: BM25 off up to 10 words -> doc-comment queries 0.758 -> 0.755, CoSQA dev 0.522 ->
# 0.543 (the mean of the two 0.640 -> 0.649; off for every query: 0.753 / 0.542; up to 6 words: 0.754 / 0.534).
SHORT_QUESTION_WORDS = 10
# A full stop, "e.g." or a colon is prose too: only a dot inside a name (os.path) or `::` marks code. When any "."
# counted, a sentence with a full stop got the identifier weight (dev split doc queries: micro 0.656 -> 0.691
# once it did not; CoSQA's questions carry no full stops).
_CODE_LIKE = re.compile(r"[_()\[\]<>{}#$/]|\w\w\.[A-Za-z_]|::|[a-z][A-Z]|^\S+$")
# A sentence that mentions a name ("Returns the most recently computed `QueryObserverResult` for the observed
# query", "GetBool return the bool value of a flag") is still prose: with four plain words or more it is weighted
# as a sentence in words, and the name keeps BM25's small share. Dev split (15 repositories, 985 queries),
# needle-code-v3, 2026-12-05: doc-comment queries 0.618 -> 0.630 (TypeScript 0.624 -> 0.642, Go 0.843 -> 0.857),
# exact names and CoSQA dev unchanged; from 3 to 6 plain words and weights from 0.05 to 0.15 all scored
# 0.627-0.630, and the short-question rule's 0 for such sentences 0.628.
_PLAIN_WORD = re.compile(r"^[A-Za-z][a-z]*[,.;:!?]?$")
PROSE_WORDS = 4
# Below this many candidate chunks a filtered search is exact (brute force) rather than over-fetched ANN.
EXACT_FILTER_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict results by language (any of), a path glob and exclude globs (gitignore-style wildcards), chunk
    kind (any of), and folders or files of the repository (any of: ``filters.within_paths``)."""

    languages: tuple[str, ...] = ()
    glob: str | None = None
    exclude: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    within: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.languages or self.glob or self.exclude or self.kinds or self.within)

    def allows(self, path: str, language: str | None, kind: str) -> bool:
        if self.languages and (language or "text") not in self.languages and format_of(path) not in self.languages:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        return path_within(path, self.within) and path_allowed(path, self.glob, self.exclude)


def parse_languages(lang: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"py,go"`` or ``["python"]`` -> canonical language names."""
    if not lang:
        return ()
    items = lang.split(",") if isinstance(lang, str) else list(lang)
    aliases = {"py": "python", "js": "javascript", "ts": "typescript", "rs": "rust", "rb": "ruby",
               "c++": "cpp", "cxx": "cpp", "golang": "go", "cs": "csharp", "c#": "csharp", "kt": "kotlin",
               "sh": "bash", "shell": "bash", "ex": "elixir", "exs": "elixir", "objective-c": "objc",
               "objectivec": "objc", "obj-c": "objc", "m": "objc", "hs": "haskell", "jl": "julia", "ml": "ocaml",
               "mli": "ocaml_interface", "pl": "perl", "pm": "perl", "terraform": "hcl", "tf": "hcl",
               "sol": "solidity", "f#": "fsharp", "fs": "fsharp", "fsx": "fsharp", "fsi": "fsharp_signature",
               "ps1": "powershell", "pwsh": "powershell", "cu": "cuda", "f90": "fortran", **FORMAT_ALIASES}
    return tuple(dict.fromkeys(aliases.get(x.strip().lower(), x.strip().lower()) for x in items if x.strip()))


# Dialects read by a grammar of their own, which a filter naming the language takes in: a user typing `--lang ts` in
# a React project means its .tsx files too, and `--lang ocaml` the .mli interfaces beside the .ml files.
DIALECTS: dict[str, tuple[str, ...]] = {"typescript": ("tsx",), "ocaml": ("ocaml_interface",),
                                        "fsharp": ("fsharp_signature",)}


def language_filter(lang: str | Sequence[str] | None) -> tuple[str, ...]:
    """The canonical languages a ``lang`` filter names (every door's reading of it), with their dialects
    (``DIALECTS``): NeedleError for an unknown one, and for a filter given but naming none (``""``, ``","``), which
    would otherwise search every language."""
    languages = parse_languages(lang)
    if lang is not None and not languages:
        raise NeedleError(f"lang {lang!r} names no language (e.g. python,go)")
    return tuple(dict.fromkeys(d for name in check_languages(languages) for d in (name, *DIALECTS.get(name, ()))))


def dense_ranking(
    store: Store, vectors: VectorIndex, model_id: str, qvec: np.ndarray, count: int, filters: Filters,
    exclude: frozenset[int] = frozenset(),
) -> list[tuple[int, float]]:
    """(chunk id, cosine) best first, honouring filters."""
    if filters:
        allowed = [cid for cid, path, lang, kind in store.chunk_filter_rows() if filters.allows(path, lang, kind)]
        if len(allowed) <= EXACT_FILTER_LIMIT:
            keys, vecs = store.chunk_vectors(model_id, vectors.dim, ids=allowed)
            if not len(keys):
                return []
            sims = vecs @ qvec
            top = np.argsort(-sims)[: count + len(exclude)]
            return [(int(keys[i]), float(sims[i])) for i in top if int(keys[i]) not in exclude][:count]
        allowed_set = set(allowed)
        keys, sims = vectors.search(qvec, count * 20 + len(exclude))
        return [(int(k), float(s)) for k, s in zip(keys, sims, strict=True)
                if int(k) in allowed_set and int(k) not in exclude][:count]
    keys, sims = vectors.search(qvec, count + len(exclude))
    return [(int(k), float(s)) for k, s in zip(keys, sims, strict=True) if int(k) not in exclude][:count]


def lexical_ranking(store: Store, query: str, count: int, filters: Filters) -> list[int]:
    """Chunk ids by BM25, honouring filters."""
    ids = store.fts_search(query, count * (10 if filters else 1))
    if filters and ids:
        rows = store.chunks_by_ids(ids)
        ids = [i for i in ids if i in rows and filters.allows(rows[i].path, rows[i].language, rows[i].kind)]
    return ids[:count]


# What a query says, counted for its script: each Chinese, Japanese or Korean character (about a word), and each
# other word or identifier (`pos_link_data` is one).
_QUERY_UNIT = re.compile(f"[{cjk.CHARS}]|[^\\W\\d{cjk.CHARS}][^\\W{cjk.CHARS}]*")


def foreign_script(query: str) -> str | None:
    """``"cjk"`` or ``"other"`` when half the query or more is written in Chinese, Japanese or Korean, or in another
    alphabet than the Latin one: the encoder, trained on English, reads it poorly. None for an English query, also
    one with a Greek letter or a Chinese name in it ("mean μ of samples")."""
    units = _QUERY_UNIT.findall(query)
    foreign = [u for u in units if cjk.has_cjk(u) or other_script(u)]
    if not units or len(foreign) * 2 < len(units):
        return None
    return "cjk" if any(cjk.has_cjk(u) for u in foreign) else "other"


def other_script(text: str) -> bool:
    """Whether ``text`` holds a letter of an alphabet other than the Latin one (Chinese, Japanese and Korean aside:
    ``cjk.has_cjk``)."""
    return _NON_LATIN_LETTER.search(text) is not None


def lexical_weight(query: str) -> float:
    """How much the BM25 ranking counts: fully for identifiers and code, a little for sentences (also those that
    name code), not at all for short questions in words, and far above meaning for Chinese, Japanese and Korean and
    for other alphabets than the Latin one (the encoder reads them poorly)."""
    script = foreign_script(query)
    if script is not None:
        return CJK_LEXICAL_WEIGHT if script == "cjk" else OTHER_SCRIPT_LEXICAL_WEIGHT
    return weight_for_words(query)


def weight_for_words(query: str) -> float:
    """The BM25 weight by the query's form alone, as for English: every query had it before scripts were told
    apart (bench/non_english.py's "before" row)."""
    query = query.strip()
    words = query.split()
    if _CODE_LIKE.search(query):
        if sum(1 for w in words if _PLAIN_WORD.match(w)) < PROSE_WORDS:
            return IDENTIFIER_LEXICAL_WEIGHT
        return LEXICAL_WEIGHT  # a sentence naming code keeps BM25's small share, however short
    return 0.0 if len(words) <= SHORT_QUESTION_WORDS else LEXICAL_WEIGHT


def fuse(dense: list[tuple[int, float]], lexical: list[int], weight: float = LEXICAL_WEIGHT) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion, scaled so a chunk ranked first by both scores 1.0."""
    scores: dict[int, float] = {}
    for rank, (cid, _sim) in enumerate(dense):
        scores[cid] = scores.get(cid, 0.0) + DENSE_WEIGHT / (RRF_K + rank + 1)
    for rank, cid in enumerate(lexical):
        scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    best = (DENSE_WEIGHT + weight) / (RRF_K + 1)
    return sorted(((cid, s / best) for cid, s in scores.items()), key=lambda t: -t[1])


def rank(
    store: Store, dense: list[tuple[int, float]], lexical: list[int], query: str, filters: Filters = Filters(),
    rows_seen: dict[int, ChunkRow] | None = None,
) -> list[tuple[int, float]]:
    """The search pipeline after retrieval: fusion, then the ranking rules (codeneedle.indexer.ranking)."""
    fused = fuse(dense, lexical, lexical_weight(query))
    return apply_rules(store, fused, query, filters.allows if filters else None, rows_seen=rows_seen,
                       cosines=dict(dense))


def ranked_rows(store: Store, ranked: list[tuple[int, float]], k: int,
                known: dict[int, ChunkRow] | None = None) -> list[tuple[int, float, ChunkRow]]:
    """``(chunk id, score, row)`` of the top ``k`` ranked chunk ids that still exist, best first.

    Rows are fetched page by page until ``k`` are found or the ranking runs out: a stale vector file can rank
    thousands of ids that no longer exist above the lexical hits that do. ``known``: rows the ranking rules read
    moments ago, used rather than read again.
    """
    out: list[tuple[int, float, ChunkRow]] = []
    known = known or {}
    page = max(k * 2, 20)
    for offset in range(0, len(ranked), page):
        window = ranked[offset : offset + page]
        missing = [cid for cid, _ in window if cid not in known]
        rows = {**known, **store.chunks_by_ids(missing)} if missing else known
        for cid, score in window:
            row = rows.get(cid)
            if row is not None:
                out.append((cid, score, row))
                if len(out) == k:
                    return out
    return out


def candidate_pool(k: int) -> int:
    """How many candidates each retriever (dense, BM25) hands to fusion for a top-``k`` search."""
    return max(k * 5, 50)


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked chunk and its displayed score, before it becomes a result (snippets cost more than ranking)."""

    score: float
    row: ChunkRow
    verbatim: bool = False

    def result(self) -> SearchResult:
        return result_from_row(self.row, self.score, self.verbatim)


def result_from_row(row: ChunkRow, score: float, verbatim: bool = False) -> SearchResult:
    return SearchResult(
        path=row.path, start_line=row.start_line, end_line=row.end_line, name=row.name, kind=row.kind,
        language=row.language or "text", score=round(float(score), 4), snippet=make_snippet(redact_secrets(row.text)),
        cell=row.cell, cell_start_line=row.cell_start_line, cell_end_line=row.cell_end_line, verbatim=verbatim,
    )


# The line breaks of a source file, as editors and the line numbers count them. str.splitlines() also breaks at
# U+2028/U+2029, NEL, form feed and \x1c-\x1e, which a string literal or a comment may hold: such a line was
# shown as two (`const sep = "` and `";`).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def make_snippet(text: str, max_lines: int = 3, max_chars: int = 240) -> str:
    """The first few non-blank lines, shortened: enough to recognise the code."""
    # Only the head of a long chunk can hold the first lines: splitting all of it cost more than the search.
    head = text if len(text) <= 4 * max_chars else text[: 4 * max_chars]
    lines = [ln.rstrip() for ln in _LINE_BREAK.split(head) if ln.strip()][:max_lines]
    if len(lines) < max_lines and head is not text:
        lines = [ln.rstrip() for ln in _LINE_BREAK.split(text) if ln.strip()][:max_lines]
    snippet = "\n".join(lines)
    return snippet if len(snippet) <= max_chars else snippet[: max_chars - 1] + "…"
