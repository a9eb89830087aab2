"""CAL scores and LL4AL's ranking loss against hand values and brute force."""

from __future__ import annotations

import math

import pytest
import torch

from al_bench.ops.cal import cal_scores
from al_bench.ops.ranking_loss import loss_prediction_ranking_loss


# ---- CAL ---------------------------------------------------------------------------------------------------
def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    return float(sum(pi * math.log(pi / qi) for pi, qi in zip(p.tolist(), q.tolist()) if pi > 0))


def test_cal_is_zero_when_neighbours_predict_like_the_candidate():
    p = torch.tensor([0.7, 0.2, 0.1])
    lab_f = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    scores = cal_scores(torch.randn(2, 3), p.repeat(2, 1), lab_f, p.repeat(5, 1), k=3)
    assert torch.allclose(scores, torch.zeros(2), atol=1e-6)


def test_cal_scores_a_disagreeing_candidate_higher():
    lab_f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    lab_p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    cand_f = torch.tensor([[1.0, 0.05], [1.0, 0.05]])
    cand_p = torch.tensor([[0.85, 0.15], [0.2, 0.8]])  # the second disagrees with its neighbours
    s = cal_scores(cand_f, cand_p, lab_f, lab_p, k=2)
    assert s[1] > s[0] > 0


def test_cal_matches_brute_force_kl_neighbour_to_candidate():
    g = torch.Generator().manual_seed(1)
    cand_f, lab_f = torch.randn(6, 4, generator=g), torch.randn(9, 4, generator=g)
    cand_p = torch.softmax(torch.randn(6, 3, generator=g) * 2, 1)
    lab_p = torch.softmax(torch.randn(9, 3, generator=g) * 2, 1)
    k = 4
    scores = cal_scores(cand_f, cand_p, lab_f, lab_p, k=k, normalize=False)
    for i in range(6):
        d = [float(((cand_f[i] - lab_f[j]) ** 2).sum()) for j in range(9)]
        nb = sorted(range(9), key=d.__getitem__)[:k]
        expected = sum(kl(lab_p[j], cand_p[i]) for j in nb) / k  # KL(P_neighbour || P_candidate)
        assert scores[i].item() == pytest.approx(expected, rel=1e-4)


def test_cal_direction_is_kl_of_the_neighbour_to_the_candidate():
    lab_p, cand_p = torch.tensor([[0.9, 0.1]]), torch.tensor([[0.5, 0.5]])
    s = cal_scores(torch.ones(1, 2), cand_p, torch.ones(1, 2), lab_p, k=1).item()
    assert s == pytest.approx(
        0.9 * math.log(1.8) + 0.1 * math.log(0.2), rel=1e-5
    )  # 0.368, not KL(c||n) = 0.511


def test_cal_normalize_makes_neighbours_scale_free():
    lab_f = torch.tensor([[1.0, 0.0], [0.0, 10.0]])
    lab_p = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    cand_f = torch.tensor([[0.1, 0.5]])  # points at the second labeled point, but is closer to the first
    cand_p = torch.tensor([[0.1, 0.9]])
    assert cal_scores(cand_f, cand_p, lab_f, lab_p, k=1, normalize=True).item() == pytest.approx(
        0.0, abs=1e-6
    )
    assert cal_scores(cand_f, cand_p, lab_f, lab_p, k=1, normalize=False).item() > 1.0


def test_cal_clamps_k_to_the_labeled_set_and_handles_zero_probabilities():
    lab_p = torch.tensor([[0.5, 0.5]])
    s = cal_scores(torch.ones(2, 2), torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.ones(1, 2), lab_p, k=10)
    assert torch.isfinite(s).all() and s[0] > 10 and s[1].abs() < 1e-6


def test_cal_needs_a_labeled_point():
    with pytest.raises(ValueError):
        cal_scores(torch.ones(2, 2), torch.ones(2, 2) / 2, torch.zeros(0, 2), torch.zeros(0, 2))


# ---- ranking loss ------------------------------------------------------------------------------------------
def test_ranking_loss_is_zero_for_a_pair_ordered_beyond_the_margin():
    loss = loss_prediction_ranking_loss(torch.tensor([3.0, 0.5]), torch.tensor([2.0, 1.0]), margin=1.0)
    assert loss.item() == 0.0


def test_ranking_loss_hand_values():
    target = torch.tensor([2.0, 1.0])
    # right order within the margin: 1 - (0.5 - 0) = 0.5
    assert loss_prediction_ranking_loss(torch.tensor([0.5, 0.0]), target).item() == pytest.approx(0.5)
    # wrong order: 1 + 3 = 4
    assert loss_prediction_ranking_loss(torch.tensor([0.0, 3.0]), target).item() == pytest.approx(4.0)
    # target order reversed: sign -1, so l_i - l_j = -2 is right beyond the margin
    assert loss_prediction_ranking_loss(torch.tensor([0.0, 2.0]), target.flip(0)).item() == 0.0
    # equal targets count as -1 (the authors' 2 * sign(clamp(t, 0)) - 1): 1 + (1 - 0) = 2
    assert loss_prediction_ranking_loss(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])).item() == 2.0


def test_ranking_loss_pairs_a_batch_with_its_flip_and_averages():
    pred = torch.tensor([0.0, 5.0, 1.0, 0.0])  # pairs (0, 3) and (1, 2)
    target = torch.tensor([1.0, 0.0, 2.0, 0.0])  # (0, 3): t0 > t3, (1, 2): t1 < t2
    # pair (0, 3): l0 - l3 = 0, sign +1 -> 1; pair (1, 2): l1 - l2 = 4, sign -1 -> 1 + 4 = 5
    assert loss_prediction_ranking_loss(pred, target, margin=1.0).item() == pytest.approx(3.0)
    assert loss_prediction_ranking_loss(pred, target, margin=0.0).item() == pytest.approx(2.0)


def test_ranking_loss_odd_batch_leaves_the_middle_sample_out():
    pred, target = torch.tensor([0.0, 9.0, 1.0]), torch.tensor([0.0, -9.0, 1.0])
    even = loss_prediction_ranking_loss(pred[[0, 2]], target[[0, 2]])
    assert loss_prediction_ranking_loss(pred, target).item() == pytest.approx(even.item())


def test_ranking_loss_gradient_reaches_predictions_only():
    pred = torch.tensor([0.0, 0.5], requires_grad=True)
    target = torch.tensor([2.0, 1.0], requires_grad=True)
    loss_prediction_ranking_loss(pred, target).backward()
    assert torch.equal(pred.grad, torch.tensor([-1.0, 1.0]))
    assert target.grad is None


def test_ranking_loss_of_a_single_sample_is_a_differentiable_zero():
    pred = torch.tensor([1.0], requires_grad=True)
    loss = loss_prediction_ranking_loss(pred, torch.tensor([1.0]))
    loss.backward()
    assert loss.item() == 0.0 and pred.grad is not None
