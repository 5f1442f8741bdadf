"""The second stage for typed questions: late interaction (MaxSim) over the first stage's top candidates.

A question typed as people type them ("python check if a variable is iterable") names no code; the first stage
compares it with each chunk through one vector. Late interaction compares it token by token: each query token's
best cosine among a candidate's code tokens, averaged over the query's tokens (ColBERT's score), from the shipped
encoder's own token states, so it needs no model of its own. On CoSQA dev it beat the cross-encoder for such
questions (0.559 against 0.547, first stage 0.545); on doc-comment sentences it lost (0.665 -> 0.654), so only
typed questions take this path (``is_typed_question``) and every other query keeps the cross-encoder
(``docs/BENCHMARKS.md``; ``bench/late_interaction.py`` sweeps it, ``bench/quality.py`` has it beside the
cross-encoder for every query).
"""

from __future__ import annotations

import numpy as np

from codeneedle.indexer.encoder import Encoder
from codeneedle.indexer.ranking import is_typed_question
from codeneedle.indexer.rerank import reorder, rerank_text
from codeneedle.indexer.store import ChunkRow

DEPTH = 10  # candidates compared: the top 10, what a user reads
CODE_TOKENS = 64  # of each candidate: 128 gained 0.004 more on CoSQA dev (not significant) at twice the time
WEIGHT = 20.0  # of the centred MaxSim beside the first stage's prior (rerank.reorder): 15-25 tie on CoSQA dev


def applies(encoder: Encoder, query: str) -> bool:
    """Whether ``query`` takes this second stage: a typed question, and an encoder whose token states are at hand
    (a BERT model run by our own engines)."""
    return encoder.model is None and is_typed_question(query)


def maxsim(encoder: Encoder, query: str, rows: list[ChunkRow], tokens: int = CODE_TOKENS) -> np.ndarray:
    """Per row: the mean over the query's tokens of each one's best cosine among the row's tokens, centred over
    the rows (only differences between candidates matter to the reorder)."""
    if not rows:
        return np.zeros(0)
    # Both sides through the bulk engine's shared layers, not the query tower: the tower learned to move a whole
    # query vector, and token states must come from the same layers to be compared. One call runs them all. A
    # chunk reads as the re-ranker reads it: path, name in words, a doc comment from above the code, the code.
    query_states, *states = encoder.bulk().token_states([query, *map(rerank_text, rows)], tokens)
    if len(query_states) < 3:  # nothing between [CLS] and [SEP] (characters the tokenizer drops)
        return np.zeros(len(rows))
    q = _unit(query_states[1:-1])
    scores = np.array([(q @ _unit(s[1:-1]).T).max(axis=1).mean() for s in states])
    return scores - scores.mean()


def late_rerank(encoder: Encoder, query: str, found: list[tuple[int, float, ChunkRow]],
                depth: int = DEPTH, weight: float = WEIGHT) -> list[tuple[int, float, ChunkRow]]:
    """``found`` (best first) with its top ``depth`` re-ordered by MaxSim beside the first stage's prior: the
    rules' name tiers and demotions hold as they do for the cross-encoder (``rerank.reorder``, blend 1)."""
    head = found[:depth]
    if len(head) < 2:
        return found
    return reorder(query, found, weight * maxsim(encoder, query, [row for _, _, row in head]), 1.0)


def _unit(h: np.ndarray) -> np.ndarray:
    return h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-9)
