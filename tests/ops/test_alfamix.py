"""ALFA-Mix kernels: anchors, the CE gradient, Eq. 5's closed-form alpha, flips where a linear head's margin
is known analytically, the authors' growing cap, and agreement with a reference written the way their code
does it (elementwise alpha with the 1e-8 guard, autograd gradient, one anchor at a time), and the same for
the learned-alpha search."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from al_bench.ops.alfamix import (
    alfamix_flags,
    alfamix_flags_learned,
    class_anchors,
    closed_form_alpha,
    learned_alpha_flips,
    mix_flips,
    prediction_loss_gradient,
)

# 2 classes, logits (x1, -x1): class 0 iff x1 > 0; the margin of class 0 is 2 * x1.
W2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)


def logits_of(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    return z @ w.T + (0 if b is None else b)


def test_class_anchors_are_class_means_and_the_overall_mean_for_an_unseen_class():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 2, 2])
    anchors = class_anchors(z, y, num_classes=4)
    expected = torch.tensor([[1.0, 0.0], [0.75, 1.25], [0.5, 2.5], [0.75, 1.25]])
    torch.testing.assert_close(anchors, expected)
    with pytest.raises(ValueError, match="at least one labeled"):
        class_anchors(z[:0], y[:0], 4)


def test_prediction_loss_gradient_equals_autograd_of_the_cross_entropy_with_the_prediction():
    g = torch.Generator().manual_seed(0)
    w, b = (
        torch.randn(5, 7, generator=g, dtype=torch.float64),
        torch.randn(5, generator=g, dtype=torch.float64),
    )
    z = torch.randn(30, 7, generator=g, dtype=torch.float64, requires_grad=True)
    logits = logits_of(z, w, b)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1), reduction="sum"), z)
    torch.testing.assert_close(prediction_loss_gradient(logits.detach(), w), expected)


def test_closed_form_alpha_is_eq5_and_mixes_to_a_gradient_step():
    z = torch.tensor([[0.1, 0.0]], dtype=torch.float64)
    anchor = torch.tensor([-0.5, 0.8], dtype=torch.float64)  # anchor - z = (-0.6, 0.8), norm 1
    grad = prediction_loss_gradient(logits_of(z, W2), W2)
    assert grad[0, 0] < 0 and grad[0, 1] == 0  # the loss grows toward class 1, along -x1
    eps = 0.05
    alpha = closed_form_alpha(z, anchor, grad, eps)
    torch.testing.assert_close(alpha, torch.tensor([[eps / (0.6 - 1e-8), 0.0]], dtype=torch.float64))
    assert float(alpha.norm()) == pytest.approx(eps / 0.6)
    mixed = (1 - alpha) * z + alpha * anchor
    torch.testing.assert_close(mixed, torch.tensor([[0.1 - eps, 0.0]], dtype=torch.float64))


def test_the_prediction_flips_exactly_where_the_step_crosses_the_boundary():
    """z = (0.1, 0), one anchor at distance 1: the mix is (0.1 - eps, 0); class 0 until eps > 0.1 (a tie at
    eps = 0.1 keeps the first class, as argmax)."""
    z = torch.tensor([[0.1, 0.0]], dtype=torch.float64)
    anchors = torch.tensor([[-0.5, 0.8]], dtype=torch.float64)
    logits = logits_of(z, W2)
    assert not mix_flips(z, logits, anchors, W2, 0.0999).any()
    assert not mix_flips(z, logits, anchors, W2, 0.1).any()
    assert mix_flips(z, logits, anchors, W2, 0.1001).all()


def test_two_class_flips_match_the_analytic_margin_rule():
    """Two classes: the mix moves ||a_k - z|| * eps along -(w_y - w_other)/||.||, so the margin drops by
    eps * ||a_k - z|| * ||w_y - w_other|| and flips iff that exceeds the margin."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(2, 4, generator=g, dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    z = torch.randn(400, 4, generator=g, dtype=torch.float64)
    anchors = torch.randn(3, 4, generator=g, dtype=torch.float64)
    logits = logits_of(z, w, b)
    eps = 0.3
    margin = (logits[:, 0] - logits[:, 1]).abs()
    drop = eps * torch.cdist(z, anchors) * (w[0] - w[1]).norm()
    expected = drop > margin[:, None]
    clear = ((drop - margin[:, None]).abs() > 1e-9).all(1)
    flips = mix_flips(z.float(), logits.float(), anchors.float(), w.float(), eps)
    assert 0 < int(expected.sum()) < expected.numel()
    assert torch.equal(flips[clear], expected[clear])


