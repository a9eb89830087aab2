"""Expected gradient length against autograd on a tiny nn.Linear head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from al_bench.ops.egl import expected_gradient_length


def _autograd_egl(head: nn.Linear, h: torch.Tensor, bias: bool) -> torch.Tensor:
    out = []
    for x in h:
        probs = head(x[None]).softmax(-1)[0].detach()
        total = torch.zeros((), dtype=torch.float64)
        for y in range(head.out_features):
            head.zero_grad()
            nn.functional.cross_entropy(head(x[None]), torch.tensor([y])).backward()
            sq = head.weight.grad.square().sum() + (head.bias.grad.square().sum() if bias else 0.0)
            total += probs[y] * sq.sqrt()
        out.append(total)
    return torch.stack(out)


@pytest.mark.parametrize("bias", [True, False])
def test_matches_autograd(bias):
    torch.manual_seed(0)
    head = nn.Linear(6, 4).double()
    h = torch.randn(5, 6, dtype=torch.float64)
    with torch.no_grad():
        probs = head(h).softmax(-1)
    assert torch.allclose(
        expected_gradient_length(probs, h, bias=bias), _autograd_egl(head, h, bias), atol=1e-12
    )


def test_certain_prediction_has_no_expected_gradient():
    probs = torch.tensor([[1.0, 0.0, 0.0]])
    assert expected_gradient_length(probs, torch.ones(1, 4)).item() == pytest.approx(0.0, abs=1e-12)


def test_uniform_prediction_closed_form():
    # p uniform over C: ||p - e_y||^2 = 1 - 1/C for every y; h = 0 with bias -> sqrt(1 - 1/C)
    c = 4
    probs = torch.full((1, c), 1 / c)
    assert expected_gradient_length(probs, torch.zeros(1, 3)).item() == pytest.approx((1 - 1 / c) ** 0.5)
    assert expected_gradient_length(probs, torch.zeros(1, 3), bias=False).item() == 0.0


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        expected_gradient_length(torch.full((2, 3), 1 / 3), torch.ones(3, 4))
