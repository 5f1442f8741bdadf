"""Search over code documented in other languages than English: Needle's own search path beside the keyword path
it had before.

    .venv/bin/python bench/non_english.py                      # the test half: report these
    .venv/bin/python bench/non_english.py --split dev --sweep  # tune the keyword weight on the dev half

Repositories: ``codeneedle.training.repos.NON_ENGLISH_REPOS`` (documented in Chinese and in Russian; fetched as
``bench/quality.py`` fetches, indexed whole by ``Index`` into ``.cache/bench/index``). Each documented function or
method outside tests whose doc comment opens with a sentence in its repository's language (Chinese: to the first
。！？ or line break, 4 to 60 characters; other languages: ``quality.first_sentence``, holding a letter of a
non-Latin script) gives that sentence as a query; a sentence two functions share is dropped. The queries are halved
by a hash of their text: tune on dev, report test. Two query sets, MRR@10:

- **recalled** (docs kept): the user searches their own code for what its doc comment says, as they remember it.
  This is what keyword search is for, and what the encoder, trained on English, reads poorly.
- **described** (the doc comment blanked, as in ``bench/quality.py``): the query describes the function in words
  the code does not hold; only the code's identifiers, comments and strings can match.

Rows: "needle" is ``Index.search``'s ranking; "before" the same ranking with the keyword side as it was before
words of every script were terms (ASCII words only, so a Chinese or Russian query had no keyword side at all; run
over the same FTS rows) and weighed as English is (``search.weight_for_words``); "dense" and "BM25" the two retrieval sides alone. "no good match" is the share of queries
whose first result is right but which the search still calls "no good match": by the cosine alone (before) and now
(a result holding the query's Chinese, Japanese or Korean words counts as a match).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as Q  # noqa: E402

from codeneedle.indexer import cjk, ranking  # noqa: E402
from codeneedle.indexer import search as S  # noqa: E402
from codeneedle.indexer.chunker import chunk_source  # noqa: E402
from codeneedle.indexer.chunks import FUNCTION, METHOD  # noqa: E402
from codeneedle.indexer.languages import SUPPORTED_LANGUAGES, language_for_path  # noqa: E402
from codeneedle.indexer.rerank import Reranker, reranker_dir  # noqa: E402
from codeneedle.indexer.scores import GOOD_MATCH, good_match  # noqa: E402
from codeneedle.indexer.types import split_identifier  # noqa: E402
from codeneedle.training.repos import NON_ENGLISH_REPOS, BenchRepo  # noqa: E402

_SENTENCE_END = re.compile(r"[。！？!?\n]")
_OLD_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the keyword side's words before: ASCII only


def doc_sentence(doc: str, language: str) -> str:
    """The doc comment's first sentence when it is written in ``language`` (``zh``: Chinese, 4 to 60 characters;
    another: 3 to 40 words holding a letter of a non-Latin script), else ""."""
    if language == "zh":
        text = _SENTENCE_END.split(doc.strip(), maxsplit=1)[0].strip().rstrip("：:，,")
        return text if cjk.has_cjk(text) and 4 <= len(text) <= 60 and "http" not in text else ""
    text = Q.first_sentence(doc)
    return text if S.other_script(text) else ""


def prepare(repo: BenchRepo, blank: bool) -> tuple[Path, list[dict]]:
    """A copy of the repository (its targets' doc comments blanked when ``blank``) and its queries."""
    dest = Q.CACHE / "repos" / f"ne-{repo.name}-{'described' if blank else 'recalled'}"
    qfile = Q.CACHE / "queries" / f"{dest.name}.json"
    if qfile.exists() and dest.is_dir():
        return dest, json.loads(qfile.read_text())
    src = Q.fetch(repo)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, symlinks=False)
    files = {rel: chunk_source(rel, data, lang) for rel, data in Q.indexed_files(dest)
             if (lang := language_for_path(rel)) in SUPPORTED_LANGUAGES}
    targets: dict[str, dict] = {}
    for rel, chunks in files.items():
        for c in chunks:
            if c.language != repo.language or c.kind not in (FUNCTION, METHOD) or not c.doc or ranking.is_test(rel, c.name):
                continue
            sentence = doc_sentence(c.doc, repo.doc_language)
            if not sentence:
                continue
            if sentence in targets and targets[sentence]["name"] != c.name:
                targets[sentence]["dup"] = True
            else:
                targets.setdefault(sentence, {"query": sentence, "path": rel, "line": c.start_line, "name": c.name})
    queries = sorted((t for t in targets.values() if not t.get("dup")), key=lambda t: t["query"])
    if blank:
        chosen = {t["query"] for t in queries}
        for rel, chunks in files.items():
            Q.blank_docs(dest / rel, [c for c in chunks if c.doc and doc_sentence(c.doc, repo.doc_language) in chosen])
        queries = [t for t in queries if t["query"] not in (dest / t["path"]).read_text(errors="replace")]
    qfile.parent.mkdir(parents=True, exist_ok=True)
    qfile.write_text(json.dumps(queries, indent=0, ensure_ascii=False))
    return dest, queries


def lexical_before(store, query: str) -> list[int]:
    """The keyword side as it was: ASCII words only (a Chinese query had none), over the same FTS rows."""
    words = split_identifier(" ".join(_OLD_WORD.findall(query))).lower().split()
    terms = [w for w in dict.fromkeys(words) if len(w) > 1 or w.isdigit()]
    if not terms:
        return []
    rows = store.conn.execute(
        "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts, 4.0, 2.0, 1.0) LIMIT ?",
        (" OR ".join(f'"{t}"' for t in terms), Q.POOL))
    return [r[0] for r in rows]


