"""The second stage for typed questions (``codeneedle/indexer/late_interaction.py``), its weight and cut swept.

Each query token's best cosine among a candidate's code tokens, averaged over the query's tokens (ColBERT's score,
with no training: the shipped encoder's shared layers; code through the bulk engine's int8 graph), is added with
weight w to the prior the re-ranker uses (``rerank.reorder``). Prints, from one run over CoSQA through the index:
the first stage, the cross-encoder for every question, the first stage + w x MaxSim and the re-ranker + w x MaxSim
for every question, and Needle as shipped (MaxSim for typed questions, the cross-encoder for the rest), each with
a paired bootstrap against the first stage and the time MaxSim takes per question.

    .venv/bin/python bench/late_interaction.py --split dev                  # tune here
    .venv/bin/python bench/late_interaction.py --split dev --tokens 128 --weights 10 15 25
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from codeneedle.indexer import late_interaction as L
from codeneedle.indexer import search as S
from codeneedle.indexer.index import Index
from codeneedle.indexer.rerank import Reranker, depth_setting, reorder, rerank_text, reranker_dir
from codeneedle.indexer.settings import IndexSettings

POOL = 50  # candidates per retrieval side, as Index.search uses for k=10


def main(argv: list[str] | None = None) -> None:
    import cosqa_search as C
    from quality import index_dir, rr

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--tokens", type=int, default=L.CODE_TOKENS, help="code tokens MaxSim reads per candidate")
    ap.add_argument("--weights", type=float, nargs="+", default=[15.0, 25.0, 40.0])
    args = ap.parse_args(argv)
    corpus = C.build_corpus(C.CACHE / "cosqa-repo")
    queries = json.loads((C.DATA / f"cosqa-retrieval-{args.split}-500.json").read_text())
    reranker = Reranker(reranker_dir())
    settings = IndexSettings(model=None, index_dir=index_dir(C.CACHE, "cosqa-index", None))  # quality.py's
    runs: dict[str, list[float]] = {}
    seconds: list[float] = []
    typed = 0
    with Index.open(corpus, settings) as index:
        index.update()
        store, vectors, encoder = index.reader(), index.vectors(), index.encoder
        for q in queries:
            text, target = q["doc"], f"f{q['retrieval_idx']:05d}.py"
            qvec = encoder.encode_queries([text])[0]
            dense = S.dense_ranking(store, vectors, index.model_id, qvec, POOL, S.Filters())
            ranked = S.rank(store, dense, S.lexical_ranking(store, text, POOL, S.Filters()), text)
            first = [c for c, _ in ranked]
            depth = depth_setting(reranker)
            widest = max(depth, L.DEPTH)
            head_rows = store.chunks_by_ids(first[:widest])
            found = [(c, s, head_rows[c]) for c, s in ranked[:widest] if c in head_rows]
            logits = reranker.score(text, [rerank_text(r) for _, _, r in found])
            t0 = time.perf_counter()
            late = L.maxsim(encoder, text, [r for _, _, r in found[: L.DEPTH]], args.tokens)
            seconds.append(time.perf_counter() - t0)
            cross = [c for c, _, _ in reorder(text, found[:depth], logits[:depth], reranker.settings.blend)] + first[depth:]
            orders = {"first stage": first, "cross-encoder": cross}
            for w in args.weights:
                orders[f"first stage + {w:g} x MaxSim"] = [
                    c for c, _, _ in reorder(text, found[: L.DEPTH], w * late, 1.0)] + first[L.DEPTH:]
                orders[f"cross-encoder + {w:g} x MaxSim"] = [
                    c for c, _, _ in reorder(text, found[: L.DEPTH], logits[: L.DEPTH] + w * late,
                                             reranker.settings.blend)] + first[L.DEPTH:]
            shipped = L.applies(encoder, text)
            typed += shipped
            orders["as shipped"] = ([c for c, _, _ in reorder(text, found[: L.DEPTH], L.WEIGHT * late, 1.0)]
                                    + first[L.DEPTH:]) if shipped else cross
            rows = store.chunks_by_ids(list({c for o in orders.values() for c in o[:20]}))
            for name, order in orders.items():
                runs.setdefault(name, []).append(rr(order, rows, lambda row, t=target: row.path == t))
    base = np.array(runs["first stage"])
    rng = np.random.default_rng(0)
    print(f"## CoSQA {args.split} through the index, MRR@10; MaxSim over {L.DEPTH} candidates at {args.tokens} code "
          f"tokens: p50 {1000 * np.median(seconds):.0f} ms a question; {typed} of {len(queries)} are typed questions "
          f"(as shipped: w {L.WEIGHT:g} at {L.CODE_TOKENS} tokens for those, the cross-encoder for the rest)")
    for name, ranks in runs.items():
        diff = np.array(ranks) - base
        boots = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(3000)])
        print(f"{name:34}{np.mean(ranks):8.4f}   vs first stage {diff.mean():+.4f} (better {int((diff > 0).sum())}, "
              f"worse {int((diff < 0).sum())}, P(gain <= 0) {np.mean(boots <= 0):.3f})")


if __name__ == "__main__":
    main()
