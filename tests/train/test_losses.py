"""Pure loss functions: InfoNCE values, masking, hard negatives, generation loss, the balancing rule."""

import math

import pytest
import torch
import torch.nn.functional as F

from coin_train.losses import (
    NO_GROUP,
    balance_contrastive,
    contrastive_logits,
    generation_loss,
    info_nce,
    symmetric_info_nce,
)


def orthonormal(n: int, dim: int = 32) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(dim, n, generator=torch.Generator().manual_seed(0)))[0].T  # [n, dim]


def test_info_nce_is_about_log_n_for_random_vectors():
    gen = torch.Generator().manual_seed(0)
    a, p = torch.randn(64, 2048, generator=gen), torch.randn(64, 2048, generator=gen)
    assert info_nce(a, p, temperature=1.0).item() == pytest.approx(math.log(64), abs=0.05)
    n = torch.randn(32, 2048, generator=gen)  # hard negatives are extra candidates: log(B + K)
    assert info_nce(a, p, n, temperature=1.0).item() == pytest.approx(math.log(96), abs=0.05)


def test_info_nce_is_near_zero_when_views_align():
    x = orthonormal(8)
    assert info_nce(x, x, temperature=0.05).item() < 1e-6
    assert info_nce(x, 3.0 * x, temperature=0.05).item() < 1e-6  # cosine: scale does not matter


def test_info_nce_is_symmetric_in_its_two_views():
    gen = torch.Generator().manual_seed(1)
    a, p = torch.randn(6, 16, generator=gen), torch.randn(6, 16, generator=gen)
    assert info_nce(a, p).item() == pytest.approx(info_nce(p, a).item(), rel=1e-6)


def test_info_nce_matches_the_formula_by_hand():
    gen = torch.Generator().manual_seed(2)
    a, p, n = torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen), torch.randn(2, 8, generator=gen)
    tau = 0.1
    cos = lambda x, y: F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T
    fwd = torch.cat([cos(a, p), cos(a, n)], dim=1) / tau
    bwd = torch.cat([cos(p, a), cos(p, n)], dim=1) / tau
    expected = 0.0
    for i in range(4):
        expected += -torch.log_softmax(fwd[i], 0)[i] - torch.log_softmax(bwd[i], 0)[i]
    expected = expected / 8
    assert info_nce(a, p, n, temperature=tau).item() == pytest.approx(expected.item(), rel=1e-5)


def test_same_instance_candidates_are_masked_not_counted_as_negatives():
    x = orthonormal(3)
    # Rows 0 and 1 are two paraphrase rows of one instance: identical vectors.
    anchors = torch.stack([x[0], x[0], x[1]])
    positives = anchors.clone()
    unmasked = info_nce(anchors, positives, temperature=0.05)
    masked = info_nce(anchors, positives, temperature=0.05, groups=torch.tensor([5, 5, 9]))
    assert unmasked.item() == pytest.approx(2 / 3 * math.log(2), rel=1e-4)  # rows 0, 1: a tie of two
    assert masked.item() < 1e-6


def test_contrastive_logits_masks_same_group_but_keeps_the_target():
    q = orthonormal(3)
    groups = torch.tensor([1, 1, 2])
    logits = contrastive_logits(q, q, torch.arange(3), temperature=1.0, query_groups=groups, candidate_groups=groups)
    assert torch.isinf(logits[0, 1]) and torch.isinf(logits[1, 0])
    assert torch.isfinite(logits.diagonal()).all() and torch.isfinite(logits[2]).all()
    unknown = torch.tensor([NO_GROUP, NO_GROUP, 2])  # unknown instances are never masked
    assert torch.isfinite(contrastive_logits(q, q, torch.arange(3), temperature=1.0, query_groups=unknown,
                                             candidate_groups=unknown)).all()


