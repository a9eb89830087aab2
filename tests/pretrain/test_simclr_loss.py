"""NT-Xent: a hand computation on a 2-pair batch, and the formulation of SimCLR's public (TensorFlow) code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from al_bench.pretrain.simclr import ProjectionHead, cosine_lr, nt_xent


def simclr_reference(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """google-research/simclr ``add_contrastive_loss`` transcribed to torch: the four N x N logit blocks, the
    self-similarities pushed down by a large constant, a softmax cross entropy per view; it returns
    loss_a + loss_b (each a mean over the N anchors of one view)."""
    large = 1e9
    h1, h2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n = h1.shape[0]
    labels = torch.arange(n)
    masks = torch.eye(n)
    logits_aa = h1 @ h1.T / temperature - masks * large
    logits_bb = h2 @ h2.T / temperature - masks * large
    logits_ab = h1 @ h2.T / temperature
    logits_ba = h2 @ h1.T / temperature
    loss_a = F.cross_entropy(torch.cat([logits_ab, logits_aa], 1), labels)
    loss_b = F.cross_entropy(torch.cat([logits_ba, logits_bb], 1), labels)
    return loss_a + loss_b


def test_hand_computed_two_pairs():
    # unit directions after normalisation: u = [e1, e2, e1, e1]; temperature 0.5 -> cosine 1 gives logit 2
    z1 = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[3.0, 0.0], [0.5, 0.0]])
    a = math.log(1 + 2 * math.e**2)
    per_anchor = [
        a - 2,  # e1 vs positive e1 (logit 2); negatives e2 (0), e1 (2)
        math.log(3),  # e2 vs positive e1 (0); negatives e1 (0), e1 (0)
        a - 2,  # like anchor 0
        a,  # e1 vs positive e2 (0); negatives e1 (2), e1 (2)
    ]
    expected = sum(per_anchor) / 4
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("n,d", [(2, 3), (8, 16), (33, 5)])
def test_matches_simclr_public_code(n, d, temperature):
    g = torch.Generator().manual_seed(n * 100 + d)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    ours = nt_xent(z1, z2, temperature)
    assert ours.item() == pytest.approx(simclr_reference(z1, z2, temperature).item() / 2, rel=1e-5)


def test_gradients_match_reference():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    nt_xent(a1, a2, 0.2).backward()
    (simclr_reference(b1, b2, 0.2) / 2).backward()
    torch.testing.assert_close(a1.grad, b1.grad)
    torch.testing.assert_close(a2.grad, b2.grad)


def test_symmetric_scale_invariant_and_lower_for_aligned_views():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    base = nt_xent(z1, z2, 0.5)
    assert nt_xent(z2, z1, 0.5).item() == pytest.approx(base.item(), rel=1e-6)
    assert nt_xent(3 * z1, 0.1 * z2, 0.5).item() == pytest.approx(base.item(), rel=1e-5)
    aligned = nt_xent(z1, z1 + 0.01 * z2, 0.5)  # positives nearly identical: far lower loss
    assert aligned.item() < base.item() - 1.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="two"):
        nt_xent(torch.zeros(4, 3), torch.zeros(5, 3), 0.5)


def test_projection_head_shapes():
    x = torch.randn(5, 12)
    assert ProjectionHead(12, 7, 3)(x).shape == (5, 3)
    bn = ProjectionHead(12, 7, 3, batch_norm=True)
    assert bn(x).shape == (5, 3)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in bn)


def test_cosine_lr_scan_schedule():
    # SCAN: eta_min = lr * 0.1**3, cosine over the epochs, set at the start of each epoch
    assert cosine_lr(0, 10, 0.4, 1e-3) == pytest.approx(0.4)
    assert cosine_lr(5, 10, 0.4, 1e-3) == pytest.approx(0.0004 + (0.4 - 0.0004) / 2)
    assert cosine_lr(10, 10, 0.4, 1e-3) == pytest.approx(0.0004)
    # linear warm-up first
    assert [cosine_lr(e, 10, 1.0, 0.0, warmup_epochs=2) for e in (0, 1, 2)] == pytest.approx([0.5, 1.0, 1.0])
