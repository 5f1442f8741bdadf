"""A declaration leads to its implementation: the last step of a search's order.

A C prototype in a header often carries the only doc comment of its function, a ``.pyi`` stub or a ``.d.ts``
declaration the only types, so a query can match the declaration far better than the code it declares, and the
demotion of stubs (``ranking.demotion``) is rightly too mild to undo that: a stub that is much the best match still
beats unrelated code. What a person wants there is the implementation, with its declaration beside it. So each
stub near the top of the final order gets its implementation placed just above it: the definition with the same
name, in the same language family, in the same folder (``tree.h`` / ``tree.c``, ``mod.pyi`` / ``mod.py``, the
overload signatures and body of one TypeScript function) or in a file of the same distinctive stem elsewhere
(``types/chunk.d.ts`` / ``src/chunk.ts``; not ``index`` or ``__init__``, which every package has), the nearest
such definition first, found among the results or by a name lookup (filters hold). It runs after the second
stage, which would otherwise put the documented stub back on top.
"""

from __future__ import annotations

from collections.abc import Callable

from codeneedle.indexer.chunks import CLASS, FUNCTION, JS_LANGUAGES, METHOD
from codeneedle.indexer.ranking import is_stub, is_test
from codeneedle.indexer.store import ChunkRow, Store

# Stubs this deep in the order are looked at: what a person reads of a result list.
DEPTH = 10
LOOKUP_LIMIT = 200
# File stems every package repeats: alike in name only, so only the same folder pairs them.
GENERIC_STEMS = frozenset({"index", "__init__", "mod", "lib", "main", "types", "typings", "global", "globals",
                           "util", "utils", "common", "api", "src"})
_FAMILIES = {**{lang: "js" for lang in JS_LANGUAGES}, "c": "c", "cpp": "c", "cuda": "c", "ocaml_interface": "ocaml",
             "fsharp_signature": "fsharp"}

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
        and (_folder(row.path) == _folder(stub.path)
             or (_stem(row.path) == _stem(stub.path) and _stem(stub.path) not in GENERIC_STEMS))
        and not is_stub(row)
        and not is_test(row.path, row.name)
    )


def _implementation(store: Store, stub: ChunkRow, below: Found,
                    allowed: Callable[[str, str, str], bool] | None) -> tuple[int, float, ChunkRow] | None:
    found = [entry for entry in below if implements(entry[2], stub)]
    beside = next((entry for entry in found if _folder(entry[2].path) == _folder(stub.path)), None)
    if beside is not None:
        return beside  # none can be nearer: no name lookup needed
    seen = {cid for cid, _, _ in below}
    ids = [cid for cid in store.name_candidates(stub.name, LOOKUP_LIMIT) if cid not in seen and cid != stub.id]
    rows = store.chunks_by_ids(ids)
    found += [(cid, 0.0, row) for cid in ids if (row := rows.get(cid)) is not None and implements(row, stub)
              and (allowed is None or allowed(row.path, row.language, row.kind))]
    # The nearest: the stub's own folder, then the fewest folders apart; ties go to the better ranked.
    return min(found, key=lambda entry: _distance(entry[2].path, stub.path), default=None)


def _distance(a: str, b: str) -> int:
    x, y = _folder(a).split("/"), _folder(b).split("/")
    shared = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
    return len(x) + len(y) - 2 * shared


def _family(language: str) -> str:
    return _FAMILIES.get(language, language)


def _folder(path: str) -> str:
    return path.rpartition("/")[0]


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".", 1)[0]
