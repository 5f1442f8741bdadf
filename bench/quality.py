"""End-to-end search quality: Needle's own search path over whole repositories as their registries ship them.

    .venv/bin/python bench/quality.py                 # test split: the three tables (report these)
    .venv/bin/python bench/quality.py --split dev     # tune ranking weights here, never on test
    .venv/bin/python bench/quality.py --skip cosqa --skip base   # quicker: default-model rows only
    .venv/bin/python bench/quality.py --model .cache/runs/v2/model-wise50   # a candidate encoder in the Needle rows

Repositories: ``codeneedle.training.repos.BENCHMARK_REPOS`` (6 languages, >= 2 test repositories each, none in
the training manifest), fetched with pip / npm / apt-get into ``.cache/bench/src`` and indexed whole (tests,
stubs, docs, examples, build output) by ``codeneedle.indexer.index.Index`` into ``.cache/bench/index``
(cached: a rerun re-embeds nothing).

Queries (CodeSearchNet style): every documented function or method of the repository's language outside tests
gives its doc comment's first sentence as a query; that doc comment is blanked in the indexed copy (lines are
kept, so line numbers hold), and so is the same sentence wherever else it is repeated (bundled copies). A hit is
the target chunk, or a chunk defining the same qualified name in a file with the same stem (``src/x.ts`` and its
build ``dist/x.js``). Exact-name queries: the same functions' names (``Class.method`` for methods), scored
"definition first": rank 1 defines that name and is neither a stub nor a test.

Rows come from one index per model: "needle" is ``Index.search``'s ranking (dense + BM25 fused, then the
ranking rules, then the second stage: late interaction for typed questions, the cross-encoder for the rest),
"no late" the cross-encoder for every query, "no rerank" the first stage alone, "dense"/"BM25" its two retrieval
sides alone, "no rules" fusion without the ranking rules, and "base" the same first stage over an index built
with the untuned all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codeneedle.indexer import generated, late_interaction, ranking  # noqa: E402
from codeneedle.indexer import search as S  # noqa: E402
from codeneedle.indexer.chunker import chunk_source  # noqa: E402
from codeneedle.indexer.chunks import FUNCTION, METHOD  # noqa: E402
from codeneedle.indexer.declarations import implementations_first  # noqa: E402
from codeneedle.indexer.encoder import Encoder, bulk_identity  # noqa: E402
from codeneedle.indexer.ignore import IgnoreRules  # noqa: E402
from codeneedle.indexer.index import Index  # noqa: E402
from codeneedle.indexer.languages import SUPPORTED_LANGUAGES, language_for_path  # noqa: E402
from codeneedle.indexer.models import resolve_model  # noqa: E402
from codeneedle.indexer.rerank import Reranker, depth_setting, reorder, rerank_text, reranker_dir  # noqa: E402
from codeneedle.indexer.settings import IndexSettings  # noqa: E402
from codeneedle.indexer.walker import looks_minified, read_source, walk  # noqa: E402
from codeneedle.training.repos import BenchRepo, split  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
MAX_QUERIES = 150  # per repository and query set: keeps a full run within minutes on 2 cores
POOL = 50  # candidates per retrieval side, as Index.search uses for k=10
DEPTH_SHOWN = 10  # results a search returns (k), over which its last step runs
_BUILD_DIR = re.compile(r"(^|/)(dist|build|umd|bundles?|cjs|esm|legacy|out)/")
LANGS = ("python", "javascript", "typescript", "go", "rust", "java")


# -- fetching --------------------------------------------------------------------------------------------
def fetch(repo: BenchRepo) -> Path:
    """Download and unpack ``repo`` once; the folder that holds its source tree."""
    dest = CACHE / "src" / repo.name
    if not (dest / ".complete").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dl = CACHE / "downloads" / repo.name
        shutil.rmtree(dl, ignore_errors=True)
        dl.mkdir(parents=True)
        tree = dest / "tree"
        tree.mkdir(parents=True)
        if repo.fetch == "pypi":
            _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--quiet",
                  "--disable-pip-version-check", "-d", str(dl), f"{repo.registry_name}=={repo.version}"])
            with tarfile.open(next(dl.glob("*.tar.gz"))) as tf:
                tf.extractall(tree, filter="data")
        elif repo.fetch == "npm":
            _run(["npm", "pack", f"{repo.registry_name}@{repo.version}", "--loglevel=error",
                  "--pack-destination", str(dl)], cwd=dl)
            with tarfile.open(next(dl.glob("*.tgz"))) as tf:
                tf.extractall(tree, filter="data")
        elif repo.fetch == "debian":
            _run(["apt-get", "download", f"{repo.registry_name}={repo.version}"], cwd=dl)
            _run(["dpkg-deb", "-x", str(next(dl.glob("*.deb"))), str(tree)])
        else:
            raise SystemExit(f"unknown fetch method {repo.fetch!r} for {repo.name}")
        (dest / ".complete").write_text(repo.version)
    return _source_root(dest / "tree")


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {(res.stderr or res.stdout).strip()[-300:]}")


def _source_root(tree: Path) -> Path:
    """Skip the wrapper folders (``pkg-1.0/``, ``package/``, ``usr/share/gocode/src/github.com/o/r``)."""
    for pattern in ("usr/share/gocode/src/*/*/*", "usr/share/cargo/registry/*"):
        found = sorted(p for p in tree.glob(pattern) if p.is_dir())
        if found:
            return found[0]
    node = tree
    while True:
        entries = [p for p in node.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            node = entries[0]
        else:
            return node


# -- queries ---------------------------------------------------------------------------------------------
def first_sentence(doc: str) -> str:
    """The summary sentence of a doc comment, or "" when it is no use as a query."""
    text = doc.strip().split("\n\n", 1)[0]
    text = re.split(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s|\n\s*[@:]", text, maxsplit=1)[0]
    text = " ".join(text.split()).strip()
    if text.startswith(("@", ":", "{", "(", "TODO", "Deprecated", "deprecated")) or "http" in text:
        return ""
    words = text.split()
    return text if 3 <= len(words) <= 40 else ""


def prepare(repo: BenchRepo) -> tuple[Path, list[dict]]:
    """The repository copy to index (target doc comments blanked) and its queries; cached."""
    dest = CACHE / "repos" / repo.name
    qfile = CACHE / "queries" / f"{repo.name}.json"
    if qfile.exists() and dest.is_dir():
        return dest, json.loads(qfile.read_text())
    src = fetch(repo)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, symlinks=False)
    files: dict[str, list] = {}
    for rel, data in indexed_files(dest):
        lang = language_for_path(rel)
        # Queries come from files in a grammar's language: a notebook's doc spans are JSON lines, not comments to
        # blank, and Vue or Markdown files gave none before formats were chunked (figures stay comparable).
        if lang in SUPPORTED_LANGUAGES:
            files[rel] = chunk_source(rel, data, lang)
    targets: dict[str, dict] = {}
    for rel, chunks in files.items():
        for c in chunks:
            lang = "typescript" if c.language == "tsx" else c.language
            if lang != repo.language or c.kind not in (FUNCTION, METHOD) or not c.doc or "<" in c.name:
                continue
            if ranking.is_test(rel, c.name) or rel.endswith((".pyi", ".d.ts")):
                continue
            sentence = first_sentence(c.doc)
            if not sentence:
                continue
            known = targets.get(sentence)
            if known is None or (known["name"] == c.name and _BUILD_DIR.search(known["path"])
                                 and not _BUILD_DIR.search(rel)):
                targets[sentence] = {"query": sentence, "path": rel, "line": c.start_line, "name": c.name}
            elif known["name"] != c.name:  # a sentence shared by two different functions says too little
                known["dup"] = True
    chosen = sorted((t for t in targets.values() if not t.get("dup")),
                    key=lambda t: hashlib.sha1(t["query"].encode()).hexdigest())[:MAX_QUERIES]
    sentences = {t["query"] for t in chosen}
    for rel, chunks in files.items():
        blank_docs(dest / rel, [c for c in chunks if c.doc and first_sentence(c.doc) in sentences])
    queries = []
    for t in chosen:  # keep only queries whose sentence is really gone from the indexed copy
        text = (dest / t["path"]).read_text(errors="replace")
        if " ".join(text.split()).find(t["query"]) < 0:
            queries.append(t)
    qfile.parent.mkdir(parents=True, exist_ok=True)
    qfile.write_text(json.dumps(queries, indent=0))
    return dest, queries


def indexed_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """The files ``Index`` holds, as its pipeline reads them: what the walk finds, less what it then screens
    out (bundles, generated and minified files). Queries are drawn from these only, so a repository's places
    and the duplicate check go to questions the product can answer (graphlib's browserify bundle once took 134
    of its 150)."""
    rules = IgnoreRules(str(root.resolve()))
    for sf in walk(root, rules).files:
        data, _ = generated.screen(sf.path, read_source(sf), rules)
        if isinstance(data, bytes) and not looks_minified(data):
            yield sf.path, data


_COMMENT_LINE = re.compile(r"^\s*(//|/\*|\*|#(?!!)|\*/)")
_QUOTE = re.compile(r'^[ \t]*[rRuU]?("""|\'\'\'|"|\')', re.M)


