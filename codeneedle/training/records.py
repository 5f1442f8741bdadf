"""Training records tokenized once: token ids per query and code, duplicate keys, and negative mining caches.

A step used to tokenize three times and build its duplicate mask in a Python double loop (16k pairs at batch
128): the GPU sat 50-70 % idle. Records are now tokenized once at load (or arrive pre-tokenized in a
``--pack`` bundle), a batch is padded from integer arrays, and the mask is one vectorised comparison of
64-bit keys. The same arrays, stored as ``uint16`` with offsets and xz-compressed, are the bundle's data file.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codeneedle.training.negatives import BM25, model_hard_negatives, random_negatives

FIRST_WORD_ID = 1996  # BERT uncased vocab: ids below are special tokens, single characters and punctuation
TOKENS_SUFFIX = ".tokens.xz"


def read_records(path: Path) -> list[dict]:
    """A pairs file's records: JSONL, one object per line with string ``query`` and ``code``. A line that is not
    one is a NeedleError naming the file and the line (one bad line of 150,000 must be findable)."""
    from codeneedle.errors import NeedleError

    records = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise NeedleError(f"{path}:{n}: not valid JSON ({exc.msg}, column {exc.colno})") from None
                if not (isinstance(rec, dict) and isinstance(rec.get("query"), str)
                        and isinstance(rec.get("code"), str)):
                    raise NeedleError(f'{path}:{n}: a training pair is a JSON object with string "query" and '
                                      '"code"')
                records.append(rec)
    except UnicodeDecodeError:
        raise NeedleError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise NeedleError(f"cannot read training pairs {path}: {exc.strerror or exc}") from None
    return records


def text_key(text: str) -> int:
    """A 64-bit key of whitespace-normalised text (equal keys: the same code or the same query)."""
    h = hashlib.blake2b(" ".join(text.split()).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "little", signed=True)


@dataclass
class TokenSet:
    """Every training record as token ids (``[CLS] ... [SEP]``, already truncated) plus what mining needs."""

    q: list[np.ndarray]
    c: list[np.ndarray]
    repo: list[str]
    qkey: np.ndarray  # int64, equal for records with the same doc query
    ckey: np.ndarray  # int64, equal for records with the same code
    lexical: list[str] | None = None  # code text for BM25 when known; else BM25 runs over code token ids
    query_text: list[str] | None = None  # the queries, beside ``lexical``
    extra_negs: dict[int, list[np.ndarray]] = field(default_factory=dict)  # feedback: shown but not opened

    def __len__(self) -> int:
        return len(self.q)


def _ids(tok, texts: list[str], max_tokens: int, chunk: int = 4096) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for s in range(0, len(texts), chunk):
        enc = tok(texts[s:s + chunk], truncation=True, max_length=max_tokens, padding=False)["input_ids"]
        out += [np.asarray(e, dtype=np.int32) for e in enc]
    return out


def tokenize_records(recs: Sequence[dict], tok, query_max_tokens: int, code_max_tokens: int) -> TokenSet:
    """Tokenize queries and code once (the fast tokenizer works on whole lists in Rust)."""
    q = _ids(tok, [r["query"] for r in recs], query_max_tokens)
    c = _ids(tok, [r["code"] for r in recs], code_max_tokens)
    qkey = np.asarray([text_key(r.get("doc_query", r["query"]).lower()) for r in recs], dtype=np.int64)
    ckey = np.asarray([text_key(r.get("code_plain", r["code"])) for r in recs], dtype=np.int64)
    extra: dict[int, list[np.ndarray]] = {}
    for i, r in enumerate(recs):
        if r.get("negatives"):
            extra[i] = _ids(tok, list(r["negatives"]), code_max_tokens)
    return TokenSet(q, c, [r["repo"] for r in recs], qkey, ckey,
                    [r.get("code_plain", r["code"]) for r in recs], [r["query"] for r in recs], extra)


def subset(ts: TokenSet, keep: Sequence[int]) -> TokenSet:
    """The records ``keep`` (in that order) of a TokenSet."""
    new = {old: i for i, old in enumerate(keep)}
    return TokenSet([ts.q[i] for i in keep], [ts.c[i] for i in keep], [ts.repo[i] for i in keep],
                    ts.qkey[list(keep)], ts.ckey[list(keep)],
                    [ts.lexical[i] for i in keep] if ts.lexical is not None else None,
                    [ts.query_text[i] for i in keep] if ts.query_text is not None else None,
                    {new[i]: v for i, v in ts.extra_negs.items() if i in new})


# ------------------------------------------------------------------------------------------ the packed file


def _flat(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    flat = np.concatenate(arrays).astype(np.uint16) if arrays else np.zeros(0, np.uint16)
    return flat, offsets


def _planes(flat: np.ndarray) -> np.ndarray:
    # low bytes then high bytes: xz finds far more repetition in each plane than in interleaved uint16
    return flat.astype("<u2").view(np.uint8).reshape(-1, 2).T.copy()


def _unplanes(planes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(planes.T).view("<u2").ravel()


def _unflat(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    flat = _unplanes(flat).astype(np.int32)
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def save_tokens(ts: TokenSet, path: Path, preset: int = 6) -> Path:
    """Write a TokenSet as xz-compressed npz: ids as uint16 (the vocabulary has 30,522 entries) with offsets."""
    repos = sorted(set(ts.repo))
    rid = {r: i for i, r in enumerate(repos)}
    qf, qo = _flat(ts.q)
    cf, co = _flat(ts.c)
    owners = sorted(ts.extra_negs)
    negs = [a for i in owners for a in ts.extra_negs[i]]
    nf, no = _flat(negs)
    buf = io.BytesIO()
    np.savez(buf, q=_planes(qf), q_off=qo, c=_planes(cf), c_off=co, repo=np.asarray([rid[r] for r in ts.repo], np.int32),
             repos=np.frombuffer(json.dumps(repos).encode(), np.uint8), qkey=ts.qkey, ckey=ts.ckey,
             neg=_planes(nf), neg_off=no, neg_owner=np.asarray([i for i in owners for _ in ts.extra_negs[i]], np.int64))
    path.write_bytes(lzma.compress(buf.getvalue(), preset=preset))
    return path


def load_tokens(path: Path) -> TokenSet:
    """Read what :func:`save_tokens` wrote."""
    with np.load(io.BytesIO(lzma.decompress(Path(path).read_bytes()))) as z:
        repos = json.loads(bytes(z["repos"]).decode())
        extra: dict[int, list[np.ndarray]] = {}
        for owner, arr in zip(z["neg_owner"].tolist(), _unflat(z["neg"], z["neg_off"]), strict=True):
            extra.setdefault(owner, []).append(arr)
        return TokenSet(_unflat(z["q"], z["q_off"]), _unflat(z["c"], z["c_off"]),
                        [repos[i] for i in z["repo"].tolist()], z["qkey"].copy(), z["ckey"].copy(), None, None, extra)


# ------------------------------------------------------------------------------------------ batches, masks


def pad(arrays: Sequence[np.ndarray], max_tokens: int = 0):
    """(input_ids, attention_mask) int64 tensors, right-padded to the longest array (cut to ``max_tokens``
    keeping the final ``[SEP]`` when given)."""
    import torch

    if max_tokens:
        arrays = [a if len(a) <= max_tokens else np.concatenate([a[:max_tokens - 1], a[-1:]]) for a in arrays]
    n = max(len(a) for a in arrays)
    ids = np.zeros((len(arrays), n), dtype=np.int64)
    mask = np.zeros((len(arrays), n), dtype=np.int64)
    for row, a in enumerate(arrays):
        ids[row, :len(a)] = a
        mask[row, :len(a)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def duplicate_mask(ts: TokenSet, idx: Sequence[int]):
    """``(B, B)`` bool: off-diagonal pairs of a batch with the same query or the same code (false negatives)."""
    import torch

    ix = np.asarray(idx)
    q, c = ts.qkey[ix], ts.ckey[ix]
    m = (q[:, None] == q[None, :]) | (c[:, None] == c[None, :])
    np.fill_diagonal(m, False)
    return torch.from_numpy(m)


# ------------------------------------------------------------------------------------------------- mining


class NegativeMiner:
    """Mined negatives from the query's own repository, with per-repository state built once per run.

    BM25 indexes never change during a run; rebuilding them every 20 steps over ~50k documents cost 4-5 s a
    round on the GPU run (3.5 instead of 10.3 steps/s), and the candidate list was rebuilt per record.
    """

    def __init__(self, ts: TokenSet):
        self.ts = ts
        members: dict[str, list[int]] = {}
        for i, r in enumerate(ts.repo):
            members.setdefault(r, []).append(i)
        self.members = {r: np.asarray(v) for r, v in members.items()}
        self._bm25: dict[str, BM25] = {}
        self.bm25_builds = 0

    def bm25_index(self, repo: str) -> BM25:
        """The repository's BM25 index over its code (built on first use)."""
        index = self._bm25.get(repo)
        if index is None:
            idx = self.members[repo]
            if self.ts.lexical is not None:
                index = BM25([self.ts.lexical[i] for i in idx])
            else:
                index = BM25([self.ts.c[i] for i in idx], tokenizer=_word_ids)
            self._bm25[repo] = index
            self.bm25_builds += 1
        return index

    def bm25(self, chosen: Sequence[int]) -> dict[int, int]:
        """{query record: the most BM25-similar other code of its repository (not a duplicate of its own)}."""
        out: dict[int, int] = {}
        for i in chosen:
            repo = self.ts.repo[i]
            index, idx = self.bm25_index(repo), self.members[repo]
            query = self.ts.query_text[i] if self.ts.query_text is not None else self.ts.q[i]
            scores = index.scores(query)
            for j in idx[np.argsort(-scores, kind="stable")[:16]]:
                if j != i and self.ts.ckey[j] != self.ts.ckey[i]:
                    out[i] = int(j)
                    break
        return out

    def random(self, chosen: Sequence[int], seed: int) -> dict[int, int]:
        """{query record: a random other code of its repository}."""
        cand, positives = self._candidates(chosen)
        picks = random_negatives(positives, len(cand), 1, seed, [self.ts.repo[j] for j in cand])
        return {q: cand[p[0]] for q, p in zip(chosen, picks, strict=True) if p}

    def model(self, chosen: Sequence[int], encode, seed: int, bound: int = 4) -> dict[int, int]:
        """{query record: the nearest other code under the current encoder}; ``encode(arrays, kind)`` embeds
        token arrays (``kind`` = query | code); at most ``bound`` candidates per query are encoded."""
        cand, positives = self._candidates(chosen)
        if len(cand) > bound * len(chosen):
            keep = sorted(set(random.Random(seed).sample(cand, bound * len(chosen))) | set(chosen))
            cand = keep
            pos = {r: j for j, r in enumerate(cand)}
            positives = [pos[i] for i in chosen]
        c_emb = encode([self.ts.c[j] for j in cand], "code")
        q_emb = encode([self.ts.q[i] for i in chosen], "query")
        picks = model_hard_negatives(q_emb, c_emb, positives, 1, [self.ts.repo[j] for j in cand])
        return {q: cand[p[0]] for q, p in zip(chosen, picks, strict=True) if p}

    def _candidates(self, chosen: Sequence[int]) -> tuple[list[int], list[int]]:
        repos = sorted({self.ts.repo[i] for i in chosen})
        cand = sorted(int(j) for r in repos for j in self.members[r])
        pos = {r: j for j, r in enumerate(cand)}
        return cand, [pos[i] for i in chosen]


def _word_ids(ids) -> list[int]:
    return [int(t) for t in ids if t >= FIRST_WORD_ID]
