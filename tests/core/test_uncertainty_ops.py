"""Uncertainty scores against hand-computed values; higher = query first."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from al_bench.ops.uncertainty import entropy, least_confidence, margin

PROBS = torch.tensor(
    [
        [1.0, 0.0, 0.0],  # certain
        [0.5, 0.5, 0.0],  # two-way tie
        [1 / 3, 1 / 3, 1 / 3],  # uniform
        [0.7, 0.2, 0.1],
    ],
    dtype=torch.float64,
)


def test_entropy_by_hand():
    expected = [
        0.0,
        math.log(2),
        math.log(3),
        -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)),
    ]
    assert entropy(PROBS).tolist() == pytest.approx(expected, abs=1e-12)


def test_least_confidence_by_hand():
    assert least_confidence(PROBS).tolist() == pytest.approx([0.0, 0.5, 2 / 3, 0.3], abs=1e-12)


def test_margin_by_hand():
    assert margin(PROBS).tolist() == pytest.approx([-1.0, 0.0, 0.0, -0.5], abs=1e-12)


def test_margin_needs_two_classes():
    with pytest.raises(ValueError):
        margin(torch.ones(3, 1))


@pytest.mark.parametrize("score", [entropy, least_confidence, margin])
def test_uniform_scores_highest_certain_lowest(score):
    s = score(PROBS)
    assert s[2] == s.max()
    assert s[0] == s.min()


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_scores_are_bounded(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(n, c, generator=g, dtype=torch.float64).softmax(-1)
    assert ((entropy(p) >= -1e-12) & (entropy(p) <= math.log(c) + 1e-9)).all()
    assert ((least_confidence(p) >= 0) & (least_confidence(p) <= 1 - 1 / c + 1e-12)).all()
    assert ((margin(p) >= -1) & (margin(p) <= 0)).all()
