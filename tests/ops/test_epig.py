"""EPIG kernel on tiny hand-made [N, T, C] distributions with known answers, the brute-force definition and a
peer implementation (baal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import al_bench.ops.epig as epig_ops
from al_bench.ops.bayesian import bald
from al_bench.ops.epig import conditional_epig_from_probs, epig_from_probs

LN2 = math.log(2.0)


def _random_mc(n: int, t: int, c: int, seed: int = 0, sharp: float = 3.0) -> torch.Tensor:
    """Random probabilities [n, t, c] (float64) that vary over the t functions."""
    g = torch.Generator().manual_seed(seed)
    return (sharp * torch.randn(n, t, c, generator=g, dtype=torch.float64)).softmax(-1)


def _brute_force_mi(pool: torch.Tensor, targ: torch.Tensor) -> float:
    """I(y; y*) = sum_{c,d} p(c,d) log p(c,d) / (p(c) p(d)) for one candidate [T, C] and one target [T, C],
    by explicit loops over (c, d) and t with Python floats, p(c, d) = (1/T) sum_t p_t(c) p*_t(d)."""
    p, q = pool.tolist(), targ.tolist()
    t_count, n_classes = len(p), len(p[0])
    total = 0.0
    for c in range(n_classes):
        p_c = sum(p[t][c] for t in range(t_count)) / t_count
        for d in range(n_classes):
            q_d = sum(q[t][d] for t in range(t_count)) / t_count
            joint = sum(p[t][c] * q[t][d] for t in range(t_count)) / t_count
            if joint > 0.0:  # 0 log 0 = 0
                total += joint * math.log(joint / (p_c * q_d))
    return total


def test_identical_functions_give_zero():
    # every pass is the same function: y and y* are independent, whatever the probabilities.
    pool = _random_mc(4, 1, 3, seed=1).expand(4, 6, 3)
    targ = _random_mc(5, 1, 3, seed=2).expand(5, 6, 3)
    assert torch.allclose(epig_from_probs(pool, targ), torch.zeros(4, dtype=torch.float64), atol=1e-12)


def test_target_that_does_not_depend_on_the_function_gives_zero():
    pool = _random_mc(4, 8, 3, seed=3)  # uncertain candidates (BALD > 0)
    assert (bald(pool) > 0.05).all()
    targ = _random_mc(3, 1, 3, seed=4).expand(3, 8, 3)  # the same prediction under every function
    assert torch.allclose(epig_from_probs(pool, targ), torch.zeros(4, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_same_function_of_t_with_opposite_one_hot_passes_gives_ln2(n_classes):
    # two equally likely functions: t = 0 says class 0, t = 1 says class 1, for candidate and target alike.
    eye = torch.eye(n_classes, dtype=torch.float64)
    pool = torch.stack([eye[0], eye[1]])[None]  # [1, 2, C]
    assert epig_from_probs(pool, pool).item() == pytest.approx(LN2, abs=1e-15)
    # a target that is the mirror image (t = 0 -> class 1) is just as informative.
    mirror = torch.stack([eye[1], eye[0]])[None]
    assert epig_from_probs(pool, mirror).item() == pytest.approx(LN2, abs=1e-15)
    # two targets, one informative (ln 2) and one constant (0): the mean over targets.
    constant = torch.stack([eye[0], eye[0]])[None]
    both = torch.cat([pool, constant])
    assert conditional_epig_from_probs(pool, both)[0].tolist() == pytest.approx([LN2, 0.0], abs=1e-15)
    assert epig_from_probs(pool, both).item() == pytest.approx(LN2 / 2, abs=1e-15)


def test_a_candidate_that_shares_the_targets_feature_beats_an_equally_uncertain_unrelated_one():
    # four equally likely functions t = (a, b), two independent bits. Targets follow bit a; candidate 0 too,
    # candidate 1 follows bit b: both have BALD = ln 2, only candidate 0 tells about the targets.
    eye = torch.eye(2, dtype=torch.float64)
    bits = [(0, 0), (0, 1), (1, 0), (1, 1)]
    follows_a = torch.stack([eye[a] for a, _ in bits])
    follows_b = torch.stack([eye[b] for _, b in bits])
    pool = torch.stack([follows_a, follows_b])  # [2, 4, 2]
    targ = follows_a.expand(3, 4, 2)
    assert bald(pool).tolist() == pytest.approx([LN2, LN2], abs=1e-15)
    assert epig_from_probs(pool, targ).tolist() == pytest.approx([LN2, 0.0], abs=1e-15)


@pytest.mark.parametrize(("n", "m", "t", "c", "seed"), [(3, 4, 5, 2, 0), (4, 2, 7, 3, 1), (2, 3, 3, 6, 2)])
def test_matches_the_brute_force_definition(n, m, t, c, seed):
    pool = _random_mc(n, t, c, seed=seed)
    targ = _random_mc(m, t, c, seed=seed + 100)
    pool[0, :, -1] = 0.0  # a class no function predicts for candidate 0: 0 log 0 = 0
    pool[0] /= pool[0].sum(-1, keepdim=True)
    expected = torch.tensor(
        [[_brute_force_mi(pool[i], targ[j]) for j in range(m)] for i in range(n)], dtype=torch.float64
    )
    got = conditional_epig_from_probs(pool, targ)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(epig_from_probs(pool, targ), expected.mean(1), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_candidate_as_its_own_target_matches_the_brute_force_definition(seed):
    # EPIG(x | x* = x), M = 1: the information between two labels of the same input, at most BALD(x).
    pool = _random_mc(3, 6, 4, seed=seed)
    for i in range(3):
        own = epig_from_probs(pool[i : i + 1], pool[i : i + 1]).item()
        assert own == pytest.approx(_brute_force_mi(pool[i], pool[i]), rel=1e-10, abs=1e-14)
        assert 0.0 < own <= bald(pool[i : i + 1]).item() + 1e-12


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 4),
    m=st.integers(1, 4),
    t=st.integers(1, 8),
    c=st.integers(2, 5),
    sharp=st.floats(0.1, 8.0),
    seed=st.integers(0, 10_000),
)
def test_mutual_information_bounds(n, m, t, c, sharp, seed):
    # data processing: y and y* are independent given the function t, so I(y; y*) <= min(I(y; t), I(y*; t)).
    pool = _random_mc(n, t, c, seed=seed, sharp=sharp)
    targ = _random_mc(m, t, c, seed=seed + 1, sharp=sharp)
    cond = conditional_epig_from_probs(pool, targ)  # [n, m]
    assert (cond >= 0).all()
    assert (cond <= bald(pool)[:, None] + 1e-12).all()
    assert (cond <= bald(targ)[None, :] + 1e-12).all()
    score = epig_from_probs(pool, targ)
    assert (score <= bald(pool) + 1e-12).all() and (score <= bald(targ).mean() + 1e-12).all()


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 7, 100, None])
def test_chunked_equals_unchunked(chunk_size):
    pool = _random_mc(7, 5, 4, seed=5)
    targ = _random_mc(6, 5, 4, seed=6)
    whole = conditional_epig_from_probs(pool, targ, chunk_size=7)
    torch.testing.assert_close(
        conditional_epig_from_probs(pool, targ, chunk_size=chunk_size), whole, rtol=1e-12, atol=1e-15
    )
    torch.testing.assert_close(
        epig_from_probs(pool, targ, chunk_size=chunk_size), whole.mean(1), rtol=1e-12, atol=1e-15
    )


def test_never_builds_more_than_one_chunk_of_joints(monkeypatch):
    # with a budget of 2 * M * C * C elements per chunk, no joint tensor holds more than that.
    n, m, t, c = 9, 5, 4, 3
    pool, targ = _random_mc(n, t, c, seed=7), _random_mc(m, t, c, seed=8)
    expected = conditional_epig_from_probs(pool, targ, chunk_size=n)
    seen: list[int] = []
    entr = torch.special.entr

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.numel())
        return entr(x)

    monkeypatch.setattr(epig_ops, "DEFAULT_CHUNK_ELEMENTS", 2 * m * c * c)
    monkeypatch.setattr(torch.special, "entr", spy)
    got = epig_from_probs(pool, targ)
    assert max(seen) == 2 * m * c * c < n * m * c * c
    torch.testing.assert_close(got, expected.mean(1), rtol=1e-12, atol=1e-15)


def test_agrees_with_baal_epig():
    """Peer check: baal's ``EPIG.compute_score`` (baal 2.1, adapted from the authors' repository
    fbickfordsmith/epig; layout [N, C, K], float32, entropy form) on the same probabilities."""
    heuristics = pytest.importorskip("baal.active.heuristics.heuristics")
    pool = _random_mc(20, 10, 4, seed=9, sharp=2.0).float().double()  # float32-representable
    targ = _random_mc(15, 10, 4, seed=10, sharp=2.0).float().double()
    ours = epig_from_probs(pool, targ).numpy()
    theirs = heuristics.EPIG().compute_score(
        pool.permute(0, 2, 1).numpy(), target_predictions=targ.permute(0, 2, 1).numpy()
    )
    assert theirs.shape == ours.shape
    assert ours.std() > 0.01  # a non-trivial ranking to compare
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=2e-6)  # baal computes in float32 (~4e-7 seen)
    assert (np.argsort(-theirs)[:5] == np.argsort(-ours)[:5]).all()


def test_zero_probabilities_are_not_nan_and_output_is_float64():
    pool = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])  # float32 in
    out = epig_from_probs(pool, pool)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()


def test_empty_pool_and_bad_shapes():
    targ = _random_mc(3, 4, 2)
    assert epig_from_probs(targ[:0], targ).shape == (0,)
    assert conditional_epig_from_probs(targ[:0], targ).shape == (0, 3)
    with pytest.raises(ValueError, match="target"):
        epig_from_probs(targ, targ[:0])
    with pytest.raises(ValueError, match="same T"):
        epig_from_probs(targ, _random_mc(3, 5, 2))
    with pytest.raises(ValueError, match=r"\[N, T, C\]"):
        epig_from_probs(targ[:, 0], targ)
    with pytest.raises(ValueError, match="chunk_size"):
        epig_from_probs(targ, targ, chunk_size=0)
