"""The second stage: a cross-encoder that reads the query and a candidate chunk together and scores the pair.

The first stage (dense + BM25 + the ranking rules) sees query and code only through one vector each; the
re-ranker attends across both, so "sort the values in parallel" can tell ``par_sort`` from ``sort`` by reading
the bodies. It re-scores the top ``n`` candidates only, and leaves the rules' name tiers alone: definitions of a
name the query is or mentions stay first, in the rules' order, whatever the re-ranker thinks.

A re-ranker folder is a BERT model (``model.safetensors``, ``config.json``, ``tokenizer.json``) plus
``reranker.json``: the scoring head (a linear layer over the mean of the pair's token states, not normalised:
the head reads their length too), the token budgets and how its
score is blended with the first stage's. It runs on ONNX Runtime (int8), like bulk embedding.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeneedle.errors import ModelNotFoundError, NeedleError
from codeneedle.indexer.models import RERANK_MODEL, SHIPPED_MODELS_DIR
from codeneedle.indexer.pooling import mean_pool
from codeneedle.indexer.ranking import QueryRules
from codeneedle.indexer.store import ChunkRow
from codeneedle.indexer.types import split_identifier

HEAD_FILE = "reranker.json"
BLEND = 4.0


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """What a re-ranker folder's ``reranker.json`` fixes: its head, its token budgets, its blend."""

    weight: tuple[float, ...]
    bias: float
    query_tokens: int = 32
    max_tokens: int = 128
    # Weight of the first stage's prior (log demotion - log(1 + rank)) beside the logit: 3-4 was best for the
    # re-ranker of 2026-12-06 on the dev split (bench/quality.py --rerank-grid), 0 trusts the logits alone.
    blend: float = BLEND
    # Candidates re-scored: 20 is the deepest that keeps the server's search p50 within 150 ms on 2 cores with a
    # 3-layer model (bench/lsp_latency.py: 127 ms at 20, 345 ms at 50, 72 ms at 10).
    depth: int = 20

    @classmethod
    def read(cls, folder: Path) -> RerankSettings:
        data = json.loads((folder / HEAD_FILE).read_text())
        return cls(tuple(float(x) for x in data["weight"]), float(data["bias"]), int(data.get("query_tokens", 32)),
                   int(data.get("max_tokens", 128)), float(data.get("blend", BLEND)), int(data.get("depth", 20)))

    def write(self, folder: Path) -> None:
        (folder / HEAD_FILE).write_text(json.dumps({
            "weight": list(self.weight), "bias": self.bias, "query_tokens": self.query_tokens,
            "max_tokens": self.max_tokens, "blend": self.blend, "depth": self.depth}, indent=1) + "\n")


def is_reranker(folder: Path) -> bool:
    """A folder that holds a re-ranker (a BERT model and its scoring head)."""
    return (folder / HEAD_FILE).is_file() and (folder / "model.safetensors").is_file()


def reranker_dir() -> Path | None:
    """The re-ranker's folder: ``$NEEDLE_RERANKER`` (a folder, for measuring a candidate; ``off`` for none) or the
    shipped one; None when there is none (the first stage alone)."""
    given = os.environ.get("NEEDLE_RERANKER", "").strip()
    if given.lower() in ("0", "off", "none", "false"):
        return None
    if given:
        folder = Path(given).expanduser()
        if not is_reranker(folder):
            raise ModelNotFoundError(f"NEEDLE_RERANKER={given}: no re-ranker there (model.safetensors and "
                                     f"{HEAD_FILE})")
        return folder.resolve()
    folder = SHIPPED_MODELS_DIR / RERANK_MODEL
    return folder if is_reranker(folder) else None


def require_reranker() -> Path:
    """The re-ranker a request asked for by name (``--rerank``, ``rerank: true``): with none installed that is an
    error, not a silent no-op (the default, "on when installed", quietly searches with the first stage alone)."""
    folder = reranker_dir()
    if folder is None:
        raise NeedleError("rerank: no re-ranker is installed (NEEDLE_RERANKER=off, or the shipped one is gone); "
                          "train one with `needle train --reranker --data PAIRS.jsonl --out DIR` and set "
                          "NEEDLE_RERANKER=DIR")
    return folder