def blank_docs(path: Path, chunks: list) -> None:
    """Blank the doc comments of ``chunks`` in ``path`` (line breaks kept, so line numbers still hold)."""
    if not chunks:
        return
    data = path.read_text(errors="surrogateescape")
    lines = data.split("\n")
    spans: list[tuple[int, int, bool]] = []  # character spans to blank; True: a Python docstring
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    for c in chunks:
        if c.leading_doc:
            k = c.start_line - 2  # 0-based index of the line above the definition
            while k >= 0 and lines[k].strip() and _COMMENT_LINE.match(lines[k]):
                spans.append((offsets[k], offsets[k] + len(lines[k]), False))
                k -= 1
        elif c.language == "python":
            body_start = offsets[min(c.start_line, len(lines))]
            m = _QUOTE.search(data, body_start, offsets[min(c.end_line, len(lines))])
            if m is None:
                continue
            end = data.find(m.group(1), m.end())
            if end > 0:
                lead = len(m.group(0)) - len(m.group(0).lstrip())
                spans.append((m.start() + lead, end + len(m.group(1)), True))
    out = list(data)
    for s, e, docstring in spans:
        for i in range(s, e):
            if out[i] != "\n":
                out[i] = " "
        if docstring and e - s >= 3:
            out[s : s + 3] = ["."] * 3  # `...`: a body that was only a docstring still parses
    path.write_text("".join(out), errors="surrogateescape")