def test_a_zero_gradient_never_flips():
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    w = torch.zeros(3, 3)
    logits = torch.tensor([1.0, 0.0, 0.0]).expand(5, 3)
    flags, cap = alfamix_flags(z, logits, torch.randn(3, 3), w, 0.2, stop_above=1)
    assert not flags.any() and cap == pytest.approx(1.0)


def test_the_cap_grows_until_more_than_budget_are_flagged():
    """Candidates on the x1 axis (margin 2 x1, the step lowers it by 2 eps ||a - z||, eps = cap / sqrt(2))."""
    x1 = torch.tensor([0.1, 0.25, 0.4, 0.65], dtype=torch.float64)
    z = torch.stack([x1, torch.zeros(4, dtype=torch.float64)], 1)
    # alone, with an anchor at distance 1: flips once cap > x1 sqrt(2) = 0.14, 0.35, 0.57, 0.92
    caps = []
    for i in range(4):
        zi = z[i : i + 1]
        flags, cap = alfamix_flags(zi, logits_of(zi, W2), zi + torch.tensor([[-0.6, 0.8]]), W2, 0.2, 0)
        assert flags.all()
        caps.append(cap)
    assert caps == pytest.approx([0.2, 0.4, 0.6, 1.0])
    # together, anchor (-10, 0) at distance x1 + 10: flips once cap > x1 sqrt(2) / (x1 + 10)
    far = torch.tensor([[-10.0, 0.0]], dtype=torch.float64)
    need = x1 * math.sqrt(2) / (x1 + 10.0)  # 0.0140, 0.0345, 0.0545, 0.0862
    for budget, cap_expected in [(0, 0.02), (1, 0.04), (2, 0.06), (3, 0.1), (None, 1.0)]:
        flags, cap = alfamix_flags(z, logits_of(z, W2), far, W2, 0.02, stop_above=budget)
        assert cap == pytest.approx(cap_expected)
        assert torch.equal(flags, need < cap)


def _authors_style_flags(
    z: torch.Tensor, labeled: torch.Tensor, y_labeled: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
    num_classes: int, budget: int, alpha_cap: float,
) -> torch.Tensor:  # fmt: skip
    """The authors' closed-form candidate search written out directly: autograd gradient of the mean CE,
    per-class anchor loop, elementwise alpha with the 1e-8 guard, (1 - alpha) z + alpha anchor, growing
    cap."""
    zg = z.clone().requires_grad_(True)
    out = zg @ w.T + b
    pred = out.argmax(1).detach()
    (grads,) = torch.autograd.grad(F.cross_entropy(out, pred), zg)
    candidate = torch.zeros(len(z), dtype=torch.bool)
    cap = 0.0
    while cap < 1.0:
        cap += alpha_cap
        eps = cap / math.sqrt(z.shape[1])
        for i in range(num_classes):
            emb = labeled[y_labeled == i]
            if len(emb) == 0:
                emb = labeled
            anchor = emb.mean(0).view(1, -1).repeat(len(z), 1)
            d = anchor - z
            alpha = (eps * d.norm(dim=1) / grads.norm(dim=1)).unsqueeze(1) * grads / (d + 1e-8)
            mix = (1 - alpha) * z + alpha * anchor
            candidate |= (mix @ w.T + b).argmax(1) != pred
        if candidate.sum() > budget:
            break
    return candidate


@pytest.mark.parametrize("budget", [3, 40, 1000])
def test_agrees_with_the_authors_procedure_on_random_inputs(budget):
    g = torch.Generator().manual_seed(3)
    n, d, c = 300, 8, 4
    w, b = (
        torch.randn(c, d, generator=g, dtype=torch.float64),
        torch.randn(c, generator=g, dtype=torch.float64),
    )
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    labeled = torch.randn(12, d, generator=g, dtype=torch.float64)
    y_labeled = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])  # class 3 unseen: overall mean
    expected = _authors_style_flags(z, labeled, y_labeled, w, b, c, budget, 0.2)
    anchors = class_anchors(labeled, y_labeled, c)
    flags, _ = alfamix_flags(z, logits_of(z, w, b), anchors, w, 0.2, stop_above=budget)
    assert 0 < int(expected.sum()) < n
    assert torch.equal(flags, expected)