def test_hard_negatives_are_extra_columns_and_masked_when_they_share_the_instance():
    x = orthonormal(4)
    anchors, positives = x[:2], x[:2].clone()
    negatives = x[:1].clone()  # a "negative" identical to anchor 0
    groups = torch.tensor([10, 11])
    hard = info_nce(anchors, positives, negatives, temperature=0.05, groups=groups,
                    negative_groups=torch.tensor([NO_GROUP]))
    assert hard.item() == pytest.approx(math.log(2) / 2, rel=1e-4)  # row 0 ties with it in both directions
    guarded = info_nce(anchors, positives, negatives, temperature=0.05, groups=groups,
                       negative_groups=torch.tensor([10]))
    assert guarded.item() < 1e-6


def test_symmetric_info_nce_accuracy_counts_both_directions():
    x = orthonormal(4)
    positives = torch.stack([x[0], x[1], x[3], x[2]])  # rows 2 and 3 swapped
    loss, accuracy = symmetric_info_nce(
        x, positives, anchor_candidates=x, positive_candidates=positives, negative_candidates=None,
        targets=torch.arange(4), temperature=0.05)
    assert accuracy.item() == pytest.approx(0.5)
    assert loss.item() > 1.0


def test_generation_loss_is_the_sum_of_per_view_kind_means():
    gen = torch.Generator().manual_seed(3)
    logits, targets = torch.randn(7, 11, generator=gen), torch.randint(0, 11, (7,), generator=gen)
    kinds = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    ce = F.cross_entropy(logits, targets, reduction="none")
    expected = ce[:3].mean() + ce[3:5].mean() + ce[5:].mean()
    assert generation_loss(logits, targets, kinds).item() == pytest.approx(expected.item(), rel=1e-6)
    assert generation_loss(logits[:0], targets[:0], kinds[:0]).item() == 0.0


def test_balance_caps_value_at_gen_loss_and_scales_the_gradient():
    gen_loss = torch.tensor(2.0)
    ctr = torch.tensor(0.5, requires_grad=True)
    term = balance_contrastive(gen_loss, ctr, weight=1000.0, rule="cap")
    term.backward()
    assert term.item() == pytest.approx(2.0)  # 500 capped at L_gen
    assert ctr.grad.item() == pytest.approx(1000.0 * 2.0 / 500.0)  # gradient scaled by L_gen / (w L_ctr)


def test_balance_bounds_the_cap_factor_by_the_weight_below_one():
    # w < 1: c = 0.5 * 10 = 5 > L_gen = 2, and min(w, L_gen / c) = min(0.5, 0.4) = 0.4 -> capped at L_gen;
    # with L_gen = 4.9, min(0.5, 0.98) = 0.5 -> c * w = 2.5, below L_gen (the reference code's bound).
    ctr = torch.tensor(10.0, requires_grad=True)
    assert balance_contrastive(torch.tensor(2.0), ctr, weight=0.5).item() == pytest.approx(2.0)
    term = balance_contrastive(torch.tensor(4.9), ctr, weight=0.5)
    term.backward()
    assert term.item() == pytest.approx(2.5) and ctr.grad.item() == pytest.approx(0.5 * 0.5)


def test_balance_leaves_a_small_term_alone_and_fixed_never_caps():
    gen_loss = torch.tensor(2.0)
    ctr = torch.tensor(0.001, requires_grad=True)
    term = balance_contrastive(gen_loss, ctr, weight=1000.0)
    term.backward()
    assert term.item() == pytest.approx(1.0) and ctr.grad.item() == pytest.approx(1000.0)
    assert balance_contrastive(gen_loss, torch.tensor(0.5), 1000.0, rule="fixed").item() == pytest.approx(500.0)
    with pytest.raises(ValueError, match="balance rule"):
        balance_contrastive(gen_loss, ctr, 1.0, rule="median")


def test_balance_does_not_backpropagate_through_the_cap_into_gen_loss():
    gen_loss = torch.tensor(2.0, requires_grad=True)
    ctr = torch.tensor(0.5, requires_grad=True)
    (gen_loss + balance_contrastive(gen_loss, ctr, 1000.0)).backward()
    assert gen_loss.grad.item() == pytest.approx(1.0)  # only the direct path: the scale is detached
