"""A declaration leads to its implementation: the last step of a search's order.

A C prototype in a header often carries the only doc comment of its function, a ``.pyi`` stub or a ``.d.ts``
declaration the only types, so a query can match the declaration far better than the code it declares, and the
demotion of stubs (``ranking.demotion``) is rightly too mild to undo that: a stub that is much the best match still
beats unrelated code. What a person wants there is the implementation, with its declaration beside it. So each
stub near the top of the final order gets its implementation placed just above it: the definition with the same
name, in a file with the same stem (``tree.h`` / ``tree.c``, ``chunk.d.ts`` / ``chunk.ts``, the overload
signatures and body of one TypeScript function), in the same language family, found among the results or by a
name lookup (filters hold). It runs after the second stage, which would otherwise put the documented stub back
on top.
"""

from __future__ import annotations

from collections.abc import Callable

from codeneedle.indexer.chunks import CLASS, FUNCTION, JS_LANGUAGES, METHOD
from codeneedle.indexer.ranking import is_stub, is_test
from codeneedle.indexer.store import ChunkRow, Store

# Stubs this deep in the order are looked at: what a person reads of a result list.
DEPTH = 10
LOOKUP_LIMIT = 50
_FAMILIES = {**{lang: "js" for lang in JS_LANGUAGES}, "c": "c", "cpp": "c"}

Found = list[tuple[int, float, ChunkRow]]


def implementations_first(store: Store, found: Found,
                          allowed: Callable[[str, str, str], bool] | None = None) -> Found:
    """``found`` where every stub among the first ``DEPTH`` comes right after its implementation."""
    out = list(found)
    placed: set[int] = set()
    i = 0
    while i < min(len(out), DEPTH):
        cid, score, row = out[i]
        if cid not in placed and row.kind in (FUNCTION, METHOD, CLASS) and row.name and is_stub(row) \
                and not any(implements(other, row) for _, _, other in out[:i]):
            impl = _implementation(store, row, out[i + 1:], allowed)
            if impl is not None:
                out = [t for t in out if t[0] != impl[0]]
                out.insert(i, (impl[0], score, impl[2]))
                placed.add(impl[0])
                i += 1  # the stub itself now follows
        i += 1
    return out


def implements(row: ChunkRow, stub: ChunkRow) -> bool:
    """Whether ``row`` is the implementation ``stub`` declares."""
    return (
        row.name == stub.name
        and (row.kind == CLASS) == (stub.kind == CLASS)
        and row.kind in (FUNCTION, METHOD, CLASS)
        and _family(row.language) == _family(stub.language)
        and _stem(row.path) == _stem(stub.path)
        and not is_stub(row)
        and not is_test(row.path, row.name)
    )


def _implementation(store: Store, stub: ChunkRow, below: Found,
                    allowed: Callable[[str, str, str], bool] | None) -> tuple[int, float, ChunkRow] | None:
    for entry in below:
        if implements(entry[2], stub):
            return entry
    seen = {cid for cid, _, _ in below}
    ids = [cid for cid in store.name_candidates(stub.name, LOOKUP_LIMIT) if cid not in seen and cid != stub.id]
    rows = store.chunks_by_ids(ids)
    for cid in ids:
        row = rows.get(cid)
        if row is not None and implements(row, stub) and (allowed is None or allowed(row.path, row.language, row.kind)):
            return cid, 0.0, row
    return None


def _family(language: str) -> str:
    return _FAMILIES.get(language, language)


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".", 1)[0]
