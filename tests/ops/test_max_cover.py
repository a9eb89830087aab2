"""Suggestive Annotation's kernels: bootstrap variance and the greedy max-cover of F(S_a, S_u)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from al_bench.ops.max_cover import (
    bootstrap_variance,
    cosine_similarity_matrix,
    cover_value,
    greedy_max_cover,
)


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def _brute_force(sim: torch.Tensor, k: int) -> tuple[float, tuple[int, ...]]:
    return max((cover_value(sim, list(s)), s) for s in itertools.combinations(range(len(sim)), k))


def _assert_greedy_sequence(sim: torch.Tensor, picks: list[int], tol: float = 1e-5) -> None:
    """Each pick has the largest marginal gain over all remaining candidates (the textbook greedy, which
    scores every candidate every step), up to float32 noise in near-ties."""
    for step, i in enumerate(picks):
        before = picks[:step]
        values = [cover_value(sim, [*before, j]) for j in range(len(sim)) if j not in before]
        assert i not in before and cover_value(sim, [*before, i]) >= max(values) - tol, f"step {step}"


def test_bootstrap_variance_known_values():
    agree = torch.tensor([[[0.7, 0.3]], [[0.7, 0.3]]])  # [M=2, N=1, C=2]
    split = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # per class var = 0.25, mean over classes 0.25
    three = torch.tensor([[[0.2, 0.8]], [[0.5, 0.5]], [[0.8, 0.2]]])  # var of (0.2, 0.5, 0.8) = 0.06
    out = bootstrap_variance(torch.cat([agree, split], 1))
    assert out.dtype == torch.float64 and out.shape == (2,)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.25], dtype=torch.float64))
    torch.testing.assert_close(bootstrap_variance(three), torch.tensor([0.06], dtype=torch.float64))
    with pytest.raises(ValueError, match="M >= 2"):
        bootstrap_variance(split[:1])


def test_cover_value_is_the_sum_of_best_similarities_with_floor_when_empty():
    sim = torch.tensor([[1.0, 0.5, -0.2], [0.0, 1.0, 0.9]])
    assert cover_value(sim, []) == -3.0
    assert cover_value(sim, [0]) == pytest.approx(1.3)
    assert cover_value(sim, [1]) == pytest.approx(1.9)
    assert cover_value(sim, [0, 1]) == pytest.approx(1.0 + 1.0 + 0.9)


def test_cosine_similarity_matrix_ignores_norms():
    a = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(cosine_similarity_matrix(a, b), torch.tensor([[1.0, 2**-0.5], [0.0, 0.0]]))


def test_greedy_equals_brute_force_on_three_clusters():
    """Pool: three clusters of directions (0, 120, 240 degrees) of sizes 4, 3, 2. Candidates: the three
    centres, plus directions between or away from clusters. Greedy is optimal here: it returns the three
    centres, biggest cluster first."""
    pool = torch.tensor([_unit(d) for d in (-5, 0, 2, 5, 118, 120, 122, 239, 241)])
    cand = torch.tensor([_unit(d) for d in (90, 240, 0, 300, 120, 210)])
    picks = greedy_max_cover(cand, pool, 3)
    assert picks.tolist() == [2, 4, 1]
    sim = cosine_similarity_matrix(cand, pool)
    best_value, best_set = _brute_force(sim, 3)
    assert set(picks.tolist()) == set(best_set)
    assert cover_value(sim, picks) == pytest.approx(best_value)


def test_greedy_is_not_always_optimal_known_case():
    """The same pool with a candidate at 180 degrees, between the two small clusters: after the centre of the
    big cluster, 180 gains 3 x 1 + 2 x 1 = 5 > 4.5 for the 120 centre, so greedy ends at 4 + 3 + 2 x 0.5 = 8
    where {0, 120, 240} covers 4 + 3 + 2 = 9 (all values up to the pool's small spread)."""
    pool = torch.tensor([_unit(d) for d in (-5, 0, 2, 5, 118, 120, 122, 239, 241)])
    cand = torch.tensor([_unit(d) for d in (0, 120, 240, 180)])
    picks = greedy_max_cover(cand, pool, 3)
    assert picks.tolist() == [0, 3, 1]
    sim = cosine_similarity_matrix(cand, pool)
    best_value, best_set = _brute_force(sim, 3)
    assert best_set == (0, 1, 2)
    assert cover_value(sim, picks) == pytest.approx(8.0, abs=0.05)
    assert best_value == pytest.approx(9.0, abs=0.05)


@pytest.mark.parametrize("seed", range(25))
def test_greedy_picks_the_largest_gain_each_step_and_is_within_1_minus_1_over_e_of_the_optimum(seed):
    g = torch.Generator().manual_seed(seed)
    pool = torch.randn(12, 3, generator=g)
    cand = torch.cat([pool[:4], torch.randn(4, 3, generator=g)])  # S_c partly inside S_u, as in the paper
    k = 3
    sim = cosine_similarity_matrix(cand, pool)
    picks = greedy_max_cover(cand, pool, k, batch=1 + seed % 3)
    _assert_greedy_sequence(sim, picks.tolist())
    floor = cover_value(sim, [])
    opt, _ = _brute_force(sim, k)
    assert cover_value(sim, picks) - floor >= (1 - 1 / math.e) * (opt - floor) - 1e-9


def test_greedy_breaks_gain_ties_by_position_and_skips_redundant_copies():
    pool = torch.tensor([_unit(0), _unit(90)])
    cand = torch.tensor([_unit(90), _unit(0), _unit(0), _unit(90)])  # equal first gains: position 0 wins
    assert greedy_max_cover(cand, pool, 2).tolist() == [0, 1]  # the copy at 3 adds nothing


def test_refresh_batch_size_never_changes_the_picks():
    g = torch.Generator().manual_seed(7)
    pool = torch.relu(torch.randn(300, 16, generator=g))  # non-negative features, many close gains
    picks = [greedy_max_cover(pool[:80], pool, 40, batch=b).tolist() for b in (1, 3, 64, 1000)]
    assert all(p == picks[0] for p in picks[1:]) and len(set(picks[0])) == 40


def test_greedy_degenerate_sizes():
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert greedy_max_cover(x, x, 0).tolist() == []
    assert sorted(greedy_max_cover(x, x, 5).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="cannot pick 6 of 5"):
        greedy_max_cover(x, x, 6)
