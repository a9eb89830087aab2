"""MC-dropout scores on hand-made [N, T, C] distributions with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from al_bench.ops.bayesian import bald, mc_entropy, mean_conditional_entropy, mean_std, variation_ratio

LN2 = math.log(2.0)


def _random_mc(n: int, t: int, c: int, seed: int = 0, sharp: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (sharp * torch.randn(n, t, c, generator=g, dtype=torch.float64)).softmax(-1)


def test_identical_passes_have_zero_bald_and_variation_ratio():
    p = torch.tensor([0.7, 0.2, 0.1]).expand(1, 5, 3)
    assert bald(p).item() == pytest.approx(0.0, abs=1e-12)
    assert variation_ratio(p).item() == 0.0
    assert mean_std(p).item() == pytest.approx(0.0, abs=1e-12)
    assert mc_entropy(p).item() == pytest.approx(
        -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    )


def test_passes_split_between_two_one_hot_classes():
    # 2 of 4 passes say class 0 with certainty, 2 say class 1: BALD = ln 2, variation ratio 1/2.
    p = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    assert bald(p).item() == pytest.approx(LN2, abs=1e-12)
    assert mc_entropy(p).item() == pytest.approx(LN2, abs=1e-12)
    assert mean_conditional_entropy(p).item() == 0.0
    assert variation_ratio(p).item() == pytest.approx(0.5)
    # population std of a 0/1 variable with mean 1/2 is 1/2 for classes 0 and 1, 0 for class 2.
    assert mean_std(p).item() == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_uniform_passes_have_max_entropy_but_no_mutual_information():
    p = torch.full((2, 6, 4), 0.25)
    assert torch.allclose(mc_entropy(p), torch.full((2,), math.log(4), dtype=torch.float64))
    assert torch.allclose(bald(p), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_variation_ratio_counts_the_modal_class():
    # votes over T=5 passes: 0, 0, 0, 1, 2 -> modal count 3 -> 1 - 3/5.
    eye = torch.eye(3)
    p = torch.stack([eye[0], eye[0], eye[0], eye[1], eye[2]])[None]
    assert variation_ratio(p).item() == pytest.approx(0.4)


def test_mean_std_is_the_population_std():
    p = _random_mc(5, 7, 3)
    expected = torch.tensor([[p[n, :, c].numpy().std() for c in range(3)] for n in range(5)]).mean(-1)
    assert torch.allclose(mean_std(p), expected.double(), atol=1e-12)


def test_scores_match_a_loop_over_samples():
    p = _random_mc(4, 6, 5, seed=3)
    for n in range(4):
        mean = p[n].mean(0)
        h_mean = -(mean * mean.log()).sum()
        h_each = -(p[n] * p[n].log()).sum(-1).mean()
        assert bald(p)[n].item() == pytest.approx((h_mean - h_each).item(), abs=1e-12)
        assert mc_entropy(p)[n].item() == pytest.approx(h_mean.item(), abs=1e-12)


def test_zero_probabilities_are_not_nan():
    p = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    out = torch.stack([bald(p), mc_entropy(p), mean_std(p), variation_ratio(p)])
    assert torch.isfinite(out).all()


def test_output_is_float64_and_rejects_bad_shapes():
    assert bald(torch.full((2, 3, 4), 0.25)).dtype == torch.float64
    with pytest.raises(ValueError):
        bald(torch.full((2, 4), 0.25))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), t=st.integers(1, 8), c=st.integers(2, 6), seed=st.integers(0, 1000))
def test_ranges(n, t, c, seed):
    p = _random_mc(n, t, c, seed=seed, sharp=5.0)
    b = bald(p)
    assert (b >= 0).all() and (b <= math.log(c) + 1e-9).all()
    assert (b <= mc_entropy(p) + 1e-12).all()  # I[y; w] <= H[y]
    vr = variation_ratio(p)
    assert (vr >= 0).all() and (vr <= 1 - 1 / c + 1e-12).all()
    assert (mean_std(p) >= 0).all()
