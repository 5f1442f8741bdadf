"""Text -> vectors: a transformer encoder with mean pooling, L2-normalised, strictly offline."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.models import resolve_model

# Nothing in Needle may reach for a model hub; set before transformers is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_SHARED: dict[str, Encoder] = {}
_SHARED_LOCK = threading.Lock()
CODE_MAX_TOKENS = 256
QUERY_MAX_TOKENS = 64
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def split_identifier(name: str) -> str:
    """``Config.parseHTTPResponse_v2`` -> ``Config parse HTTP Response v2`` (WordPiece shreds camelCase)."""
    return " ".join(_CAMEL.sub(" ", name.replace("_", " ").replace(".", " ")).split())


def embed_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: where it lives and what it is called, its doc comment, then its code."""
    doc = chunk.leading_doc
    head = f"{chunk.path} {split_identifier(chunk.name)}"
    return "\n".join((head, doc, chunk.text) if doc else (head, chunk.text))


class Encoder:
    """A sentence encoder loaded from a local HF model folder."""

    def __init__(self, name: str, folder: Path, model: Callable, tokenizer: Callable, model_id: str, dim: int):
        """``model(ids, attention_mask)`` -> hidden states; ``tokenizer(texts, max_length)`` -> (ids, mask)."""
        self.name = name
        self.folder = folder
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.dim = dim

    @classmethod
    def load(cls, name_or_path: str | None = None) -> Encoder:
        """Load an encoder by name (``minilm``, ``needle-code-v1``) or folder; never touches the network."""
        return cls.from_folder(*resolve_model(name_or_path))

    @classmethod
    def shared(cls, name: str, folder: Path) -> Encoder:
        """One loaded encoder per model folder per process: indexes of several workspace folders share it."""
        key = str(folder)
        with _SHARED_LOCK:
            if key not in _SHARED:
                _SHARED[key] = cls.from_folder(name, folder)
            return _SHARED[key]

    @classmethod
    def from_folder(cls, name: str, folder: Path) -> Encoder:
        """Load the HF model folder ``folder`` under the display name ``name``."""
        from codeneedle.indexer.bert import BertEncoder, BertTokenizer

        try:
            model, tokenizer = BertEncoder(folder), BertTokenizer(folder)
        except (ValueError, FileNotFoundError, KeyError):
            model, tokenizer = _transformers_model(folder)  # not a plain BERT folder: the general loader
        return cls(name, folder, model, tokenizer, model_identity(name, folder), model.hidden)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        max_length: int = CODE_MAX_TOKENS,
        threads: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed texts in length-sorted batches; returns float32 ``(n, dim)`` unit vectors in input order."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads or min(2, os.cpu_count() or 1))
        try:
            # Sorting by length keeps padding (wasted FLOPs) small inside each batch.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self._encode_batch([texts[i] for i in idx], max_length)
                if on_batch:
                    on_batch(len(idx))
        finally:
            torch.set_num_threads(previous_threads)
        return out

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embed short queries; one thread is several times faster than two for short inputs here."""
        return self.encode(queries, batch_size=64, max_length=QUERY_MAX_TOKENS, threads=1)

    def _encode_batch(self, texts: list[str], max_length: int) -> np.ndarray:
        import torch

        ids, attention = self.tokenizer(texts, max_length)
        with torch.inference_mode():
            hidden = self.model(ids, attention)
            mask = attention.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().numpy()


def _transformers_model(folder: Path):
    """Any other encoder architecture, through transformers (imports much more; used only when needed)."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # Loading bars and hub chatter would land on a user's terminal or an LSP client's log.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hf_tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    hf_model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()

    def model(ids, attention):
        return hf_model(input_ids=ids, attention_mask=attention).last_hidden_state

    def tokenizer(texts, max_length):
        enc = hf_tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    model.hidden = int(hf_model.config.hidden_size)
    return model, tokenizer


def model_identity(name: str, folder: Path) -> str:
    """``name@hash`` where the hash covers the weights' size and head bytes: retrained weights get a new id."""
    weights = next(f for f in (folder / "model.safetensors", folder / "pytorch_model.bin") if f.is_file())
    h = hashlib.blake2b(digest_size=6)
    h.update(str(weights.stat().st_size).encode())
    with open(weights, "rb") as fh:
        h.update(fh.read(1 << 20))
        fh.seek(max(0, weights.stat().st_size - (1 << 20)))
        h.update(fh.read(1 << 20))
    return f"{name}@{h.hexdigest()}"