class PairTokenizer:
    """``[CLS] query [SEP] code [SEP]`` token ids: the query cut first to its budget, the code fills the rest.

    Training and search build pairs with this one class, so the model sees at search time what it learned on.
    """

    def __init__(self, folder: Path, query_tokens: int, max_tokens: int):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.cls = self._tok.token_to_id("[CLS]")
        self.sep = self._tok.token_to_id("[SEP]")
        self.pad = self._tok.token_to_id("[PAD]") or 0
        self.query_tokens = query_tokens
        self.max_tokens = max_tokens
        self._lock = threading.Lock()

    def ids(self, query: str, codes: Sequence[str]) -> list[list[int]]:
        with self._lock:  # a Tokenizer's settings are shared state; encode_batch itself is parallel
            q = self._tok.encode(query, add_special_tokens=False).ids[: self.query_tokens]
            # A long chunk is cut before tokenizing, at 6 characters a token: more than code averages, so the
            # token cut below still decides.
            room = self.max_tokens - len(q) - 3
            bodies = self._tok.encode_batch([c[: room * 6] for c in codes], add_special_tokens=False)
        return [[self.cls, *q, self.sep, *b.ids[:room], self.sep] for b in bodies]

    def batch(self, query: str, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded ``(ids, attention mask)`` int64 arrays, one row per code."""
        rows = self.ids(query, codes)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask


class Reranker:
    """Scores (query, chunk text) pairs; higher is more relevant. Thread-safe; the ONNX graph loads on first use."""

    def __init__(self, folder: Path, precision: str = "int8", threads: int | None = None):
        self.folder = folder
        self.settings = RerankSettings.read(folder)
        self.precision = precision
        self.threads = threads
        self.tokenizer = PairTokenizer(folder, self.settings.query_tokens, self.settings.max_tokens)
        self._head = np.asarray(self.settings.weight, dtype=np.float32)
        self._model = None
        self._lock = threading.Lock()

    def model(self):
        with self._lock:
            if self._model is None:
                from codeneedle.indexer.backends import cpu_count
                from codeneedle.indexer.onnx_bert import OnnxBert

                self._model = OnnxBert(self.folder, self.precision, threads=self.threads or cpu_count())
            return self._model

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per text, float32."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        ids, mask = self.tokenizer.batch(query, texts)
        pooled = mean_pool(self.model()(ids, mask), mask, normalize=False)
        return pooled @ self._head + np.float32(self.settings.bias)


_SHARED: dict[Path, Reranker] = {}
_SHARED_LOCK = threading.Lock()


def shared_reranker(folder: Path) -> Reranker:
    """One loaded re-ranker per folder per process: every index of a server shares it."""
    with _SHARED_LOCK:
        if folder not in _SHARED:
            _SHARED[folder] = Reranker(folder)
        return _SHARED[folder]


def depth_setting(reranker: Reranker) -> int:
    """Candidates re-scored: the folder's measured choice, or ``$NEEDLE_RERANK_DEPTH`` (benchmarks sweep it)."""
    raw = os.environ.get("NEEDLE_RERANK_DEPTH", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else reranker.settings.depth


def rerank_text(row: ChunkRow) -> str:
    """What the re-ranker reads of a chunk: where it lives and what it is called, its doc comment, its code
    (the text the encoder embeds, ``encoder.embed_text``, which training pairs are made of)."""
    head = f"{row.path} {split_identifier(row.name)}"
    doc = row.doc.strip()
    # A docstring lies inside the chunk's text already; a comment above the definition does not.
    if doc and doc[:40] not in row.text:
        return "\n".join((head, doc, row.text))
    return f"{head}\n{row.text}"


def rerank(reranker: Reranker, query: str, found: list[tuple[int, float, ChunkRow]], depth: int,
           blend: float | None = None) -> list[tuple[int, float, ChunkRow]]:
    """``found`` (the first stage's ``(chunk id, score, row)``, best first) with its top ``depth`` re-scored."""
    head = found[:depth]
    if len(head) < 2:
        return found
    logits = reranker.score(query, [rerank_text(row) for _, _, row in head])
    return reorder(query, found, logits, reranker.settings.blend if blend is None else blend)


def reorder(query: str, found: list[tuple[int, float, ChunkRow]], logits: np.ndarray,
            blend: float) -> list[tuple[int, float, ChunkRow]]:
    """``found`` with its first ``len(logits)`` re-ordered by the re-ranker's logits.

    Definitions of a name the query is or mentions (the rules' name tiers) stay first, in the rules' order: which
    of two ``slugify`` definitions is meant (the implementation, not its ``.pyi`` stub) is the rules' call. The
    other candidates go by logit plus ``blend`` times a prior from the first stage: minus the log of one plus
    their first-stage rank (its order, not its cosines: a cosine leaves out BM25 and the rules), plus the log of
    the rules' demotion (a test, stub or window the re-ranker likes still pays for being one). A large blend gives
    back the first stage's order.
    """
    head, tail = found[: len(logits)], found[len(logits):]
    rules = QueryRules.of(query)
    tiers = [rules.tier(row) for _, _, row in head]
    prior = np.log([rules.demotion(row) for _, _, row in head]) - np.log1p(np.arange(len(head), dtype=np.float64))
    combined = logits + blend * prior
    order = sorted(range(len(head)), key=lambda i: (-tiers[i], float(i) if tiers[i] else -float(combined[i]), i))
    return [head[i] for i in order] + tail
