"""A second stage under study, not shipped: late interaction (MaxSim) over the first stage's top 10, for questions.

Each query token's best cosine among a candidate's code tokens, averaged over the query's tokens (ColBERT's score,
with no training: the shipped encoder's shared layers; code through the bulk engine's int8 graph), is added with
weight w to the prior the re-ranker uses (``rerank.reorder``). Prints, from one run over CoSQA through the index:
the first stage, the shipped re-ranker, the first stage + w x MaxSim and the re-ranker + w x MaxSim, each with a
paired bootstrap against the first stage and the time MaxSim takes per question.

    .venv/bin/python bench/late_interaction.py --split dev                  # tune here
    .venv/bin/python bench/late_interaction.py --split dev --tokens 128 --weights 10 15 25
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from codeneedle.indexer import search as S
from codeneedle.indexer.encoder import QUERY_MAX_TOKENS, Encoder
from codeneedle.indexer.index import Index
from codeneedle.indexer.rerank import Reranker, reorder, rerank_text, reranker_dir
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.store import ChunkRow
from codeneedle.indexer.types import split_identifier

POOL = 50  # candidates per retrieval side, as Index.search uses for k=10
DEPTH = 10


def unit(h: np.ndarray) -> np.ndarray:
    return h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-9)


def maxsim(encoder: Encoder, query: str, rows: list[ChunkRow], tokens: int) -> np.ndarray:
    """Per row: the mean over query tokens of their best cosine with the row's code tokens, centred."""
    model, tokenizer = encoder.query_model(tower=False)
    ids, mask = tokenizer([query], QUERY_MAX_TOKENS)
    q = unit(model(ids, mask))[0][1 : int(mask[0].sum()) - 1]  # without [CLS] and [SEP]
    hidden, cmask = encoder.bulk().hidden_states([f"{r.path} {split_identifier(r.name)}\n{r.text}" for r in rows], tokens)
    states = unit(hidden)
    scores = np.array([(q @ states[i][1 : int(cmask[i].sum()) - 1].T).max(1).mean() for i in range(len(rows))])
    return scores - scores.mean()


def main(argv: list[str] | None = None) -> None:
    import cosqa_search as C
    from quality import index_dir, rr

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--tokens", type=int, default=64, help="code tokens MaxSim reads per candidate")
    ap.add_argument("--weights", type=float, nargs="+", default=[15.0, 25.0, 40.0])
    args = ap.parse_args(argv)
    corpus = C.build_corpus(C.CACHE / "cosqa-repo")
    queries = json.loads((C.DATA / f"cosqa-retrieval-{args.split}-500.json").read_text())
    reranker = Reranker(reranker_dir())
    settings = IndexSettings(model=None, index_dir=index_dir(C.CACHE, "cosqa-index", None))  # quality.py's
    runs: dict[str, list[float]] = {}
    seconds: list[float] = []
    with Index.open(corpus, settings) as index:
        index.update()
        store, vectors, encoder = index.reader(), index.vectors(), index.encoder
        for q in queries:
            text, target = q["doc"], f"f{q['retrieval_idx']:05d}.py"
            qvec = encoder.encode_queries([text])[0]
            dense = S.dense_ranking(store, vectors, index.model_id, qvec, POOL, S.Filters())
            ranked = S.rank(store, dense, S.lexical_ranking(store, text, POOL, S.Filters()), text)
            first = [c for c, _ in ranked]
            head_rows = store.chunks_by_ids(first[:DEPTH])
            found = [(c, s, head_rows[c]) for c, s in ranked[:DEPTH] if c in head_rows]
            rest = first[DEPTH:]
            logits = reranker.score(text, [rerank_text(r) for _, _, r in found])
            t0 = time.perf_counter()
            late = maxsim(encoder, text, [r for _, _, r in found], args.tokens)
            seconds.append(time.perf_counter() - t0)
            orders = {"first stage": first,
                      "re-ranker": [c for c, _, _ in reorder(text, found, logits, reranker.settings.blend)] + rest}
            for w in args.weights:
                orders[f"first stage + {w:g} x MaxSim"] = [c for c, _, _ in reorder(text, found, w * late, 1.0)] + rest
                orders[f"re-ranker + {w:g} x MaxSim"] = [
                    c for c, _, _ in reorder(text, found, logits + w * late, reranker.settings.blend)] + rest
            rows = store.chunks_by_ids(list({c for o in orders.values() for c in o[:20]}))
            for name, order in orders.items():
                runs.setdefault(name, []).append(rr(order, rows, lambda row, t=target: row.path == t))
    base = np.array(runs["first stage"])
    rng = np.random.default_rng(0)
    print(f"## CoSQA {args.split} through the index, MRR@10; MaxSim over {DEPTH} candidates at {args.tokens} code "
          f"tokens: p50 {1000 * np.median(seconds):.0f} ms a question")
    for name, ranks in runs.items():
        diff = np.array(ranks) - base
        boots = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(3000)])
        print(f"{name:34}{np.mean(ranks):8.4f}   vs first stage {diff.mean():+.4f} (better {int((diff > 0).sum())}, "
              f"worse {int((diff < 0).sum())}, P(gain <= 0) {np.mean(boots <= 0):.3f})")


if __name__ == "__main__":
    main()