# -- scoring ---------------------------------------------------------------------------------------------
def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0]


def hit(row, target: dict) -> bool:
    """The target itself, or the same function in its build output (``dist/x.js`` for ``src/x.ts``)."""
    if row.path == target["path"] and row.start_line == target["line"]:
        return True
    return row.name == target["name"] and row.kind in (FUNCTION, METHOD) and (
        _stem(row.path) == _stem(target["path"]) or bool(_BUILD_DIR.search(row.path)))


def definition_first(row, name: str) -> bool:
    return (row.name == name and row.kind in (FUNCTION, METHOD, "class") and not ranking.is_stub(row)
            and not ranking.is_test(row.path, row.name))


def rr(ids: list[int], rows: dict, ok) -> float:
    seen = 0
    for cid in ids:
        row = rows.get(cid)
        if row is None:
            continue
        seen += 1
        if seen > 10:
            return 0.0
        if ok(row):
            return 1.0 / seen
    return 0.0


def exact_query(name: str) -> str:
    return name  # `Class.method` for methods, the bare name for functions: what a person types


def sweep_weights() -> dict[str, ranking.Weights]:
    """One factor at a time around the shipped weights (``--sweep``, on the dev split)."""
    base = ranking.WEIGHTS
    grid = {}
    for field in ("block", "text", "stub", "test", "container"):
        for value in (1.0, 0.95, 0.9, 0.8, 0.7, 0.5):
            grid[f"{field}={value}"] = ranking.Weights(**{**{f: getattr(base, f) for f in base.__slots__},
                                                          field: value})
    for field, values in (("member", (1.0, 1.05, 1.1, 1.2, 1.3, 1.5)), ("name_words", (0.0, 0.05, 0.075, 0.15, 0.2)),
                          ("floor", (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))):
        for value in values:
            grid[f"{field}={value}"] = ranking.Weights(**{**{f: getattr(base, f) for f in base.__slots__},
                                                          field: value})
    return grid


