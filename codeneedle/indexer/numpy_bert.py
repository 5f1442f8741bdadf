"""The BERT forward pass in numpy: query encoding without importing torch.

Why: a one-shot `needle search` spent 2.2 of its 3.8 s importing torch to encode one short query. The model is
6 layers over a 16-token query: a few milliseconds of numpy matrix products. Same weights (safetensors), same
tokenizer, same arithmetic as ``bert.py``; a test checks both give the same vectors.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, far below float32 noise after a LayerNorm. numpy has no erf and
# scipy costs ~0.3 s to import.
_P, _A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise (float32 in, float32 out)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _P * a)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32, copy=False)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT uses."""
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * gamma + beta


def bert_config(folder: Path) -> dict:
    """The model folder's config.json, checked to be a plain BERT with weights in safetensors."""
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert":
        raise ValueError(f"{folder}: not a BERT model (model_type {config.get('model_type')!r})")
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder}: no model.safetensors")
    return config


def load_weights(folder: Path, tower: Path | None = None) -> dict[str, np.ndarray]:
    """The encoder's tensors as float32 numpy arrays (fp16 checkpoints widened), without the ``bert.`` prefix.

    ``tower``: a folder whose ``model.safetensors`` replaces some of them (a query tower holds only the layers it
    retrained; the rest stay shared with the code side)."""
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "model.safetensors"))
    if tower is not None:
        weights.update(load_file(str(tower / "model.safetensors")))
    return {k.removeprefix("bert."): np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}


class NumpyBert:
    """Inference-only BERT in numpy: (ids, mask) int64 arrays -> last hidden states float32 (batch, len, hidden).

    The weights, widened to float32 and laid out for ``x @ W``, are cached once in one flat file that later
    processes memory-map: loading costs milliseconds instead of ~0.6 s of reading, widening and transposing, and
    the 47 MB word-embedding table is only paged in for the rows a query uses.
    """

    def __init__(self, folder: Path, tower: Path | None = None):
        """``tower``: the folder of a query tower whose weights replace the shared ones (``load_weights``)."""
        config = bert_config(folder)
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        w = _mapped_weights(folder, self.layers, tower)
        self.word, self.pos, self.type0 = w["word"], w["pos"], w["type0"]
        self.emb_ln = (w["emb_ln.g"], w["emb_ln.b"])
        self.blocks = [tuple(w[f"{i}.{n}"] for n in _BLOCK) for i in range(self.layers)]

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        heads, head_dim, eps = self.heads, self.hidden // self.heads, self.eps
        x = self.word[ids] + self.pos[:length] + self.type0
        x = layer_norm(x, *self.emb_ln, eps)
        # Padded keys get -inf-like scores: exp() of them is exactly 0, as with torch's boolean mask.
        bias = np.where(mask[:, None, None, :].astype(bool), 0.0, -1e30).astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(head_dim))
        for qkv_w, qkv_b, o_w, o_b, ln1_g, ln1_b, i_w, i_b, f_w, f_b, ln2_g, ln2_b in self.blocks:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            x = layer_norm(ctx @ o_w + o_b + x, ln1_g, ln1_b, eps)
            h = gelu(x @ i_w + i_b) @ f_w + f_b
            x = layer_norm(h + x, ln2_g, ln2_b, eps)
        return x


