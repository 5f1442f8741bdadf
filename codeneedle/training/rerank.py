"""Train the cross-encoder re-ranker (``codeneedle.indexer.rerank``) on docstring/code pairs.

Recipe: the encoder's first ``layers`` transformer layers (the shipped encoder's by default) read
``[CLS] query [SEP] code [SEP]``; a linear head over the mean-pooled pair gives a logit. Each query is trained
against the first stage's own top-ranked wrong answers from the same repository (the encoder's nearest
functions to the query, the positive and its copies excluded): a listwise softmax over one positive and
``group - 1`` of them, the loss cross-encoders for retrieval are trained with (sentence-transformers' CrossEncoder
with a multiple-negatives objective).

With ``residual`` set, it learns on top of the first stage instead of in its place: each candidate's logit is the
cross-encoder's plus ``residual`` times minus the log of one plus its first-stage rank, the prior search blends in
(``rerank.reorder``), so training spends itself on the queries the first stage gets wrong. Those groups are mined
from doc-less code (what a benchmark query, or a function without a doc comment, offers) and ranked by the shipped
first stage: the query tower on the query, the index's code vectors (read from a query tower run's cache).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from codeneedle.indexer.rerank import BLEND, PairTokenizer, RerankSettings, is_reranker

_log = logging.getLogger("codeneedle.training")


@dataclass
class RerankConfig:
    """One re-ranker training run."""

    data: str  # a training JSONL of pairs (scripts/build_training_set.py mine)
    out: str
    base: str | None = None  # the encoder whose layers start it (None: the shipped encoder)
    layers: int = 3
    queries: int = 20000  # training queries drawn (whole repositories at a time)
    group: int = 8  # one positive and group - 1 mined negatives per query
    mine_depth: int = 20  # negatives are drawn from the first stage's top this-many wrong answers
    batch_queries: int = 4
    lr: float = 1e-4
    head_lr: float = 2e-3  # the head starts from nothing: it needs far larger steps than the pretrained layers
    warmup: float = 0.05
    minutes: float = 60.0
    steps: int = 100_000
    epochs: int = 1  # passes over the mined groups (each pass reshuffled)
    query_tokens: int = 32
    max_tokens: int = 128
    threads: int = 2
    seed: int = 0
    reuse_groups: bool = False  # take the groups mined by an earlier run with the same out (OUT.groups.jsonl)
    # Keep the token embeddings fixed: AdamW over their 11.7M weights costs more than 3 layers' forward and backward
    # on a CPU, and a short run barely moves them.
    freeze_embeddings: bool = True
    # > 0: learn what the first stage misses (logit + residual * -log(1 + first-stage rank)); search then blends
    # with the same weight. Groups are mined by mine_ranked_groups.
    residual: float = 0.0
    per_repo: int = 150  # residual mining: queries drawn per repository at most
    min_pool: int = 30  # residual mining: repositories with fewer doc-less functions are left out
    vectors: str | None = None  # residual mining: a folder with the pairs' cached code vectors (a tower's cache/)


@dataclass(frozen=True, slots=True)
class Group:
    """A training query, its positive and the mined negatives (chunk texts as the index embeds them)."""

    query: str
    positive: str
    negatives: tuple[str, ...]
    ranks: tuple[int, ...] = ()  # the first stage's rank of the positive, then of each negative (residual mining)


def _function_key(rec: dict) -> tuple[str, str, str]:
    return rec["repo"], rec["path"], rec["name"]


def _by_repo(records: list[dict]) -> dict[str, list[dict]]:
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    return by_repo


def pick_records(records: list[dict], count: int, seed: int) -> list[dict]:
    """Records of whole repositories, drawn at random until ``count`` queries: negatives come from one repository."""
    by_repo = _by_repo(records)
    repos = sorted(by_repo)
    random.Random(seed).shuffle(repos)
    out: list[dict] = []
    for repo in repos:
        if len(out) >= count:
            break
        out.extend(by_repo[repo])
    return out[:count] if len(out) > count else out


def mine_groups(records: list[dict], encoder, cfg: RerankConfig, log: Callable[[str], None] = _log.info) -> list[Group]:
    """Each record's query against its repository's other functions, ranked by ``encoder`` (the first stage)."""
    rng = random.Random(cfg.seed)
    by_repo = _by_repo(records)
    groups: list[Group] = []
    t0 = time.monotonic()
    for n, mine in enumerate(by_repo.values()):
        pool: dict[tuple, str] = {}
        for r in mine:
            pool.setdefault(_function_key(r), r["code"])
        keys = list(pool)
        if len(keys) < cfg.group:
            continue
        vecs = encoder.encode([pool[k] for k in keys])
        qvecs = encoder.encode_queries([r["query"] for r in mine])
        plain = {k: pool[k].split("\n", 1)[-1].strip() for k in keys}
        for r, qv in zip(mine, qvecs, strict=True):
            own = _function_key(r)
            order = np.argsort(-(vecs @ qv))
            wrong = [keys[i] for i in order[: cfg.mine_depth + 2]
                     if keys[i] != own and plain[keys[i]] != plain[own]][: cfg.mine_depth]
            if len(wrong) < cfg.group - 1:
                continue
            # The hardest few always, the rest drawn from deeper: only the top ones would teach a narrow boundary.
            chosen = wrong[:3] + rng.sample(wrong[3:], cfg.group - 4)
            groups.append(Group(r["query"], r["code"], tuple(pool[k] for k in chosen)))
        if n % 20 == 0:
            log(f"mined {len(groups)} groups from {n + 1}/{len(by_repo)} repositories ({time.monotonic() - t0:.0f} s)")
    return groups


def mine_ranked_groups(records: list[dict], encoder, code_vectors: np.ndarray, cfg: RerankConfig,
                       log: Callable[[str], None] = _log.info) -> list[Group]:
    """Groups with the first stage's ranks: each query against its repository's doc-less functions.

    ``code_vectors[i]`` is ``records[i]``'s code as the index embeds it. Candidates are the pairs of the ``nodoc``
    variant (the code without its doc comment); a query's positive is its function's doc-less text, whatever
    variant the query came with. Ranks are by the query's vector (through the query tower, as search makes it)
    against the index's code vectors; a positive beyond the first 400 counts as rank 400.
    """
    rng = random.Random(cfg.seed)
    pool: dict[str, dict[tuple, tuple[str, np.ndarray]]] = defaultdict(dict)
    for rec, vec in zip(records, code_vectors, strict=True):
        if rec.get("code_variant") == "nodoc":
            pool[rec["repo"]].setdefault(_function_key(rec), (rec["code"], vec))
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        if _function_key(rec) in pool[rec["repo"]] and len(pool[rec["repo"]]) >= cfg.min_pool:
            by_repo[rec["repo"]].append(rec)
    repos = sorted(by_repo)
    rng.shuffle(repos)
    chosen: list[dict] = []
    for repo in repos:  # many repositories, a few queries each: no one codebase's idiom dominates
        mine = by_repo[repo]
        rng.shuffle(mine)
        chosen += mine[: cfg.per_repo]
    rng.shuffle(chosen)
    chosen = chosen[: cfg.queries]
    log(f"{len(chosen)} training queries from {len({r['repo'] for r in chosen})} repositories")
    qvecs = encoder.encode_queries([r["query"] for r in chosen])
    matrices: dict[str, tuple[list[tuple], np.ndarray]] = {}
    groups: list[Group] = []
    for rec, qv in zip(chosen, qvecs, strict=True):
        repo = rec["repo"]
        if repo not in matrices:
            keys = list(pool[repo])
            matrices[repo] = (keys, np.stack([pool[repo][k][1] for k in keys]))
        keys, matrix = matrices[repo]
        order = np.argsort(-(matrix @ qv))
        own = _function_key(rec)
        rank = {keys[i]: n for n, i in enumerate(order[:400])}
        plain = pool[repo][own][0].split("\n", 1)[-1].strip()
        wrong = [(keys[i], n) for n, i in enumerate(order[: cfg.mine_depth + 3])
                 if keys[i] != own and pool[repo][keys[i]][0].split("\n", 1)[-1].strip() != plain][: cfg.mine_depth]
        if len(wrong) < cfg.group - 1:
            continue
        picked = wrong[:3] + rng.sample(wrong[3:], cfg.group - 4)
        groups.append(Group(rec["query"], pool[repo][own][0], tuple(pool[repo][k][0] for k, _ in picked),
                            (rank.get(own, 400), *(n for _, n in picked))))
    return groups


def build_model(base_folder: Path, layers: int):
    """(transformers BertModel with the first ``layers`` layers of ``base_folder``, linear head)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(base_folder), local_files_only=True, num_hidden_layers=layers,
                                      dtype=torch.float32)
    head = torch.nn.Linear(model.config.hidden_size, 1)
    torch.nn.init.zeros_(head.bias)
    torch.nn.init.normal_(head.weight, std=0.02)
    if is_reranker(base_folder):  # continuing a re-ranker: its head too
        settings = RerankSettings.read(base_folder)
        with torch.no_grad():
            head.weight.copy_(torch.tensor(settings.weight).view(1, -1))
            head.bias.fill_(settings.bias)
    return model, head


