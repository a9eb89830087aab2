"""Stochastic batch acquisition kernels: the three weightings by hand, and the law of Gumbel-top-k draws
(first draw, second draw given the first, ordered pairs) against the exact sequential without-replacement
probabilities by chi-square on seeded draws; a peer check against baal's PowerSampling."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, chisquare

from al_bench.ops.stochastic import MODES, gumbel_top_k, log_weights
from al_bench.strategies.base import top_k

N_DRAWS = 20_000
P_MIN = 1e-3  # chi-square p-value below which a law is rejected (seeded draws: deterministic)


def _draws(log_w: np.ndarray, k: int, n: int = N_DRAWS, seed: int = 0) -> np.ndarray:
    """``n`` seeded Gumbel-top-k draws [n, k] (positions in draw order)."""
    rng = np.random.default_rng(seed)
    return np.stack([gumbel_top_k(log_w, k, rng) for _ in range(n)])


def _counts(values: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(values, minlength=n_items)


# ---- log_weights -----------------------------------------------------------------------------------------
def test_power_beta_one_is_proportional_to_scores():
    np.testing.assert_allclose(
        np.exp(log_weights(np.array([1.0, 2, 3, 4]), "power", 1.0)), [0.1, 0.2, 0.3, 0.4]
    )


def test_power_beta_two_squares_scores():
    s = np.array([1.0, 2, 3])
    np.testing.assert_allclose(np.exp(log_weights(s, "power", 2.0)), s**2 / (s**2).sum())


def test_softmax_is_log_softmax_of_beta_scores():
    s = torch.tensor([-0.3, 0.0, 0.7, 2.5, -4.0])  # any sign, torch input
    expected = torch.log_softmax(3.0 * s.double(), 0).numpy()
    np.testing.assert_allclose(log_weights(s, "softmax", 3.0), expected, rtol=1e-12)


def test_softrank_ranks_highest_first_and_ties_share_their_average_rank():
    s = np.array([0.3, 0.9, 0.1, 0.5])  # ranks 3, 1, 4, 2
    r = np.array([3.0, 1, 4, 2])
    np.testing.assert_allclose(np.exp(log_weights(s, "softrank", 1.0)), (1 / r) / (1 / r).sum())
    np.testing.assert_allclose(np.exp(log_weights(s, "softrank", 2.0)), r**-2 / (r**-2).sum())
    tied = np.array([0.3, 0.9, 0.9, 0.5])  # ranks 4, 1.5, 1.5, 3
    r = np.array([4.0, 1.5, 1.5, 3])
    np.testing.assert_allclose(np.exp(log_weights(tied, "softrank", 1.0)), (1 / r) / (1 / r).sum())


def test_softrank_depends_only_on_the_order():
    s = np.array([0.3, 0.9, -0.1, 0.5, 7.0])
    np.testing.assert_allclose(log_weights(s, "softrank", 1.5), log_weights(10 * s - 4, "softrank", 1.5))


@pytest.mark.parametrize("mode", MODES)
def test_beta_zero_is_uniform(mode):
    s = np.array([0.0, 0.1, 2.0, 5.0, 0.0])
    np.testing.assert_allclose(log_weights(s, mode, 0.0), np.full(5, -np.log(5)))
    counts = _counts(_draws(log_weights(s, mode, 0.0), 1, n=5_000)[:, 0], 5)
    assert chisquare(counts, np.full(5, 1_000)).pvalue > P_MIN


def test_power_refuses_negative_scores_and_clamps_float_error():
    with pytest.raises(ValueError, match=r"scores >= 0.*-0\.5"):
        log_weights(np.array([1.0, -0.5, 2.0]), "power", 1.0)
    lw = log_weights(np.array([1.0, -1e-9, 3.0]), "power", 1.0)  # float error of an entropy: weight 0
    np.testing.assert_allclose(np.exp(lw), [0.25, 0.0, 0.75])
    assert np.isneginf(lw[1])
    np.testing.assert_allclose(np.exp(log_weights(np.array([-0.5, 0.5]), "softmax", 1.0)).sum(), 1.0)


def test_infinite_scores_take_all_the_mass():
    s = np.array([1.0, np.inf, 3.0, np.inf])
    for mode in ("softmax", "power"):
        np.testing.assert_allclose(np.exp(log_weights(s, mode, 1.0)), [0, 0.5, 0, 0.5])
    np.testing.assert_allclose(np.exp(log_weights(np.array([-np.inf, 0.0]), "softmax", 1.0)), [0, 1])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown mode 'gibbs'; valid: softmax, power, softrank"):
        log_weights(np.ones(3), "gibbs", 1.0)
    for beta in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="beta"):
            log_weights(np.ones(3), "softmax", beta)
    with pytest.raises(ValueError, match="1-D"):
        log_weights(np.ones((2, 3)), "power", 1.0)
    with pytest.raises(ValueError, match="cannot select 4 of 3"):
        gumbel_top_k(np.zeros(3), 4, np.random.default_rng(0))


# ---- NaN and zero weights --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_nan_scores_are_never_drawn_before_finite_ones(mode):
    s = np.array([0.2, np.nan, 0.5, 0.0, np.nan, 0.9])
    with pytest.warns(RuntimeWarning, match="2 NaN scores"):
        lw = log_weights(s, mode, 1.0)
    assert np.isnan(lw[[1, 4]]).all()
    finite = np.flatnonzero(~np.isnan(s))
    for seed in range(20):
        rng = np.random.default_rng(seed)
        if mode == "power":  # score 0 has weight 0: drawn after the positive ones, still before NaN
            assert set(gumbel_top_k(lw, 3, rng)) == {0, 2, 5}
            with pytest.warns(RuntimeWarning, match="only 3 of 6 candidates have positive weight"):
                picked = gumbel_top_k(lw, 6, rng)
            assert picked[3] == 3 and set(picked[4:]) == {1, 4}
        else:
            assert set(gumbel_top_k(lw, 4, rng)) == set(finite)
            with pytest.warns(RuntimeWarning, match="only 4 of 6"):
                assert set(gumbel_top_k(lw, 6, rng)[4:]) == {1, 4}


def test_zero_weight_fill_is_random_not_positional():
    lw = np.array([0.0, -np.inf, -np.inf, -np.inf, -np.inf])
    with pytest.warns(RuntimeWarning):
        seconds = {int(gumbel_top_k(lw, 2, np.random.default_rng(seed))[1]) for seed in range(40)}
    assert seconds == {1, 2, 3, 4}


# ---- the law of the draws --------------------------------------------------------------------------------
P5 = np.array([0.05, 0.1, 0.2, 0.3, 0.35])


def test_first_draw_follows_p():
    draws = _draws(np.log(P5), 2)
    assert chisquare(_counts(draws[:, 0], 5), N_DRAWS * P5).pvalue > P_MIN
    assert (draws[:, 0] != draws[:, 1]).all(), "without replacement"


def test_second_draw_given_the_first_follows_renormalised_p():
    draws = _draws(np.log(P5), 2, seed=1)
    first = 4  # the most likely first draw
    second = draws[draws[:, 0] == first, 1]
    expected = np.where(np.arange(5) == first, 0.0, P5) / (1 - P5[first])
    counts = _counts(second, 5)
    assert counts[first] == 0
    keep = np.arange(5) != first
    assert chisquare(counts[keep], len(second) * expected[keep]).pvalue > P_MIN


def test_ordered_pairs_follow_sequential_sampling_without_replacement():
    p = np.array([0.2, 0.3, 0.5])
    pairs = list(itertools.permutations(range(3), 2))
    exact = np.array([p[i] * p[j] / (1 - p[i]) for i, j in pairs])
    draws = _draws(np.log(p) + 7.0, 2, seed=2)  # unnormalised log-weights: same law
    codes = {pair: c for c, pair in enumerate(pairs)}
    counts = np.bincount([codes[(int(a), int(b))] for a, b in draws], minlength=len(pairs))
    assert chisquare(counts, N_DRAWS * exact).pvalue > P_MIN


def test_power_beta_one_first_draw_frequencies():
    draws = _draws(log_weights(np.array([1.0, 2, 3, 4]), "power", 1.0), 1, seed=3)
    freq = _counts(draws[:, 0], 4) / N_DRAWS
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)  # ~4 standard deviations
    assert chisquare(freq * N_DRAWS, N_DRAWS * np.array([0.1, 0.2, 0.3, 0.4])).pvalue > P_MIN


def test_large_softmax_beta_is_top_k_in_order():
    scores = np.random.default_rng(0).permutation(20).astype(float)  # gaps of 1: 50 nats apart
    lw = log_weights(scores, "softmax", 50.0)
    for seed in range(50):
        rng = np.random.default_rng(seed)
        np.testing.assert_array_equal(gumbel_top_k(lw, 5, rng), top_k(scores, 5, np.random.default_rng(seed)))


def test_same_seed_same_draw():
    lw = log_weights(np.random.default_rng(0).random(200), "power", 1.0)
    a = gumbel_top_k(lw, 10, np.random.default_rng(7))
    np.testing.assert_array_equal(a, gumbel_top_k(lw, 10, np.random.default_rng(7)))
    assert not np.array_equal(a, gumbel_top_k(lw, 10, np.random.default_rng(8)))
    assert a.dtype == np.int64


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-50, 50) | st.just(-np.inf) | st.just(np.nan), min_size=1, max_size=30),
    st.integers(0, 30),
    st.integers(0, 2**32 - 1),
)
def test_any_draw_is_k_unique_positions(log_w, k, seed):
    k = min(k, len(log_w))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        picked = gumbel_top_k(np.array(log_w), k, np.random.default_rng(seed))
    assert len(picked) == k == len(set(picked.tolist()))
    assert ((picked >= 0) & (picked < len(log_w))).all()
    n_finite = int(np.isfinite(log_w).sum())
    assert np.isfinite(np.array(log_w)[picked[: min(k, n_finite)]]).all(), "finite weights first"


# ---- peer check: baal ----------------------------------------------------------------------------------
def test_peer_baal_power_sampling():
    """baal's PowerSampling (temperature T = 1 / beta) over its BALD on the same MC predictions: the same
    distribution, and first draws (baal: np.random.choice without replacement) with the same law as ours;
    its GibbsSampling and RankBasedSampling give our softmax and softrank distributions."""
    stochastics = pytest.importorskip(
        "baal.active.heuristics.stochastics", reason="baal is not installed (pip install baal)"
    )
    from baal.active.heuristics import BALD as BaalBALD

    from al_bench.ops.bayesian import bald

    g = torch.Generator().manual_seed(0)
    mc = torch.softmax(2 * torch.randn(5, 8, 3, generator=g), -1)  # [N, T, C]; baal's layout is [N, C, T]
    beta, n = 2.0, 6_000
    lw = log_weights(bald(mc), "power", beta)
    heuristic = stochastics.PowerSampling(BaalBALD(), query_size=1, temperature=1 / beta)
    baal_preds = mc.permute(0, 2, 1).numpy().astype(np.float64)
    _, baal_p = heuristic.get_ranks(baal_preds)
    np.testing.assert_allclose(baal_p, np.exp(lw), rtol=1e-6)
    for name, mode in (("GibbsSampling", "softmax"), ("RankBasedSampling", "softrank")):
        _, their_p = getattr(stochastics, name)(BaalBALD(), query_size=1, temperature=1 / beta).get_ranks(
            baal_preds
        )
        np.testing.assert_allclose(
            their_p, np.exp(log_weights(bald(mc), mode, beta)), rtol=1e-6, err_msg=name
        )

    state = np.random.get_state()  # noqa: NPY002 (baal draws from the global numpy generator)
    try:
        np.random.seed(0)  # noqa: NPY002
        theirs = np.array([heuristic.get_ranks(baal_preds)[0][0] for _ in range(n)])
    finally:
        np.random.set_state(state)  # noqa: NPY002
    ours = _draws(lw, 1, n=n, seed=4)[:, 0]
    counts = np.stack([_counts(ours, 5), _counts(theirs, 5)])
    assert chi2_contingency(counts[:, counts.sum(0) > 0]).pvalue > P_MIN, counts
    assert chisquare(_counts(theirs, 5), n * np.exp(lw)).pvalue > P_MIN
