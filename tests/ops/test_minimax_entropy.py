"""MAL's minimax-entropy pieces: gradient reversal, cosine logits, entropy, the two objectives' directions."""

from __future__ import annotations

import math

import pytest
import torch

from al_bench.ops.minimax_entropy import (
    cosine_logits,
    entropy_from_logits,
    grad_reverse,
    minimax_entropy_loss,
)
from al_bench.ops.uncertainty import entropy


def test_grad_reverse_is_identity_forward_and_negates_the_gradient_scaled():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_cosine_logits_known_values_ignore_norms():
    feats = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    protos = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    expected = torch.tensor([[1.0, 0.0], [2**-0.5, 2**-0.5]]) / 0.5
    torch.testing.assert_close(cosine_logits(feats, protos, 0.5), expected)


def test_entropy_from_logits_matches_the_probability_entropy():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 0.5]])
    out = entropy_from_logits(logits)
    assert out[0].item() == pytest.approx(math.log(4))
    assert out[1].item() == pytest.approx(0.0, abs=1e-30)
    torch.testing.assert_close(out, entropy(logits.softmax(-1)))
    assert minimax_entropy_loss(logits).item() == pytest.approx(-out.mean().item())


def _toy(seed: int = 0) -> tuple[torch.nn.Linear, torch.nn.Parameter, torch.Tensor]:
    """A linear encoder 5 -> 4, 3 prototypes, an unlabeled batch of 16 (float64)."""
    g = torch.Generator().manual_seed(seed)
    enc = torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        enc.weight.copy_(torch.randn(4, 5, generator=g, dtype=torch.float64))
        enc.bias.copy_(torch.randn(4, generator=g, dtype=torch.float64))
    protos = torch.nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64))
    return enc, protos, torch.randn(16, 5, generator=g, dtype=torch.float64)


def _mean_entropy(enc: torch.nn.Module, protos: torch.Tensor, x: torch.Tensor, t: float) -> float:
    with torch.no_grad():
        return entropy_from_logits(cosine_logits(enc(x), protos, t)).mean().item()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_one_encoder_step_lowers_and_one_classifier_step_raises_the_entropy(seed, temperature):
    """The minimax loss with gradient reversal before the classifier, one backward pass: a small SGD step on
    the encoder alone lowers the batch's mean entropy; the same step on the prototypes alone raises it."""
    enc, protos, x = _toy(seed)
    before = _mean_entropy(enc, protos, x, temperature)
    minimax_entropy_loss(cosine_logits(grad_reverse(enc(x)), protos, temperature)).backward()
    lr = 1e-3 * temperature
    enc_grads = [p.grad.clone() for p in enc.parameters()]
    with torch.no_grad():
        for p, gp in zip(enc.parameters(), enc_grads):
            p -= lr * gp
    after_encoder = _mean_entropy(enc, protos, x, temperature)
    with torch.no_grad():
        for p, gp in zip(enc.parameters(), enc_grads):  # back to the start, then step the classifier only
            p += lr * gp
        protos -= lr * protos.grad
    after_classifier = _mean_entropy(enc, protos, x, temperature)
    assert after_encoder < before < after_classifier


def test_without_reversal_the_encoder_would_raise_the_entropy():
    """The control: the same loss without gradient reversal makes the encoder maximise the entropy too."""
    enc, protos, x = _toy(1)
    before = _mean_entropy(enc, protos, x, 1.0)
    minimax_entropy_loss(cosine_logits(enc(x), protos, 1.0)).backward()
    with torch.no_grad():
        for p in enc.parameters():
            p -= 1e-3 * p.grad
    assert _mean_entropy(enc, protos, x, 1.0) > before
