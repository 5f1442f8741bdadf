"""Text -> vectors: a transformer encoder with mean pooling, L2-normalised, strictly offline."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from codeneedle.errors import ModelNotFoundError
from codeneedle.indexer.backends import CODE_MAX_TOKENS, default_code_tokens
from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.models import resolve_model
from codeneedle.indexer.pooling import mean_pool_torch
from codeneedle.indexer.types import split_identifier

# Nothing in Needle may reach for a model hub; set before transformers is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_SHARED: dict[str, Encoder] = {}
_SHARED_LOCK = threading.Lock()
QUERY_MAX_TOKENS = 64
# A model folder may hold a query tower: layers retrained on the query side only, against the code vectors the
# index already holds (codeneedle.training.query_tower). Queries go through it; code never does, so indexes stay
# valid. ``NEEDLE_QUERY_TOWER``: 0/off searches with the shared weights (benchmarks compare the two), a folder
# tries a tower trained elsewhere.
QUERY_TOWER = "query"
_OFF = ("0", "off", "false", "no")


def query_tower_of(folder: Path, model_id: str) -> Path | None:
    """The query tower queries go through: ``$NEEDLE_QUERY_TOWER`` or the model folder's own, when it was trained
    against this model's code vectors; None for the shared weights."""
    choice = os.environ.get("NEEDLE_QUERY_TOWER", "").strip()
    if choice.lower() in _OFF:
        return None
    tower = Path(choice).expanduser() if choice else folder / QUERY_TOWER
    if choice and not (tower / "model.safetensors").is_file():
        # A mistyped path would otherwise turn the shipped tower off without a word (as NEEDLE_RERANKER says).
        raise ModelNotFoundError(f"NEEDLE_QUERY_TOWER={choice}: no query tower there (model.safetensors); "
                                 "'off' searches without one")
    return tower if tower_fits(tower, model_id) else None


def tower_fits(tower: Path, model_id: str) -> bool:
    """Whether ``tower`` holds a query tower trained against ``model_id``'s code vectors."""
    if not (tower / "model.safetensors").is_file():
        return False
    try:
        trained_for = str(json.loads((tower / "query_tower.json").read_text()).get("code_model", ""))
    except (OSError, ValueError, AttributeError):
        return False
    # Code vectors of another precision or code cut are the same model's to within a cosine of ~0.99.
    return trained_for.partition("+")[0] == model_id.partition("+")[0]


def query_identity(model_id: str, tower: Path | None) -> str:
    """What a query vector is the product of: the model's id, plus the query tower's (``+q<hash>``) when there is
    one. A query adapter is fitted to one of these."""
    if tower is None:
        return model_id
    weights = tower / "model.safetensors"
    stat = weights.stat()
    digest = hashlib.blake2b(f"{stat.st_size}:{stat.st_mtime_ns}".encode(), digest_size=4).hexdigest()
    return f"{model_id}+q{digest}"