def reranked_orders(store, reranker: Reranker | None, text: str, ranked: list[tuple[int, float]],
                    grid: list[tuple[int, float]], encoder: Encoder | None = None) -> dict[str, list[int]]:
    """The second stage over the first stage's ``ranked``: "needle" as ``Index.search`` re-ranks (late
    interaction for a typed question, else the cross-encoder at the shipped depth and blend), "no rerank" the
    first stage alone, and one "rerank d=D b=B" row per ``grid`` entry (the cross-encoder, whatever the query)."""
    first = [c for c, _ in ranked]
    if reranker is None:
        return {"needle": _declarations_last(store, first, store.chunks_by_ids(first[:DEPTH_SHOWN]))}
    depth = depth_setting(reranker)
    widest = max([depth, late_interaction.DEPTH, DEPTH_SHOWN, *(d for d, _ in grid)])
    rows = store.chunks_by_ids(first[:widest])
    found = [(c, s, rows[c]) for c, s in ranked[:widest] if c in rows]
    late = encoder is not None and late_interaction.applies(encoder, text)
    logits = reranker.score(text, [rerank_text(row) for _, _, row in found])
    rest = first[widest:]

    def order(d: int, b: float) -> list[int]:
        return [c for c, _, _ in reorder(text, found, logits[:d], b)] + rest

    cross = order(depth, reranker.settings.blend)
    needle = [c for c, _, _ in late_interaction.late_rerank(encoder, text, found)] + rest if late else cross
    out = {"needle": needle, "no late": cross, "no rerank": first}
    out = {label: _declarations_last(store, ids, rows) for label, ids in out.items()}
    out.update({f"rerank d={d} b={b:g}": order(d, b) for d, b in grid})
    return out


def _declarations_last(store, ids: list[int], rows: dict) -> list[int]:
    """``ids`` after ``Index.search``'s last step: each stub near the top right after its implementation."""
    head = [(c, 0.0, rows[c]) for c in ids[:DEPTH_SHOWN] if c in rows]
    placed = [c for c, _, _ in implementations_first(store, head)]
    taken = set(placed)
    return placed + [c for c in ids[DEPTH_SHOWN:] if c not in taken]


def evaluate(index: Index, queries: list[dict], rows_wanted: tuple[str, ...],
             sweep: dict[str, ranking.Weights] | None = None, reranker: Reranker | None = None,
             grid: list[tuple[int, float]] = ()) -> dict[str, dict[str, list[float]]]:
    """Per row: {"doc": reciprocal ranks, "name": definition-first 0/1} over ``queries``."""
    store, vectors = index.reader(), index.vectors()
    sweep = sweep or {}
    grid_rows = [f"rerank d={d} b={b:g}" for d, b in grid] if reranker is not None else []
    rows_wanted = (*rows_wanted, *grid_rows)
    out: dict[str, dict[str, list[float]]] = {r: {"doc": [], "name": []} for r in (*rows_wanted, *sweep)}
    for kind in ("doc", "name"):
        texts = [q["query"] if kind == "doc" else exact_query(q["name"]) for q in queries]
        qvecs = index.encoder.encode_queries(texts)
        shared = index.encoder.encode_queries(texts, tower=False) if "no tower" in rows_wanted else qvecs
        for q, text, qvec, svec in zip(queries, texts, qvecs, shared, strict=True):
            dense = S.dense_ranking(store, vectors, index.model_id, qvec, POOL, S.Filters())
            lexical = S.lexical_ranking(store, text, POOL, S.Filters())
            if "no tower" in rows_wanted:
                shared_dense = S.dense_ranking(store, vectors, index.model_id, svec, POOL, S.Filters())
            orders = {
                **({"no tower": [c for c, _ in S.rank(store, shared_dense, lexical, text)]}
                   if "no tower" in rows_wanted else {}),
                **reranked_orders(store, reranker, text, S.rank(store, dense, lexical, text), grid, index.encoder),
                "no rules": [c for c, _ in S.fuse(dense, lexical, S.lexical_weight(text))],
                "dense": [c for c, _ in dense],
                "bm25": lexical,
            }
            fused = S.fuse(dense, lexical, S.lexical_weight(text))
            for label, weights in sweep.items():
                orders[label] = [c for c, _ in ranking.apply_rules(store, fused, text, weights=weights,
                                                                     cosines=dict(dense))]
            ids = {c for ids in orders.values() for c in ids[:20]}
            rows = store.chunks_by_ids(list(ids))
            for r in (*rows_wanted, *sweep):
                if kind == "doc":
                    out[r]["doc"].append(rr(orders[r], rows, lambda row, q=q: hit(row, q)))
                else:
                    first = next((rows[c] for c in orders[r] if c in rows), None)
                    out[r]["name"].append(1.0 if first is not None and definition_first(first, q["name"]) else 0.0)
    return out


