"""Loss maths on random tensors: known values, gradient directions, agreement with sentence-transformers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from codeneedle.training.losses import (
    batch_hard_indices,
    batch_semi_hard_indices,
    batch_triplet_loss,
    combined_loss,
    cosine_distance,
    info_nce_loss,
    triplet_margin_loss,
)


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_triplet_known_values() -> None:
    q = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.0]])  # distance 0
    neg = torch.tensor([[0.0, 1.0]])  # distance 1
    assert triplet_margin_loss(q, pos, neg, margin=0.3).item() == pytest.approx(0.0)
    # swapped: d_pos = 1, d_neg = 0 -> 1 - 0 + 0.3
    assert triplet_margin_loss(q, neg, pos, margin=0.3).item() == pytest.approx(1.3)
    # several negatives per query average over all of them
    negs = torch.stack([pos, neg], dim=1)  # (1, 2, 2): d_neg = 0 and 1
    assert triplet_margin_loss(q, neg, negs, margin=0.3).item() == pytest.approx((1.3 + 0.3) / 2)


def test_triplet_gradient_pulls_positive_and_pushes_negative() -> None:
    q = unit(4, 8, seed=1)
    pos = unit(4, 8, seed=2).requires_grad_()
    neg = unit(4, 8, seed=3).requires_grad_()
    loss = triplet_margin_loss(q, pos, neg, margin=2.0)  # margin 2: every triplet is active
    loss.backward()
    step = 0.01
    with torch.no_grad():
        before_pos, before_neg = cosine_distance(q, pos), cosine_distance(q, neg)
        after_pos, after_neg = cosine_distance(q, pos - step * pos.grad), cosine_distance(q, neg - step * neg.grad)
    assert (after_pos < before_pos).all() and (after_neg > before_neg).all()


def test_info_nce_known_value_and_bounds() -> None:
    # identical orthogonal pairs: logits are 1/t on the diagonal and 0 elsewhere
    q = torch.eye(3)
    t = 0.5
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert info_nce_loss(q, q.clone(), temperature=t, symmetric=False).item() == pytest.approx(expected, rel=1e-5)
    assert info_nce_loss(q, q.clone(), temperature=t, symmetric=True).item() == pytest.approx(expected, rel=1e-5)
    # uniform logits -> log(batch)
    same = F.normalize(torch.ones(4, 5), dim=-1)
    assert info_nce_loss(same, same, temperature=0.05).item() == pytest.approx(math.log(4), rel=1e-5)


def test_info_nce_mined_negatives_and_masking() -> None:
    q, c = unit(6, 16, seed=4), unit(6, 16, seed=5)
    base = info_nce_loss(q, c, symmetric=False)
    more = info_nce_loss(q, c, neg=unit(3, 16, seed=6), symmetric=False)
    assert more.item() > base.item()  # extra negatives only add terms to the denominator
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[0, 1] = mask[1, 0] = True
    assert info_nce_loss(q, c, same_group=mask, symmetric=False).item() < base.item()


def test_info_nce_gradient_direction() -> None:
    q = unit(5, 12, seed=7).requires_grad_()
    c = unit(5, 12, seed=8)
    info_nce_loss(q, c).backward()
    with torch.no_grad():
        moved = F.normalize(q - 0.05 * q.grad, dim=-1)
        assert (F.cosine_similarity(moved, c).sum() > F.cosine_similarity(q, c).sum()).item()


@pytest.mark.slow  # importing sentence-transformers takes seconds
def test_info_nce_matches_sentence_transformers() -> None:
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    q, c, n = unit(8, 16, seed=9), unit(8, 16, seed=10), unit(8, 16, seed=11)

    class Fake(torch.nn.Module):
        def forward(self, features):
            return {"sentence_embedding": features["emb"]}

    mnrl = st_losses.MultipleNegativesRankingLoss(Fake(), scale=20.0)
    ours = info_nce_loss(q, c, neg=n, temperature=1 / 20.0, symmetric=False)
    theirs = mnrl([{"emb": q}, {"emb": c}, {"emb": n}], None)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def at(*degrees: float) -> torch.Tensor:
    """Unit vectors in the plane at the given angles: cosines are then known by hand."""
    return torch.tensor([[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees])


def test_batch_hard_and_semi_hard_selection_and_loss_by_hand() -> None:
    q = at(0, 90, 180)
    c = at(30, 45, 10)  # positives: q0-c0 (30 deg apart), q1-c1 (45), q2-c2 (170)
    # cos(q_i, c_j): q0: .866 .707 .985 | q1: .5 .707 .174 | q2: -.866 -.707 -.985
    assert batch_hard_indices(q, c).tolist() == [2, 0, 1]  # most similar code that is not its own
    # Semi-hard (margin .3): farther than the positive but within .3 of it. q0: c1 (.707 in (.566, .866)); q1: c0
    # (.5 in (.407, .707)); q2 has none (-.985 is its positive, nothing lies below it) -> the easiest, c0 (-.866).
    assert batch_semi_hard_indices(q, c, margin=0.3).tolist() == [1, 0, 0]

    def hinge(pos_deg: float, neg_deg: float, margin: float = 0.3) -> float:
        d = lambda deg: 1 - math.cos(math.radians(deg))  # noqa: E731 - cosine distance at an angle
        return max(0.0, d(pos_deg) - d(neg_deg) + margin)

    # Angles between each query and its positive / chosen negative.
    semi = (hinge(30, 45) + hinge(45, 60) + hinge(170, 150)) / 3  # .1411, .0929, .4188
    hard = (hinge(30, 10) + hinge(45, 60) + hinge(170, 135)) / 3  # .4188, .0929, .5777
    assert batch_triplet_loss(q, c, margin=0.3, strategy="semi-hard").item() == pytest.approx(semi, abs=1e-6)
    assert batch_triplet_loss(q, c, margin=0.3, strategy="hard").item() == pytest.approx(hard, abs=1e-6)
    assert semi == pytest.approx(0.2176, abs=1e-4) and hard == pytest.approx(0.3631, abs=1e-4)
    # An easy batch (every negative much farther than its positive) costs nothing: the hinge is at zero.
    assert batch_triplet_loss(at(0, 180), at(0, 180), margin=0.3).item() == 0.0


def test_combined_loss_kinds() -> None:
    q, c, n = unit(4, 8, seed=12), unit(4, 8, seed=13), unit(2, 8, seed=14)
    owner = torch.tensor([0, 3])
    a = combined_loss(q, c, n, "infonce")
    b = combined_loss(q, c, n, "triplet", neg_owner=owner)
    both = combined_loss(q, c, n, "both", triplet_weight=0.5, neg_owner=owner)
    assert both.item() == pytest.approx(a.item() + 0.5 * b.item(), rel=1e-5)
    with pytest.raises(ValueError):
        combined_loss(q, c, n, "nope")