def embed_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: where it lives and what it is called, its doc comment, then its code."""
    doc = chunk.leading_doc
    head = f"{chunk.path} {split_identifier(chunk.name)}"
    return "\n".join((head, doc, chunk.text) if doc else (head, chunk.text))


class Encoder:
    """A sentence encoder loaded from a local HF model folder.

    BERT folders (every shipped model) encode queries with the numpy forward pass (no torch import) and code in
    bulk with ``backends.make_bulk`` (ONNX Runtime on every core, or CUDA); both load on first use. Other
    architectures go through transformers and torch for both.
    """

    def __init__(self, name: str, folder: Path, model: Callable | None, tokenizer: Callable | None, model_id: str,
                 dim: int, precision: str = "fp32", device: str = "cpu", code_tokens: int = CODE_MAX_TOKENS):
        """``model(ids, attention_mask)`` -> hidden states; ``tokenizer(texts, max_length)`` -> (ids, mask).

        ``model`` None: a BERT folder served by the numpy (queries) and bulk (code) engines.
        """
        self.name = name
        self.folder = folder
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.dim = dim
        self.precision = precision
        self.device = device
        self.code_tokens = code_tokens  # tokens of each chunk embedded (a shorter cut is another model id)
        self.workers: int | None = None  # bulk workers; None = sized to the machine
        self.cores: int | None = None  # cores the bulk engine may use; None = every core of this process
        self.query_tower = query_tower_of(folder, model_id) if model is None else None
        self._query_models: dict[Path | None, tuple] = {}
        self._bulk = None
        # One lock each: a search may load the bulk engine in the background while it encodes the query.
        self._query_lock = threading.Lock()
        self._bulk_lock = threading.Lock()

    @classmethod
    def load(cls, name_or_path: str | None = None, precision: str | None = None) -> Encoder:
        """Load an encoder by name (``minilm``, ``needle-code-v3``) or folder; never touches the network."""
        return cls.from_folder(*resolve_model(name_or_path), precision=precision)

    @classmethod
    def shared(cls, name: str, folder: Path) -> Encoder:
        """One loaded encoder per model folder per process: indexes of several workspace folders share it."""
        key = str(folder)
        with _SHARED_LOCK:
            if key not in _SHARED:
                _SHARED[key] = cls.from_folder(name, folder)
            return _SHARED[key]

    @classmethod
    def from_folder(cls, name: str, folder: Path, precision: str | None = None) -> Encoder:
        """Load the HF model folder ``folder`` under the display name ``name`` (engines load on first use)."""
        from codeneedle.indexer.numpy_bert import bert_config

        try:
            dim = int(bert_config(folder)["hidden_size"])
            if not (folder / "tokenizer.json").is_file():
                raise FileNotFoundError(folder / "tokenizer.json")
        except (ValueError, FileNotFoundError, KeyError):
            model, tokenizer = _transformers_model(folder)  # not a plain BERT folder: the general loader
            return cls(name, folder, model, tokenizer, model_identity(name, folder), model.hidden)
        device, precision = bulk_settings(name, precision)
        tokens = default_code_tokens(name)
        return cls(name, folder, None, None,
                   model_identity(name, folder, precision if device == "cpu" else None, tokens),
                   dim, precision, device, tokens)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed texts in length-sorted batches; returns float32 ``(n, dim)`` unit vectors in input order.

        ``max_length`` defaults to the encoder's code cut (``code_tokens``), ``batch_size`` to what the engine
        runs fastest (one text per thread on the CPU, wide batches on a GPU)."""
        max_length = max_length or self.code_tokens
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Sorting by length keeps padding (wasted FLOPs) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        if self.model is not None:
            batch_size = batch_size or 32
            groups = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
            return self._encode_torch(texts, groups, out, max_length, threads, on_batch)
        # As many batches as a multiple of the workers, so none sits idle while another runs the last one: with
        # 2 workers and 2-s commit groups the idle tail cost 6-8 % of a cold index (bench/index_speed.py).
        workers = max(1, self.bulk().workers)
        batch_size = batch_size or self.bulk().batch_size
        batches = -(-len(order) // batch_size)
        count = -(-batches // workers) * workers
        size = -(-len(order) // count)
        groups = [order[s : s + size] for s in range(0, len(order), size)]
        lock = threading.Lock()

        def done(i: int, vectors: np.ndarray) -> None:
            out[groups[i]] = vectors
            if on_batch:
                with lock:
                    on_batch(len(groups[i]))

        self.bulk().encode_batches([[texts[i] for i in g] for g in groups], max_length, done)
        return out

    def encode_few(self, texts: Sequence[str]) -> np.ndarray:
        """A handful of code texts, for the displayed score of a result whose chunk the index has not embedded
        yet: through the bulk engine when it is loaded (a process that is indexing: the vectors it stores), else
        through the numpy pass with the code side's own weights (a one-shot reader starts no bulk engine)."""
        if self.model is not None or not texts or self._bulk is not None:
            return self.encode(texts)
        from codeneedle.indexer.pooling import mean_pool

        model, tokenizer = self.query_model(tower=False)
        ids, mask = tokenizer(list(texts), self.code_tokens)
        return mean_pool(model(ids, mask), mask)

    def encode_queries(self, queries: Sequence[str], tower: bool = True) -> np.ndarray:
        """Embed short queries with the numpy forward pass: no torch import, a few ms per query.

        ``tower=False``: with the shared weights even when the model has a query tower (benchmarks compare)."""
        if self.model is not None:
            return self.encode(queries, batch_size=64, max_length=QUERY_MAX_TOKENS, threads=1)
        from codeneedle.indexer.pooling import mean_pool

        model, tokenizer = self.query_model(tower)
        out = np.zeros((len(queries), self.dim), dtype=np.float32)
        for start in range(0, len(queries), 64):
            ids, mask = tokenizer(list(queries[start : start + 64]), QUERY_MAX_TOKENS)
            out[start : start + 64] = mean_pool(model(ids, mask), mask)
        return out

    def query_model(self, tower: bool = True):
        """(NumpyBert, NumpyTokenizer), loaded on first use; through the query tower when the model has one."""
        tower_dir = self.query_tower if tower else None
        with self._query_lock:
            if tower_dir not in self._query_models:
                from codeneedle.indexer.numpy_bert import NumpyBert, NumpyTokenizer

                self._query_models[tower_dir] = (NumpyBert(self.folder, tower_dir), NumpyTokenizer(self.folder))
            return self._query_models[tower_dir]

    def bulk(self):
        """The bulk engine (``backends``), loaded on first use."""
        with self._bulk_lock:
            if self._bulk is None:
                from codeneedle.indexer.backends import make_bulk

                self._bulk = make_bulk(self.folder, self.precision, self.device, self.workers, self.cores)
            return self._bulk

    def _encode_torch(self, texts, groups, out, max_length, threads, on_batch) -> np.ndarray:
        import torch

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads or min(2, os.cpu_count() or 1))
        try:
            for idx in groups:
                out[idx] = self._encode_batch([texts[i] for i in idx], max_length)
                if on_batch:
                    on_batch(len(idx))
        finally:
            torch.set_num_threads(previous_threads)
        return out

    def _encode_batch(self, texts: list[str], max_length: int) -> np.ndarray:
        import torch

        ids, attention = self.tokenizer(texts, max_length)
        with torch.inference_mode():
            hidden = self.model(ids, attention)
            pooled = mean_pool_torch(hidden, attention)
        return pooled.numpy()


def bulk_settings(name: str, precision: str | None = None) -> tuple[str, str]:
    """(device, precision) bulk encoding will use for model ``name`` on this machine."""
    from codeneedle.indexer.backends import default_precision, select_device

    device = select_device()
    return device, (precision or default_precision(name)) if device == "cpu" else "fp16"


def bulk_identity(name: str, folder: Path) -> str:
    """The model id an index built here with ``name`` gets (int8 vectors are another model's)."""
    device, precision = bulk_settings(name)
    return model_identity(name, folder, precision if device == "cpu" else None,
                          default_code_tokens(name))


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


def model_identity(name: str, folder: Path, precision: str | None = None, tokens: int = CODE_MAX_TOKENS) -> str:
    """``name@hash`` where the hash covers the weights' size and head bytes: retrained weights get a new id.

    int8 vectors differ from fp32 ones (cosine ~0.99), so they are another model's: ``name@hash+int8``; so are
    vectors of chunks cut shorter than 256 tokens: ``+t128``.
    """
    weights = next(f for f in (folder / "model.safetensors", folder / "pytorch_model.bin") if f.is_file())
    h = hashlib.blake2b(digest_size=6)
    h.update(str(weights.stat().st_size).encode())
    with open(weights, "rb") as fh:
        h.update(fh.read(1 << 20))
        fh.seek(max(0, weights.stat().st_size - (1 << 20)))
        h.update(fh.read(1 << 20))
    return (f"{name}@{h.hexdigest()}" + ("+int8" if precision == "int8" else "")
            + (f"+t{tokens}" if tokens != CODE_MAX_TOKENS else ""))
