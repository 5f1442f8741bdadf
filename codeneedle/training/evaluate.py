"""Retrieval evaluation: MRR@10 and Recall@1/5/10 for BM25, an encoder, and both fused as ``needle search`` does.

Two benchmarks: held-out repositories (CodeSearchNet manner: the first doc sentence searches among every function
of the same repository, doc comments stripped) and CoSQA (real web queries over 6,267 Python functions that keep
their docstrings; ``dev`` for tuning, ``test`` for reporting). Code is embedded with
:func:`codeneedle.indexer.encoder.embed_text` through :class:`codeneedle.indexer.encoder.Encoder`, exactly as
the index does. ``bm25`` and ``hybrid`` are the product's own rankings (FTS5, fusion and ranking rules, see
:mod:`codeneedle.training.product_search`), so the hybrid figure is what ``needle search`` would rank.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.encoder import embed_text
from codeneedle.indexer.languages import language_for_path
from codeneedle.training.mining import load_jsonl
from codeneedle.training.product_search import GroupSearch

COSQA_DIR = Path(os.environ.get("NEEDLE_COSQA_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cosqa")
KS = (1, 5, 10)
Progress = Callable[[str], None]


@dataclass
class Benchmark:
    """Queries searched within groups: ``queries[i] = (group, text, target index in corpus[group])``."""

    name: str
    queries: list[tuple[str, str, int]]
    corpus: dict[str, list[str]]  # group -> texts as embedded (embed_text)
    chunks: dict[str, list[Chunk]] = field(default_factory=dict)  # group -> the same candidates as chunks


def metrics_from_ranks(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> dict[str, float]:
    """``ranks``: 1-based rank of each query's target (None: not retrieved). Returns mrr@10 and r@k."""
    n = max(1, len(ranks))
    out = {"mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n}
    for k in ks:
        out[f"r@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    out["queries"] = len(ranks)
    return out


def position_of(ranking: Sequence[int], target: int) -> int | None:
    """1-based position of ``target`` in a ranked list of candidate indexes (None: not retrieved)."""
    for n, i in enumerate(ranking):
        if i == target:
            return n + 1
    return None


def rank_of(scores: np.ndarray, target: int) -> int:
    """1-based rank of ``target`` under descending scores (ties count against the target)."""
    return int((scores > scores[target]).sum() + (scores[np.arange(len(scores)) != target] == scores[target]).sum()
               + 1)


def candidate_chunk(text: str, embedded: str, path: str = "", name: str = "", language: str | None = None) -> Chunk:
    """A benchmark candidate as the index would store it: ``text`` is its code, ``embedded`` its embed_text
    (whose first line, ``path split name``, stands in for a path or name the record lacks)."""
    head = embedded.split("\n", 1)[0]
    path = path or head.split(" ", 1)[0]
    name = name or (head.split(" ", 1)[1] if " " in head else "")
    language = language or language_for_path(path) or "text"
    return Chunk(path, language, "function", name, 1, text.count("\n") + 1, 0, len(text.encode()), text)


# ------------------------------------------------------------------------------------------------ benchmarks


def heldout_benchmark(pairs_dir: Path, split: str = "heldout", max_queries_per_repo: int = 0) -> Benchmark:
    """Load ``<split>.jsonl`` + ``<split>_corpus.jsonl`` written by scripts/build_training_set.py."""
    corpus: dict[str, list[str]] = {}
    chunks: dict[str, list[Chunk]] = {}
    for rec in load_jsonl(pairs_dir / f"{split}_corpus.jsonl"):
        corpus.setdefault(rec["repo"], []).append(rec["code"])
        chunks.setdefault(rec["repo"], []).append(candidate_chunk(
            rec.get("code_plain", rec["code"]), rec["code"], rec.get("path", ""), rec.get("name", ""),
            rec.get("language")))
        assert rec["id"] == len(corpus[rec["repo"]]) - 1
    queries: list[tuple[str, str, int]] = []
    per_repo: dict[str, int] = {}
    for rec in load_jsonl(pairs_dir / f"{split}.jsonl"):
        if max_queries_per_repo and per_repo.get(rec["repo"], 0) >= max_queries_per_repo:
            continue
        per_repo[rec["repo"]] = per_repo.get(rec["repo"], 0) + 1
        queries.append((rec["repo"], rec["query"], int(rec["target"])))
    return Benchmark(f"{pairs_dir.name}:{split}", queries, corpus, chunks)


def _python_name(code: str) -> str:
    try:
        node = ast.parse(code).body[0]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return node.name
    except (SyntaxError, IndexError, ValueError):
        pass
    head = code.split("(", 1)[0].split()
    return head[-1] if head else ""


def cosqa_benchmark(split: str = "dev", data_dir: Path | None = None) -> Benchmark:
    """CoSQA retrieval: ``split`` is ``dev`` or ``test``; each function is embedded as if indexed from its
    own file ``cosqa/<id>.py``."""
    if split not in ("dev", "test"):
        raise ValueError("CoSQA split must be 'dev' or 'test'")
    d = data_dir or COSQA_DIR
    if not (d / "code_idx_map.txt").is_file():
        raise ValueError(f"CoSQA data not found in {d} (set NEEDLE_COSQA_DIR to its folder)")
    code_to_id: dict[str, int] = json.loads((d / "code_idx_map.txt").read_text())
    by_id = sorted((i, code) for code, i in code_to_id.items())
    ids = [i for i, _ in by_id]
    pos = {i: k for k, i in enumerate(ids)}
    chunks = [Chunk(f"cosqa/{i}.py", "python", "function", _python_name(code), 1, code.count("\n") + 1, 0,
                    len(code.encode()), code) for i, code in by_id]
    texts = [embed_text(c) for c in chunks]
    queries = [("cosqa", q["doc"], pos[int(q["retrieval_idx"])])
               for q in json.loads((d / f"cosqa-retrieval-{split}-500.json").read_text())]
    return Benchmark(f"cosqa:{split}", queries, {"cosqa": texts}, {"cosqa": chunks})


# ---------------------------------------------------------------------------------------------- evaluation


def _cache_path(cache: Path, model_id: str, texts: Sequence[str], kind: str) -> Path:
    h = hashlib.blake2b(digest_size=10)
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return cache / f"{model_id.replace('/', '_')}-{kind}-{h.hexdigest()}.npy"


def encode_cached(encoder, texts: list[str], kind: str, cache: Path | None, threads: int = 1,
                  progress: Progress | None = None) -> np.ndarray:
    """Embed with a codeneedle Encoder (``kind`` = code | query), reusing ``cache`` when the same model has
    embedded the same texts before."""
    path = _cache_path(cache, encoder.model_id, texts, kind) if cache else None
    if path and path.is_file():
        return np.load(path)
    if progress:
        progress(f"embedding {len(texts)} {kind} texts with {encoder.model_id}")
    if kind == "query":
        vecs = encoder.encode_queries(texts)  # the path `needle search` takes (fp32, whatever the code side uses)
    else:
        vecs = encoder.encode(texts, batch_size=32, threads=threads)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
    return vecs


def evaluate_benchmark(bench: Benchmark, encoder=None, methods: Sequence[str] = ("bm25", "dense", "hybrid"),
                       cache: Path | None = None, threads: int = 1, progress: Progress | None = None) -> dict:
    """Metrics per method (``bm25``: the product's FTS5 ranking; ``dense``: exact cosine over every candidate;
    ``hybrid``: ``needle search``'s ranking), overall and per group."""
    need_dense = any(m in methods for m in ("dense", "hybrid"))
    if need_dense and encoder is None:
        raise ValueError("dense and hybrid need an encoder")
    by_group: dict[str, list[tuple[int, str, int]]] = {}
    for qi, (g, text, target) in enumerate(bench.queries):
        by_group.setdefault(g, []).append((qi, text, target))
    ranks: dict[str, list[int | None]] = {m: [None] * len(bench.queries) for m in methods}
    per_group: dict[str, dict[str, dict]] = {}
    for g, items in sorted(by_group.items()):
        texts = bench.corpus[g]
        c = q = None
        if need_dense:
            c = encode_cached(encoder, texts, "code", cache, threads, progress)
            q = encode_cached(encoder, [t for _, t, _ in items], "query", cache, threads, progress)
        search = None
        if "bm25" in methods or "hybrid" in methods:
            chunks = bench.chunks.get(g) or [candidate_chunk(t, t) for t in texts]
            search = GroupSearch(chunks, c if "hybrid" in methods else None,
                                 encoder.model_id if encoder is not None else "eval")
        try:
            for k, (qi, text, target) in enumerate(items):
                if "bm25" in methods:
                    ranks["bm25"][qi] = position_of(search.lexical(text), target)
                if "dense" in methods:
                    ranks["dense"][qi] = rank_of(q[k] @ c.T, target)
                if "hybrid" in methods:
                    ranks["hybrid"][qi] = position_of(search.hybrid(text, q[k]), target)
        finally:
            if search is not None:
                search.close()
        per_group[g] = {m: metrics_from_ranks([ranks[m][qi] for qi, _, _ in items]) for m in methods}
    return {"benchmark": bench.name, "overall": {m: metrics_from_ranks(ranks[m]) for m in methods},
            "groups": per_group}


def repo_benchmark(repo: Path) -> Benchmark:
    """One working tree as a benchmark: each documented function's first doc sentence searches among all the
    repository's documented functions, their doc comments stripped (the CodeSearchNet manner)."""
    from codeneedle.training.adapt import mine_repository

    pairs = mine_repository(Path(repo).resolve())
    if not pairs:
        raise ValueError(f"no documented functions found in {repo}")
    chunks = [p.chunk(p.code) for p in pairs]
    queries = [("repo", p.query, i) for i, p in enumerate(pairs)]
    return Benchmark(f"repo:{Path(repo).name}", queries, {"repo": [embed_text(c) for c in chunks]}, {"repo": chunks})


def load_benchmark(name: str, pairs_dir: Path | None = None) -> Benchmark:
    """``cosqa-dev`` | ``cosqa-test`` | ``heldout`` | ``valid`` (the last two from ``pairs_dir``) | a repository
    folder."""
    if Path(name).is_dir():
        return repo_benchmark(Path(name))
    if name.startswith("cosqa"):
        return cosqa_benchmark(name.split("-", 1)[1] if "-" in name else "dev")
    if name not in ("heldout", "valid"):
        raise ValueError(f"unknown benchmark {name!r}: cosqa-dev, cosqa-test, heldout or valid (with --pairs), "
                         "or a repository folder")
    if pairs_dir is None or not (pairs_dir / f"{name}.jsonl").is_file():
        raise ValueError(f"benchmark {name!r} needs the mined pairs folder (--pairs; no {name}.jsonl in "
                         f"{pairs_dir}): build it with scripts/build_training_set.py mine")
    return heldout_benchmark(pairs_dir, name)


def evaluate_model(model_path: str | Path | None, benchmark: str, progress: Progress | None = None,
                   pairs_dir: Path | None = None, methods: Sequence[str] = ("bm25", "dense", "hybrid"),
                   cache: Path | None = None, threads: int = 1) -> dict:
    """Evaluate one encoder (a name such as ``minilm`` or a model folder) on one benchmark by name."""
    from codeneedle.indexer.encoder import Encoder

    bench = load_benchmark(benchmark, pairs_dir)
    encoder = Encoder.load(str(model_path) if model_path else None) if any(
        m in methods for m in ("dense", "hybrid")) else None
    result = evaluate_benchmark(bench, encoder, methods, cache, threads, progress)
    result["model"] = encoder.model_id if encoder else None
    return result


def format_table(rows: list[tuple[str, dict]], baseline: str | None = None) -> str:
    """A plain-text table of (label, metrics) rows; ``baseline`` names the row ratios are taken against."""
    base = dict(rows).get(baseline) if baseline else None
    head = f"{'method':34s} {'MRR@10':>7s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s}" + ("   vs " + baseline if base else "")
    lines = [head, "-" * len(head)]
    for label, m in rows:
        line = f"{label:34s} {m['mrr@10']:7.3f} {m['r@1']:6.3f} {m['r@5']:6.3f} {m['r@10']:6.3f}"
        if base:
            line += f"   x{m['mrr@10'] / max(base['mrr@10'], 1e-9):.2f}"
        lines.append(line)
    return "\n".join(lines)