def index_dir(parent: Path, name: str, model: str | None) -> Path:
    """One cached index per repository and vectors: the model (its weights' hash for a folder) and its bulk
    variant (``int8``, ``t128``)."""
    model_name, folder = resolve_model(model)
    identity = bulk_identity(model_name, folder)
    variant = identity.partition("@")[2].partition("+")[2].replace("+", "-")
    label = model or "default"
    if model and folder.resolve() == Path(model).expanduser().resolve():
        # A candidate's folder: named by its weights, so retraining in place re-indexes.
        label = f"{model_name}-{identity.partition('@')[2].partition('+')[0]}"
    return parent / (f"{name}-{label}" + (f"-{variant}" if variant else ""))


def open_index(repo_root: Path, name: str, model: str | None) -> Index:
    settings = IndexSettings(model=model, index_dir=index_dir(CACHE / "index", name, model))
    index = Index.open(repo_root, settings)
    t0 = time.perf_counter()
    stats = index.update()
    if stats.chunks_embedded:
        log(f"  indexed {name} ({model or 'default'}): {stats.chunks_embedded} chunks embedded in "
            f"{time.perf_counter() - t0:.0f}s")
    return index


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


# -- CoSQA -----------------------------------------------------------------------------------------------
def cosqa(split_name: str, models: list[tuple[str, str | None]], reranker: Reranker | None = None,
          grid: list[tuple[int, float]] = ()) -> list[tuple[str, float]]:
    """MRR@10 on CoSQA through the index: Index.search's ranking and its sides, per model."""
    sys.path.insert(0, str(ROOT / "bench"))
    import cosqa_search as C

    corpus = C.build_corpus(ROOT / ".cache" / "cosqa-repo")
    queries = json.loads((C.DATA / f"cosqa-retrieval-{split_name}-500.json").read_text())
    table = []
    for label, model in models:
        settings = IndexSettings(model=model, index_dir=index_dir(ROOT / ".cache", "cosqa-index", model))
        with Index.open(corpus, settings) as index:
            index.update()
            store, vectors = index.reader(), index.vectors()
            texts = [q["doc"] for q in queries]
            qvecs = index.encoder.encode_queries(texts)
            tower = index.encoder.query_tower is not None and model != "minilm"
            shared = index.encoder.encode_queries(texts, tower=False) if tower else qvecs
            runs: dict[str, list[float]] = defaultdict(list)
            for q, qvec, svec in zip(queries, qvecs, shared, strict=True):
                target = f"f{q['retrieval_idx']:05d}.py"
                dense = S.dense_ranking(store, vectors, index.model_id, qvec, POOL, S.Filters())
                lexical = S.lexical_ranking(store, q["doc"], POOL, S.Filters())
                ranked = S.rank(store, dense, lexical, q["doc"])
                orders = {**reranked_orders(store, reranker if model != "minilm" else None, q["doc"], ranked, grid,
                                             index.encoder),
                          "dense": [c for c, _ in dense], "bm25": lexical}
                if tower:
                    shared_dense = S.dense_ranking(store, vectors, index.model_id, svec, POOL, S.Filters())
                    orders["no tower"] = [c for c, _ in S.rank(store, shared_dense, lexical, q["doc"])]
                rows = store.chunks_by_ids(list({c for o in orders.values() for c in o[:20]}))
                for r, ids in orders.items():
                    runs[r].append(rr(ids, rows, lambda row, t=target: row.path == t))
        second_stage = ("no late", "no rerank", *(f"rerank d={d} b={b:g}" for d, b in grid)) if reranker is not None else ()
        no_tower = ("no tower",) if "no tower" in runs else ()
        for r in (("needle",) if model == "minilm" else ("needle", *second_stage, *no_tower, "dense", "bm25")):
            table.append((f"{label} {r}", mean(runs[r])))
    return table