def group_logits(model, head, tokenizer: PairTokenizer, groups: list[Group]):
    """(len(groups), group) logits, the positive in column 0."""
    import torch

    from codeneedle.indexer.pooling import mean_pool_torch

    rows: list[list[int]] = []
    for g in groups:
        rows.extend(tokenizer.ids(g.query, [g.positive, *g.negatives]))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    return head(mean_pool_torch(hidden, mask, normalize=False)).view(len(groups), -1)


def train_reranker(cfg: RerankConfig, progress: Callable[[dict], None] | None = None) -> Path:
    """Mine, train for ``cfg.minutes`` (or ``cfg.steps``), export to ``cfg.out``; returns the folder.

    ``progress`` receives ``{"message"}`` lines and ``{"step", "steps", "loss", "stage"}`` updates (the shape
    ``needle train``'s progress bar takes)."""
    import torch

    def log(message: str) -> None:
        if progress is not None:
            progress({"message": message})
        else:
            _log.info("%s", message)

    from codeneedle.indexer.encoder import Encoder
    from codeneedle.indexer.models import resolve_model
    from codeneedle.training.mining import load_jsonl
    from codeneedle.training.records import read_records

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    name, base_folder = resolve_model(cfg.base)
    # The first stage that mines: the encoder the model starts from, or the shipped one when it continues a
    # re-ranker.
    first_stage = None if is_reranker(base_folder) else name
    cache = Path(cfg.out).with_name(Path(cfg.out).name + ".groups.jsonl")
    if cfg.reuse_groups and cache.is_file():
        mined = [Group(d["query"], d["positive"], tuple(d["negatives"]), tuple(d.get("ranks") or ()))
                 for d in load_jsonl(cache)]
        log(f"{len(mined)} mined groups reused from {cache}")
    else:
        if cfg.residual:
            mined = _mine_residual(cfg, Encoder.load(first_stage), log)
        else:
            records = pick_records(read_records(Path(cfg.data)), cfg.queries, cfg.seed)
            log(f"{len(records)} training queries from {len({r['repo'] for r in records})} repositories")
            mined = mine_groups(records, Encoder.load(first_stage), cfg, log)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(json.dumps(asdict(g)) + "\n" for g in mined))
    log(f"{len(mined)} groups of {cfg.group}")
    rng = random.Random(cfg.seed)
    groups: list[Group] = []
    for _ in range(cfg.epochs):
        groups += rng.sample(mined, len(mined))
    model, head = build_model(base_folder, cfg.layers)
    if cfg.freeze_embeddings:
        model.embeddings.requires_grad_(False)
    tokenizer = PairTokenizer(base_folder, cfg.query_tokens, cfg.max_tokens)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr},
                                   {"params": list(head.parameters()), "lr": cfg.head_lr, "weight_decay": 0.0}],
                                  weight_decay=0.01)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    total = min(cfg.steps, len(groups) // cfg.batch_queries)
    warm = max(1, int(total * cfg.warmup))
    model.train()
    start, step, losses = time.monotonic(), 0, []
    prior_losses: list[float] = []  # residual: the loss of the first stage's prior alone, on the same batches
    deadline = start + cfg.minutes * 60
    target = torch.zeros(cfg.batch_queries, dtype=torch.long)
    while step < total and time.monotonic() < deadline:
        batch = groups[step * cfg.batch_queries : (step + 1) * cfg.batch_queries]
        # Linear warm-up, then linear decay over the steps the time budget is expected to allow.
        done = step / max(1, min(total, _expected_steps(step, start, deadline, total)))
        factor = min(1.0, (step + 1) / warm) * max(0.05, 1.0 - done)
        for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            g["lr"] = lr * factor
        logits = group_logits(model, head, tokenizer, batch)
        if cfg.residual:
            prior = -cfg.residual * torch.log1p(torch.tensor([g.ranks for g in batch], dtype=torch.float32))
            logits = logits + prior
            prior_losses.append(torch.nn.functional.cross_entropy(prior, target[: len(batch)]).item())
        loss = torch.nn.functional.cross_entropy(logits, target[: len(batch)])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if progress is not None:
            progress({"step": step, "steps": total, "loss": float(np.mean(losses[-50:])), "stage": "re-ranker"})
        if step % 200 == 0:
            log(f"step {step}/{total} loss {np.mean(losses[-50:]):.3f} ({time.monotonic() - start:.0f} s)")
    window = max(1, min(100, len(losses) // 10))  # mean loss of the first and the last tenth of the run
    return export(model, head, base_folder, Path(cfg.out), cfg, {
        "steps": step, "groups": len(mined), "seconds": round(time.monotonic() - start),
        "first_loss": float(np.mean(losses[:window])) if losses else None,
        "final_loss": float(np.mean(losses[-window:])) if losses else None,
        **({"prior_first_loss": float(np.mean(prior_losses[:window])),
            "prior_final_loss": float(np.mean(prior_losses[-window:]))} if prior_losses else {})})


def _mine_residual(cfg: RerankConfig, encoder, log: Callable[[str], None]) -> list[Group]:
    """``mine_ranked_groups`` over every pair of ``cfg.data``, the code vectors read from ``cfg.vectors`` (or
    embedded once and kept beside the run)."""
    from codeneedle.training.query_tower import code_vectors, read_pairs

    records = read_pairs(Path(cfg.data))
    cache = Path(cfg.vectors) if cfg.vectors else Path(cfg.out).with_name(Path(cfg.out).name + ".vectors")
    vectors = code_vectors(records, encoder, cache, progress=lambda p: log(p["message"]))
    return mine_ranked_groups(records, encoder, vectors, cfg, log)


def _expected_steps(step: int, start: float, deadline: float, total: int) -> int:
    if step < 10:
        return total
    per_step = (time.monotonic() - start) / step
    return min(total, int((deadline - start) / per_step))


RERANKER_NOTICE = """# {name}

A cross-encoder re-ranker for code search: the first {layers} transformer layers of {base} (itself derived from
all-MiniLM-L6-v2) with a linear scoring head, trained by Needle (`codeneedle/training/rerank.py`) to rank a
query's function above the first stage's own top-ranked wrong answers.

## Licence
The base weights, all-MiniLM-L6-v2 by the sentence-transformers authors, are distributed under the
Apache License 2.0 (http://www.apache.org/licenses/LICENSE-2.0); these weights are a derivative work distributed
under the same licence. Changes: layers 4-6 removed, further training as a cross-encoder, saved as float16.

## How to retrain
    needle train --reranker --config rerank_train.json --out DIR    # this run again, from its recipe
    NEEDLE_RERANKER=DIR python bench/quality.py --split dev --rerank-grid   # choose depth and blend on dev
`rerank_train.json` holds this run's whole configuration and figures; the project's docs/TRAINING.md ("The
re-ranker") has the runs before it.
"""


def export(model, head, base_folder: Path, dest: Path, cfg: RerankConfig, run: dict) -> Path:
    """Write a re-ranker folder (fp16 weights, tokenizer, head, how it was trained)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.half().save_pretrained(str(tmp), safe_serialization=True)
    model.float()
    shutil.copy2(base_folder / "tokenizer.json", tmp / "tokenizer.json")
    weight = head.weight.detach().float().view(-1).tolist()
    RerankSettings(tuple(weight), float(head.bias.detach()), cfg.query_tokens, cfg.max_tokens,
                   blend=cfg.residual or BLEND).write(tmp)
    (tmp / "README.md").write_text(RERANKER_NOTICE.format(name=dest.name, layers=cfg.layers, base=base_folder.name))
    (tmp / "rerank_train.json").write_text(json.dumps({"config": asdict(cfg), "run": run,
                                                        "base": base_folder.name}, indent=1) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