SWEEP_WEIGHTS = (1.0, 4.0, 16.0, 32.0, 64.0, 128.0)


def in_split(query: str, split: str) -> bool:
    """Half the queries (by a hash of their text) tune, the other half report; ``all`` takes both."""
    parity = hashlib.sha1(query.encode()).digest()[0] % 2
    return split == "all" or parity == (split == "test")


def before(store, dense: list[tuple[int, float]], text: str) -> list[tuple[int, float]]:
    """The first stage as it was: ASCII keyword terms, weighed by the query's form as English is."""
    fused = S.fuse(dense, lexical_before(store, text), S.weight_for_words(text))
    return ranking.apply_rules(store, fused, text, cosines=dict(dense))


def evaluate(index, queries: list[dict], reranker, sweep: bool = False) -> dict[str, list[float]]:
    store, vectors = index.reader(), index.vectors()
    out: dict[str, list[float]] = defaultdict(list)
    qvecs = index.encoder.encode_queries([q["query"] for q in queries])
    for q, qvec in zip(queries, qvecs, strict=True):
        text = q["query"]
        dense = S.dense_ranking(store, vectors, index.model_id, qvec, Q.POOL, S.Filters())
        lexical = S.lexical_ranking(store, text, Q.POOL, S.Filters())
        # As Index.search: no second stage for a query the encoder reads poorly.
        second = reranker if S.foreign_script(text) is None else None
        orders = {
            "needle": Q.reranked_orders(store, second, text, S.rank(store, dense, lexical, text), [],
                                        index.encoder)["needle"],
            "before": Q.reranked_orders(store, reranker, text, before(store, dense, text), [], index.encoder)["needle"],
            "dense": [c for c, _ in dense],
            "bm25": lexical,
        }
        for w in SWEEP_WEIGHTS if sweep else ():
            fused = S.fuse(dense, lexical, w)
            ranked = ranking.apply_rules(store, fused, text, cosines=dict(dense))
            both = Q.reranked_orders(store, reranker, text, ranked, [], index.encoder)
            orders[f"w={w:g}"], orders[f"w={w:g} +2nd"] = both["no rerank"], both["needle"]
        rows = store.chunks_by_ids(list({c for ids in orders.values() for c in ids[:20]}))
        for label, ids in orders.items():
            out[label].append(Q.rr(ids, rows, lambda row, q=q: Q.hit(row, q)))
        results = index.search(text, k=10)
        if results and Q.hit(results[0], q):
            out["alarm now"].append(0.0 if good_match(results) else 1.0)
            out["alarm before"].append(0.0 if max(r.score for r in results) >= GOOD_MATCH else 1.0)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=("dev", "test", "all"),
                    help="which half of the queries (tune on dev, report test)")
    ap.add_argument("--sweep", action="store_true", help="also rank with each keyword weight (tune on dev)")
    args = ap.parse_args(argv)
    folder = reranker_dir()
    reranker = Reranker(folder) if folder is not None else None
    table: dict[str, dict[str, list[float]]] = {}
    for blank in (False, True):
        kind = "described" if blank else "recalled"
        for repo in NON_ENGLISH_REPOS:
            root, queries = prepare(repo, blank)
            with Q.open_index(root, f"ne-{repo.name}-{kind}", None) as index:
                indexed = set(index.reader().file_records())
                queries = [q for q in queries if q["path"] in indexed and in_split(q["query"], args.split)]
                Q.log(f"{repo.name} ({kind}): {len(queries)} queries")
                for label, xs in evaluate(index, queries, reranker, args.sweep).items():
                    table.setdefault(kind, {}).setdefault(label, []).extend(xs)
                    table[kind].setdefault(f"{label} {repo.name}", []).extend(xs)
                    table[kind].setdefault(f"{label} {repo.doc_language}", []).extend(xs)
    names = [r.name for r in NON_ENGLISH_REPOS]
    names += list(dict.fromkeys(r.doc_language for r in NON_ENGLISH_REPOS))
    print(f"\n{args.split} split")
    print(f"{'MRR@10':22}" + "".join(f"{n:>12}" for n in names) + f"{'all':>9}")
    for kind, rows in table.items():
        print(f"-- {kind} ({len(rows['needle'])} queries)")
        swept = [(r, f"keyword x{r[2:]}") for r in rows if r.startswith("w=") and " " not in r.replace(" +2nd", "")]
        for label, title in (("needle", "Needle"), ("before", "before (ASCII terms)"), ("dense", "dense only"),
                             ("bm25", "BM25 only"), *swept):
            print(f"{title:22}" + "".join(f"{Q.mean(rows[f'{label} {n}']):12.3f}" for n in names)
                  + f"{Q.mean(rows[label]):9.3f}")
        for label, title in (("alarm now", "no good match, right"), ("alarm before", "  by the cosine alone")):
            print(f"{title:22}" + "".join(f"{Q.mean(rows[f'{label} {n}']):12.1%}" for n in names)
                  + f"{Q.mean(rows[label]):9.1%}")
    print("(no good match, right: the share of queries answered first that the search calls \"no good match\")")

if __name__ == "__main__":
    main()