class NumpyTokenizer:
    """The model folder's fast tokenizer (tokenizer.json): padded, truncated batches as int64 numpy arrays."""

    def __init__(self, folder: Path):
        self.path = folder / "tokenizer.json"
        if not self.path.is_file():
            raise FileNotFoundError(f"{folder}: no tokenizer.json")
        self._by_length: dict[int, object] = {}
        self._lock = threading.Lock()

    def _for(self, max_length: int):
        # One tokenizer per truncation length: changing a shared one's settings would race between threads.
        with self._lock:
            tok = self._by_length.get(max_length)
            if tok is None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(self.path))
                tok.enable_truncation(max_length=max_length)
                pad_id = tok.token_to_id("[PAD]") or 0
                tok.enable_padding(pad_id=pad_id, pad_token="[PAD]")
                self._by_length[max_length] = tok
            return tok

    def __call__(self, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        encodings = self._for(max_length).encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask


_BLOCK = ("qkv_w", "qkv_b", "o_w", "o_b", "ln1_g", "ln1_b", "i_w", "i_b", "f_w", "f_b", "ln2_g", "ln2_b")


def _layout(folder: Path, layers: int, tower: Path | None = None) -> dict[str, np.ndarray]:
    """The weights as the forward pass uses them: float32, linear weights transposed, Q/K/V side by side."""
    w = load_weights(folder, tower)
    out = {
        "word": w["embeddings.word_embeddings.weight"], "pos": w["embeddings.position_embeddings.weight"],
        "type0": w["embeddings.token_type_embeddings.weight"][0],
        "emb_ln.g": w["embeddings.LayerNorm.weight"], "emb_ln.b": w["embeddings.LayerNorm.bias"],
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        att = p + "attention.self."
        # Q, K and V as one (hidden, 3*hidden) product: one BLAS call instead of three.
        parts = dict(zip(_BLOCK, (
            np.concatenate([w[f"{att}{n}.weight"] for n in ("query", "key", "value")]).T,
            np.concatenate([w[f"{att}{n}.bias"] for n in ("query", "key", "value")]),
            w[f"{p}attention.output.dense.weight"].T, w[f"{p}attention.output.dense.bias"],
            w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"],
            w[f"{p}intermediate.dense.weight"].T, w[f"{p}intermediate.dense.bias"],
            w[f"{p}output.dense.weight"].T, w[f"{p}output.dense.bias"],
            w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"],
        ), strict=True))
        out.update({f"{i}.{k}": np.ascontiguousarray(v, dtype=np.float32) for k, v in parts.items()})
    return out


def user_cache() -> Path:
    """Needle's user cache (laid-out weights, ONNX graphs): ``$NEEDLE_CACHE_DIR`` or ``$XDG_CACHE_HOME/needle``
    (default ~/.cache/needle). A relative ``$XDG_CACHE_HOME`` is ignored, as the XDG spec asks (it put the cache
    inside whatever folder a command ran in, the repository being indexed); without a home folder at all (no
    ``$HOME`` and no passwd entry: a container's arbitrary uid), a temporary folder for this process."""
    import os

    base = os.environ.get("NEEDLE_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "needle"
    try:
        home = Path.home()
    except RuntimeError:  # "Could not determine home directory.": was a traceback from every command that embeds
        return _homeless_cache()
    # A relative $HOME would put the cache inside whatever folder the command ran in, as a relative XDG one did.
    return home / ".cache" / "needle" if home.is_absolute() else _homeless_cache()


_HOMELESS: list[Path] = []
_HOMELESS_LOCK = threading.Lock()


def _homeless_cache() -> Path:
    """This process's temporary cache folder, made (and the user told why) on first use, removed at exit."""
    import atexit
    import shutil
    import sys
    import tempfile

    with _HOMELESS_LOCK:
        if not _HOMELESS:
            _HOMELESS.append(Path(tempfile.mkdtemp(prefix="needle-cache-")))
            atexit.register(shutil.rmtree, _HOMELESS[0], ignore_errors=True)
            sys.stderr.write("needle: no home folder ($HOME is not set or not absolute, and this user has none): the "
                             "model cache is "
                             "kept in a temporary folder for this run only (seconds, every run): set "
                             "NEEDLE_CACHE_DIR or XDG_CACHE_HOME to a writable folder to keep it\n")
        return _HOMELESS[0]


def remember_source(entry: Path, folder: Path, files: Sequence[Path] = ()) -> None:
    """Record which model folder (and which of its weight ``files``, by size and mtime) the cache entry ``entry``
    (a path prefix) was built from, and drop every entry of the same cache folder that is stale.

    Entries are keyed by folder path and mtime, so each trained or temporary model, and each checkout or reinstall
    of the same one (new mtimes), leaves its own ~90 MB behind: this project's test runs left 20 GB in
    ~/.cache/needle. Pruning runs only when an entry is written.
    """
    try:
        stamps = [f"{st.st_size} {st.st_mtime_ns} {f.resolve()}" for f in files for st in (f.stat(),)]
        entry.with_name(entry.name + ".source").write_text("\n".join([str(folder.resolve()), *stamps]))
        for sidecar in entry.parent.glob("*.source"):
            if not _stale(sidecar):
                continue
            stem = sidecar.name[: -len(".source")]
            for old in entry.parent.glob(stem + "*"):
                if old.name == stem or old.name.startswith(stem + "."):
                    old.unlink(missing_ok=True)
        _drop_leftovers(entry.parent)
    except OSError:
        pass  # a read-only or vanishing cache: pruning is housekeeping, never an error


LEFTOVER_AGE_S = 3600.0


def _drop_leftovers(folder: Path) -> None:
    """Scratch a build killed outright (SIGKILL, a closed terminal) left behind: ``*.tmp`` files and ``.fp32-*``
    folders (90 MB each) untouched for an hour; a build under way touches its own within seconds."""
    import shutil

    cutoff = time.time() - LEFTOVER_AGE_S
    for left in [*folder.glob("*.tmp"), *folder.glob(".fp32-*")]:
        try:
            if left.lstat().st_mtime >= cutoff:
                continue
            if left.is_dir() and not left.is_symlink():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)
        except OSError:
            continue


def _stale(sidecar: Path) -> bool:
    """Whether the entry a ``.source`` sidecar describes was built from a model folder that is gone, or from
    weights that have changed since (a new checkout or install of the same folder)."""
    try:
        source, *stamps = sidecar.read_text().splitlines()
        recorded = [(int(size), int(mtime), Path(path)) for size, mtime, path in (s.split(" ", 2) for s in stamps)]
    except ValueError:
        return True  # unreadable: the entry is rebuilt when next wanted
    folder = Path(source.strip())
    if not folder.is_dir():
        return True
    if not stamps:  # written before the weights were recorded: stale if the weights are newer than the entry
        weights = folder / "model.safetensors"
        return weights.is_file() and weights.stat().st_mtime_ns > sidecar.stat().st_mtime_ns
    for size, mtime, path in recorded:
        try:
            st = path.stat()
        except OSError:
            return True
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            return True
    return False


def _mapped_weights(folder: Path, layers: int, tower: Path | None = None) -> dict[str, np.ndarray]:
    """The laid-out weights, memory-mapped from the user cache (written on first use; rebuilt if unreadable)."""
    import hashlib
    import os
    import tempfile

    files = [folder / "model.safetensors"] + ([tower / "model.safetensors"] if tower is not None else [])
    ident = ":".join(f"{w.resolve()}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in files)
    key = hashlib.blake2b(f"{ident}:np1".encode(), digest_size=8)
    base = user_cache() / "numpy" / f"{folder.name}-{key.hexdigest()}"
    data, index = base.with_suffix(".f32"), base.with_suffix(".json")
    try:
        layout = json.loads(index.read_text())
        flat = np.memmap(data, dtype=np.float32, mode="r")
        return {k: flat[o : o + int(np.prod(shape))].reshape(shape) for k, (o, shape) in layout.items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    arrays = _layout(folder, layers, tower)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        layout, offset = {}, 0
        fd, tmp = tempfile.mkstemp(dir=base.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            for k, v in arrays.items():
                fh.write(v.tobytes())
                layout[k] = (offset, list(v.shape))
                offset += v.size
        os.replace(tmp, data)  # data first, then the index that makes it valid
        fd, tmp = tempfile.mkstemp(dir=base.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(layout, fh)
        os.replace(tmp, index)
        remember_source(base, folder, files)
    except OSError:
        pass  # a read-only cache: keep working from memory
    return arrays