# ---- learned alpha (the authors' --alpha_opt) --------------------------------------------------------------
def test_learned_alpha_flips_once_the_cap_lets_the_mix_cross_the_boundary():
    """z = (0.1, 0), anchor (-1, 0): raising alpha_1 moves x1 toward -1, and one Adam step of 0.1 takes it to
    the cap, so the mix x1 = 0.1 - 1.1 cap crosses 0 iff cap > 1/11 = 0.0909; a random start alpha <= cap
    cannot get there first."""
    z = torch.tensor([[0.1, 0.0]])
    anchor = torch.tensor([-1.0, 0.0])
    y = torch.zeros(1, dtype=torch.long)
    w = W2.float()
    for cap, flips in [(0.0625, False), (0.09, False), (0.09375, True)]:
        got = learned_alpha_flips(z, anchor, w, None, y, cap, torch.Generator().manual_seed(0))
        assert got.tolist() == [flips]
    flags, cap = alfamix_flags_learned(
        z, z @ w.T, anchor[None], w, None, torch.Generator().manual_seed(0), 0.03125, stop_above=0
    )
    assert flags.tolist() == [True] and cap == pytest.approx(0.09375)


def test_skipped_rows_do_not_change_the_others():
    g = torch.Generator().manual_seed(6)
    z, w = torch.randn(30, 4, generator=g), torch.randn(3, 4, generator=g)
    y = (z @ w.T).argmax(1)
    full = learned_alpha_flips(z, z[0] * 3, w, None, y, 0.5, torch.Generator().manual_seed(1))
    skip = torch.arange(30) % 3 == 0
    part = learned_alpha_flips(z, z[0] * 3, w, None, y, 0.5, torch.Generator().manual_seed(1), skip=skip)
    assert 0 < int(full.sum()) < 30
    assert torch.equal(part, full & ~skip)
    everything = torch.ones(30, dtype=torch.bool)
    assert not learned_alpha_flips(z, z[0], w, None, y, 0.5, torch.Generator(), skip=everything).any()


def _authors_style_learned_flags(
    z: torch.Tensor, anchors: torch.Tensor, w: torch.Tensor, b: torch.Tensor, budget: int,
    generator: torch.Generator, alpha_cap: float = 0.03125, iters: int = 5, batch: int = 16,
) -> torch.Tensor:  # fmt: skip
    """The authors' --alpha_opt search written out directly, in batches of ``batch`` rows: random start
    alpha per (cap, class), then per round and batch a fresh Adam, test, step on -CE + 0.01 ||alpha||,
    clamp."""
    pred = (z @ w.T + b).argmax(1)
    candidate = torch.zeros(len(z), dtype=torch.bool)
    cap = 0.0
    while cap < 1.0:
        cap += alpha_cap
        for anchor in anchors:
            alpha = torch.normal(cap / 2.0, cap / 2.0, size=tuple(z.shape), generator=generator)
            alpha[torch.isnan(alpha)] = 1
            alpha = torch.clamp(alpha, min=1e-8, max=cap)
            changed = torch.zeros(len(z), dtype=torch.bool)
            for i in range(iters):
                for s in range(0, len(z), batch):
                    lab = alpha[s : s + batch].clone().requires_grad_(True)
                    opt = torch.optim.Adam([lab], lr=0.1 / (1.0 if i < iters * 2 / 3 else 10.0))
                    out = F.linear((1 - lab) * z[s : s + batch] + lab * anchor, w, b)
                    changed[s : s + batch] |= out.argmax(1) != pred[s : s + batch]
                    clf_loss = -F.cross_entropy(out, pred[s : s + batch], reduction="none")
                    (clf_loss + 0.01 * lab.norm(dim=1)).sum().backward()
                    opt.step()
                    alpha[s : s + batch] = torch.clamp(lab, min=1e-8, max=cap).detach()
            candidate |= changed
        if candidate.sum() > budget:
            break
    return candidate


@pytest.mark.parametrize("budget", [2, 12])  # the cap stops at 2 and 6 steps of 0.03125
def test_learned_search_agrees_with_the_authors_procedure(budget):
    g = torch.Generator().manual_seed(4)
    n, d, c = 40, 5, 3
    w, b = torch.randn(c, d, generator=g), 0.1 * torch.randn(c, generator=g)
    z = torch.randn(n, d, generator=g)
    anchors = torch.randn(c, d, generator=g)
    expected = _authors_style_learned_flags(z, anchors, w, b, budget, torch.Generator().manual_seed(9))
    flags, _ = alfamix_flags_learned(
        z, z @ w.T + b, anchors, w, b, torch.Generator().manual_seed(9), 0.03125, stop_above=budget
    )
    assert 0 < int(expected.sum()) < n
    assert torch.equal(flags, expected)
