"""Cross-strategy statistics on frames with a known answer: ranks, Friedman / Nemenyi, bootstrap, claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from al_bench.report.stats import (
    bootstrap_mean_ci,
    claims,
    diff_to_random,
    friedman_nemenyi,
    rank_test,
    setting_aubc,
)
from tests.report.report_frames import DOMINANCE, synthetic_curves


def test_known_dominance_gives_the_expected_ranks_and_a_significant_friedman():
    test = rank_test(synthetic_curves(n_settings=3))
    assert test.blocks == "settings" and test.n_blocks == 3 and test.applicable
    expected = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=["badge", "entropy", "margin", "coreset", "random"])
    pd.testing.assert_series_equal(test.avg_ranks, expected, check_names=False)
    # k = 5, N = 3, every block ranks 1..5: chi2 = 12 N / (k (k + 1)) sum (R_j - (k + 1) / 2)^2 = 12
    assert test.statistic == pytest.approx(12.0)
    assert test.p_value == pytest.approx(stats.chi2.sf(12.0, 4)) and test.p_value < 0.05
    # CD = q_0.05(5) / sqrt 2 * sqrt(5 * 6 / 18) = 2.728 * 1.291 = 3.52 < 4: only badge vs random differs
    assert test.cd == pytest.approx(2.7277 * np.sqrt(30 / 18), abs=1e-3)
    assert test.nemenyi.loc["badge", "random"] < 0.05
    assert test.nemenyi.loc["badge", "entropy"] > 0.05 and test.nemenyi.loc["margin", "random"] > 0.05
    lines = claims(setting_aubc(synthetic_curves(n_settings=3)), test)
    nemenyi = next(line for line in lines if line.startswith("Nemenyi"))
    assert "better than random: badge;" in nemenyi and "3 of 4 not distinguishable" in nemenyi


def test_identical_strategies_give_a_large_p():
    same = dict.fromkeys(["a", "b", "c", "random"], 0.0)
    tied = rank_test(synthetic_curves(n_settings=3, gains=same, noise=0.0))
    assert tied.statistic == 0.0 and tied.p_value == 1.0  # every block all tied
    assert (tied.avg_ranks == 2.5).all()
    noisy = rank_test(synthetic_curves(n_settings=4, gains=same, noise=0.01, rng_seed=3))
    assert noisy.applicable and noisy.p_value > 0.05


def test_one_setting_ranks_over_its_seeds_and_says_so():
    test = rank_test(synthetic_curves(n_settings=1, seeds=4))
    assert test.blocks == "seeds" and test.n_blocks == 4
    assert "single setting d0 / mlp / b" in test.description and "only" in test.description
    assert test.avg_ranks.index[0] == "badge" and test.p_value < 0.05


def test_friedman_not_applicable_is_explained_and_incomplete_strategies_are_dropped():
    two = synthetic_curves(n_settings=3, gains={"badge": 0.04, "random": 0.0})
    test = rank_test(two)
    assert not test.applicable and ">= 3 strategies" in test.reason and test.nemenyi is None
    assert list(test.avg_ranks.index) == ["badge", "random"]  # ranks are still given
    assert any("Friedman test not applicable" in line for line in claims(setting_aubc(two), test))
    values = pd.DataFrame(
        {"a": [3.0, 2.0, 1.0], "b": [2.0, 1.0, 0.0], "c": [1.0, 0.0, np.nan], "d": [0, 0, 0]}
    )
    partial = friedman_nemenyi(values)
    assert list(partial.values.columns) == ["a", "b", "d"] and partial.dropped == ["c (missing in a block)"]


def test_bootstrap_interval_is_seeded_and_degenerates_for_one_seed():
    x = np.array([0.70, 0.72, 0.74, 0.71])
    first = bootstrap_mean_ci(x, np.random.default_rng(5))
    assert first == bootstrap_mean_ci(x, np.random.default_rng(5))
    assert 0.70 <= first[0] < x.mean() < first[1] <= 0.74
    assert bootstrap_mean_ci(np.array([0.7]), np.random.default_rng(0)) == (0.7, 0.7)
    assert all(np.isnan(bootstrap_mean_ci(np.array([]), np.random.default_rng(0))))


def test_setting_aubc_flags_differences_inside_random_seed_spread():
    frame = synthetic_curves(n_settings=1, gains={"near": 0.0, "far": 0.04, "random": 0.0}, noise=0.0)
    # random's AUBC over seeds 0, 1, 2 differs by the seed offsets (0.01 each): std 0.01
    frame.loc[(frame["strategy"] == "near") & (frame["cycle"] > 0), "test_acc"] += 0.005
    table = setting_aubc(frame).set_index("strategy")
    assert table.loc["random", "random_std"] == pytest.approx(0.01)
    # +0.005 at 4 of 5 checkpoints; the trapezoid gives the first interval half weight: 0.005 (1 - 0.5 / 4)
    assert table.loc["near", "diff_random"] == pytest.approx(0.005 * 0.875)
    assert table.loc["near", "within_random_spread"] and not table.loc["far", "within_random_spread"]
    assert list(table.sort_values("rank").index) == ["far", "near", "random"]
    assert (table["n_seeds"] == 3).all() and set(table["family"]) == {"other", "random"}
    line = claims(setting_aubc(frame), rank_test(frame))[-1]
    assert "1 beat random by more than its seed std" in line and "inside its seed spread" in line
    assert line.endswith(": near.")


def test_diff_to_random_pairs_by_seed_with_a_t_interval():
    frame = synthetic_curves(n_settings=1, gains={"a": 0.0, "random": 0.0}, noise=0.0)
    a_last = (frame["strategy"] == "a") & (frame["n_labeled"] == 60)
    frame.loc[a_last, "test_acc"] += np.array([0.01, 0.02, 0.03])  # paired differences at n = 60
    diff = diff_to_random(frame).set_index("n_labeled")
    assert diff.loc[20, "diff"] == 0.0 and diff.loc[20, "n_pairs"] == 3
    half = stats.t.ppf(0.975, 2) * 0.01 / np.sqrt(3)
    assert diff.loc[60, "diff"] == pytest.approx(0.02)
    assert (diff.loc[60, "lo"], diff.loc[60, "hi"]) == (
        pytest.approx(0.02 - half),
        pytest.approx(0.02 + half),
    )
    assert diff.loc[60, "random_std"] == pytest.approx(0.01)  # the seeds' initial offsets
    assert diff_to_random(frame[frame["strategy"] != "random"]).empty


def test_claims_state_seeds_and_settings():
    frame = synthetic_curves(n_settings=2)
    lines = claims(setting_aubc(frame), rank_test(frame))
    assert (
        lines[0].startswith("Basis: 2 setting(s), 3 complete seeds")
        and f"{2 * 3 * len(DOMINANCE)} runs" in lines[0]
    )
    assert "over 2 settings (differing in dataset;" in lines[1] and "3 seeds per setting" in lines[1]
    assert sum(line.startswith("d0 / mlp / b:") or line.startswith("d1 / mlp / b:") for line in lines) == 2
