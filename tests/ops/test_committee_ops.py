"""Committee disagreement scores on hand-made [M, N, C] committees."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from al_bench.ops.committee import consensus_entropy, kl_divergence_to_consensus, vote_entropy


def test_agreeing_committee_has_no_disagreement():
    p = torch.tensor([0.6, 0.3, 0.1]).expand(4, 2, 3)
    assert torch.equal(vote_entropy(p), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(kl_divergence_to_consensus(p), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    h = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    assert torch.allclose(consensus_entropy(p), torch.full((2,), h, dtype=torch.float64))


def test_uniform_committee():
    p = torch.full((3, 1, 5), 0.2)
    assert consensus_entropy(p).item() == pytest.approx(math.log(5))
    assert kl_divergence_to_consensus(p).item() == pytest.approx(0.0, abs=1e-12)
    assert vote_entropy(p).item() == 0.0  # every member's argmax is the first class: they agree


def test_committee_split_between_certain_members():
    eye = torch.eye(2)
    p = torch.stack([eye[0], eye[1], eye[0], eye[1]])[:, None, :]  # [4, 1, 2]
    assert vote_entropy(p).item() == pytest.approx(math.log(2))
    assert consensus_entropy(p).item() == pytest.approx(math.log(2))
    # KL(e_y || (1/2, 1/2)) = log 2 for every member
    assert kl_divergence_to_consensus(p).item() == pytest.approx(math.log(2))


def test_vote_entropy_uses_vote_fractions():
    # votes 0, 0, 1 over three classes: entropy of (2/3, 1/3, 0)
    p = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.35, 0.25], [0.1, 0.8, 0.1]])[:, None, :]
    expected = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert vote_entropy(p).item() == pytest.approx(expected)


def test_kl_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(4, 3, 5, generator=g, dtype=torch.float64).softmax(-1)
    cons = p.mean(0)
    for n in range(3):
        expected = sum(float((p[m, n] * (p[m, n] / cons[n]).log()).sum()) for m in range(4)) / 4
        assert kl_divergence_to_consensus(p)[n].item() == pytest.approx(expected, abs=1e-12)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        vote_entropy(torch.full((3, 4), 0.25))


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 4), c=st.integers(2, 5), seed=st.integers(0, 1000))
def test_ranges_and_decomposition(m, n, c, seed):
    g = torch.Generator().manual_seed(seed)
    p = (4 * torch.randn(m, n, c, generator=g, dtype=torch.float64)).softmax(-1)
    ve, ce, kl = vote_entropy(p), consensus_entropy(p), kl_divergence_to_consensus(p)
    assert ((ve >= 0) & (ve <= math.log(c) + 1e-12)).all()
    assert (kl >= 0).all()
    # mean KL to the consensus = H[consensus] - mean_m H[P_m] (the committee's mutual information)
    mean_h = torch.special.entr(p).sum(-1).mean(0)
    assert torch.allclose(kl, ce - mean_h, atol=1e-10)