# -- main ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=("dev", "test", "all"))
    ap.add_argument("--repo", action="append", default=[], help="only these benchmark repositories")
    ap.add_argument("--skip", action="append", default=[], choices=("base", "cosqa"))
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--sweep", action="store_true", help="also rank with each factor varied (tune on dev)")
    ap.add_argument("--model", help="encoder of the Needle rows (default: the shipped one); judge a candidate")
    ap.add_argument("--no-rerank", action="store_true", help="first stage only (as `needle search --no-rerank`)")
    ap.add_argument("--rerank-grid", action="store_true",
                    help="also re-rank at each depth and blend of a grid (tune on dev; $NEEDLE_RERANKER: a candidate)")
    args = ap.parse_args(argv)
    folder = None if args.no_rerank else reranker_dir()
    reranker = Reranker(folder) if folder is not None else None
    grid = [(d, b) for d in (10, 20, 30) for b in (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0)] if args.rerank_grid else []

    repos = [r for r in split(args.split) if not args.repo or r.name in args.repo]
    tower = Encoder.load(args.model).query_tower
    rows_default = ("needle", *(("no late", "no rerank") if reranker else ()), *(("no tower",) if tower else ()), "no rules",
                    "dense", "bm25")
    sweep = sweep_weights() if args.sweep else {}
    per_repo: dict[str, dict] = {}
    t0 = time.perf_counter()
    for repo in repos:
        root, queries = prepare(repo)
        result = {}
        with open_index(root, repo.name, args.model) as index:
            chunks = index.reader().counts()[1]
            # Needle skips some shipped files (minified bundles, files over 1 MiB): no query may target them.
            indexed = set(index.reader().file_records())
            queries = [q for q in queries if q["path"] in indexed]
            log(f"{repo.name} ({repo.language}): {len(queries)} queries")
            result.update(evaluate(index, queries, rows_default, sweep, reranker, grid))
        if "base" not in args.skip:
            with open_index(root, repo.name, "minilm") as index:
                result["base needle"] = evaluate(index, queries, ("needle",))["needle"]
        per_repo[repo.name] = {"language": repo.language, "chunks": chunks, "queries": len(queries), **result}
    row_names = [*rows_default] + ([] if "base" in args.skip else ["base needle"]) + list(sweep) \
        + [f"rerank d={d} b={b:g}" for d, b in grid]
    labels = {"needle": "Needle (default)", "no late": "cross-encoder for every query",
              "no rerank": "first stage (no re-ranker)",
              "no tower": "Needle, no query tower", "no rules": "fusion, no ranking rules", "dense": "dense only",
              "bm25": "BM25 (FTS5) only", "base needle": "Needle, untuned base model"}

    def table(kind: str, title: str) -> dict:
        langs = [lang for lang in LANGS if any(v["language"] == lang for v in per_repo.values())]
        print(f"\n## {title} ({args.split} split)")
        print(f"{'ranking':28}" + "".join(f"{lang:>11}" for lang in langs) + f"{'micro':>9}")
        figures = {}
        for r in row_names:
            cells = {lang: [x for v in per_repo.values() if v["language"] == lang for x in v[r][kind]] for lang in langs}
            micro = [x for v in per_repo.values() for x in v[r][kind]]
            figures[r] = {**{lang: mean(c) for lang, c in cells.items()}, "micro": mean(micro)}
            print(f"{labels.get(r, r if r.startswith('rerank') else 'rules ' + r):28}" + "".join(f"{mean(cells[lang]):11.3f}" for lang in langs) + f"{mean(micro):9.3f}")
        return figures

    print(f"encoder of the Needle rows: {bulk_identity(*resolve_model(args.model))}; query tower: {tower or 'none'}; re-ranker: "
          + (f"{folder} (depth {depth_setting(reranker)}, blend {reranker.settings.blend:g})" if reranker else "none"))
    print("repositories: " + ", ".join(f"{n} ({v['language']}, {v['chunks']} chunks, {v['queries']} q)"
                                         for n, v in per_repo.items()))
    out = {"repos": {n: {k: v[k] for k in ("language", "chunks", "queries")} for n, v in per_repo.items()}}
    out["doc"] = table("doc", "Doc-comment queries, MRR@10")
    out["name"] = table("name", "Exact-name queries, definition at rank 1")
    if "cosqa" not in args.skip:
        cosqa_split = "dev" if args.split == "dev" else "test"
        models = [("Needle", args.model)] + ([] if "base" in args.skip else [("untuned base", "minilm")])
        print(f"\n## CoSQA {cosqa_split} through the index, MRR@10 (500 web queries, 6,267 functions)")
        out["cosqa"] = {}
        for label, value in cosqa(cosqa_split, models, reranker, grid):
            print(f"{label:28}{value:9.3f}")
            out["cosqa"][label] = value
    log(f"total {time.perf_counter() - t0:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
