"""Contrastive losses over unit-normalised embeddings (query side ``q``, code side ``c``).

All functions take plain tensors so the maths is testable on random inputs; they match sentence-transformers'
``TripletLoss(distance_metric=COSINE)`` and ``MultipleNegativesRankingLoss`` on the same embeddings, but also
cover what those lack here: asymmetric query->code batch-hard / semi-hard selection and mined negatives
that are shared across the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise ``1 - cos(a_i, b_i)``."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def triplet_margin_loss(q: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Mean ``max(0, d(q, pos) - d(q, neg) + margin)`` with cosine distance; ``neg`` may be ``(B, k, D)``
    (then every mined negative of a query counts)."""
    d_pos = cosine_distance(q, pos)
    if neg.dim() == 3:
        d_neg = 1.0 - F.cosine_similarity(q.unsqueeze(1), neg, dim=-1)  # (B, k)
        return F.relu(d_pos.unsqueeze(1) - d_neg + margin).mean()
    return F.relu(d_pos - cosine_distance(q, neg) + margin).mean()


def info_nce_loss(
    q: torch.Tensor,
    c: torch.Tensor,
    neg: torch.Tensor | None = None,
    temperature: float = 0.05,
    symmetric: bool = True,
    same_group: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE: query ``i`` must pick code ``i`` among all codes of the batch plus every mined negative.

    ``neg``: ``(M, D)`` extra code embeddings (mined negatives of any query, shared by all). ``symmetric`` adds
    the code->query direction over the in-batch queries. ``same_group``: optional ``(B, B)`` bool mask of
    in-batch pairs that are known duplicates (same code or same query); those off-diagonal logits are dropped
    so a false negative is not pushed away.
    """
    q = F.normalize(q, dim=-1)
    c = F.normalize(c, dim=-1)
    logits = q @ c.T / temperature  # (B, B)
    if same_group is not None:
        eye = torch.eye(len(q), dtype=torch.bool, device=q.device)
        logits = logits.masked_fill(same_group & ~eye, float("-inf"))
    target = torch.arange(len(q), device=q.device)
    full = logits
    if neg is not None and len(neg):
        full = torch.cat([logits, q @ F.normalize(neg, dim=-1).T / temperature], dim=1)
    loss = F.cross_entropy(full, target)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, target)) / 2
    return loss


def batch_hard_indices(q: torch.Tensor, c: torch.Tensor, same_group: torch.Tensor | None = None) -> torch.Tensor:
    """For each query, the in-batch code (not its own) that it is most similar to."""
    sim = F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T
    blocked = torch.eye(len(q), dtype=torch.bool, device=q.device)
    if same_group is not None:
        blocked = blocked | same_group
    return sim.masked_fill(blocked, float("-inf")).argmax(dim=1)


def batch_semi_hard_indices(
    q: torch.Tensor, c: torch.Tensor, margin: float = 0.3, same_group: torch.Tensor | None = None
) -> torch.Tensor:
    """For each query, the hardest in-batch code that is still farther than its positive but inside the margin
    (FaceNet's semi-hard rule); falls back to the easiest negative (lowest similarity) when none qualifies."""
    sim = F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T
    pos = sim.diagonal().unsqueeze(1)
    blocked = torch.eye(len(q), dtype=torch.bool, device=q.device)
    if same_group is not None:
        blocked = blocked | same_group
    semi = (sim < pos) & (sim > pos - margin) & ~blocked
    hardest_semi = sim.masked_fill(~semi, float("-inf")).argmax(dim=1)
    easiest = sim.masked_fill(blocked, float("inf")).argmin(dim=1)
    return torch.where(semi.any(dim=1), hardest_semi, easiest)


def batch_triplet_loss(
    q: torch.Tensor,
    c: torch.Tensor,
    margin: float = 0.3,
    strategy: str = "hard",
    same_group: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triplet loss whose negative for each query is picked inside the batch (``hard`` or ``semi-hard``)."""
    with torch.no_grad():
        if strategy == "hard":
            idx = batch_hard_indices(q, c, same_group)
        elif strategy in ("semi-hard", "semihard", "semi_hard"):
            idx = batch_semi_hard_indices(q, c, margin, same_group)
        else:
            raise ValueError(f"unknown in-batch strategy {strategy!r}")
    return triplet_margin_loss(q, c, c[idx], margin)


def combined_loss(
    q: torch.Tensor,
    c: torch.Tensor,
    neg: torch.Tensor | None,
    kind: str = "infonce",
    temperature: float = 0.05,
    margin: float = 0.3,
    triplet_weight: float = 1.0,
    same_group: torch.Tensor | None = None,
    neg_owner: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training objective by name: ``infonce``, ``triplet`` or ``both`` (InfoNCE + weighted triplet).

    For the triplet part each query uses its own mined negative (``neg_owner[j]`` = the query index that
    negative ``j`` was mined for) when it has one, else its batch-hard negative.
    """
    parts = []
    if kind in ("infonce", "both"):
        parts.append(info_nce_loss(q, c, neg, temperature, symmetric=True, same_group=same_group))
    if kind in ("triplet", "both"):
        with torch.no_grad():
            idx = batch_hard_indices(q, c, same_group)
        neg_for = c[idx]
        if neg is not None and neg_owner is not None and len(neg):
            neg_for = neg_for.clone()
            neg_for[neg_owner] = neg  # last mined negative of a query wins; it is at least as informative
        w = triplet_weight if kind == "both" else 1.0
        parts.append(w * triplet_margin_loss(q, c, neg_for, margin))
    if not parts:
        raise ValueError(f"unknown loss {kind!r}")
    return sum(parts[1:], parts[0])
