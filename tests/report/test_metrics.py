"""Report metrics on hand-made curves with known answers: AUBC, labels to reach, savings, penalty matrix."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from al_bench.report.metrics import (
    accuracy_scale,
    annotation_savings,
    aubc,
    labels_to_reach,
    mean_curves,
    penalty_matrix,
    seed_aubc,
    summary_table,
)


def curve_rows(
    strategy: str,
    seed: int,
    n_labeled: list[int],
    acc: list[float],
    dataset: str = "toy",
    budget: str = "tiny",
    train_s: float = 1.0,
    select_s: float = 0.5,
) -> list[dict]:
    return [
        {
            "dataset": dataset,
            "model": "mlp",
            "budget": budget,
            "strategy": strategy,
            "seed": seed,
            "cycle": cycle,
            "n_labeled": n,
            "test_acc": a,
            "train_s": train_s,
            "select_s": select_s,
        }  # fmt: skip
        for cycle, (n, a) in enumerate(zip(n_labeled, acc))
    ]


def frame_of(*row_lists: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for rows in row_lists for row in rows])


# ---------------------------------------------------------------- AUBC, labels to reach, savings


def test_aubc_by_hand():
    assert aubc([10, 20, 30], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    # uneven spacing: (10 * (0 + 1) / 2 + 20 * 1) / 30
    assert aubc([0, 10, 30], [0.0, 1.0, 1.0]) == pytest.approx(25 / 30)
    assert aubc([30, 0, 10], [1.0, 0.0, 1.0]) == pytest.approx(25 / 30)  # order does not matter
    assert aubc([100], [0.42]) == pytest.approx(0.42)
    assert aubc([1, 2, 5, 9], [0.3] * 4) == pytest.approx(0.3)  # flat curve -> its value


def test_aubc_rejects_bad_input():
    with pytest.raises(ValueError):
        aubc([10, 10], [0.1, 0.2])
    with pytest.raises(ValueError):
        aubc([10, 20], [0.1])
    with pytest.raises(ValueError):
        aubc([], [])


def test_labels_to_reach_first_checkpoint_no_interpolation():
    n, acc = [10, 20, 30, 40], [0.5, 0.8, 0.7, 0.9]
    assert labels_to_reach(n, acc, 0.75) == 20  # first checkpoint >= target, even if the curve dips later
    assert labels_to_reach(n, acc, 0.8) == 20  # equality counts
    assert labels_to_reach(n, acc, 0.85) == 40
    assert labels_to_reach(n, acc, 0.4) == 10
    assert np.isnan(labels_to_reach(n, acc, 0.95))
    assert labels_to_reach([40, 10, 20], [0.9, 0.5, 0.8], 0.75) == 20  # unsorted input
    mean_of_three = (0.7 + 0.7 + 0.7) / 3  # 0.6999999999999998: rounding must not hide a reached target
    assert labels_to_reach([10, 20], [0.5, mean_of_three], (0.6 + 0.8) / 2) == 20


def test_annotation_savings_by_hand():
    n = [10, 20, 30]
    frame = frame_of(
        # random: mean curve 0.5, 0.6, 0.7 -> target 0.7, reached at 30
        curve_rows("random", 0, n, [0.45, 0.55, 0.65]),
        curve_rows("random", 1, n, [0.55, 0.65, 0.75]),
        curve_rows("a", 0, n, [0.6, 0.7, 0.8]),  # reaches 0.7 at 20 -> saving 1 - 20/30
        curve_rows("b", 0, n, [0.5, 0.6, 0.65]),  # never reaches 0.7
    )
    out = annotation_savings(frame).set_index("strategy")
    assert out.loc["random", "target_acc"] == pytest.approx(0.7)
    assert out.loc["random", "labels_to_reach"] == 30
    assert out.loc["random", "labels_random"] == 30
    assert out.loc["random", "saving"] == pytest.approx(0.0)
    assert out.loc["a", "labels_to_reach"] == 20
    assert out.loc["a", "saving"] == pytest.approx(1 / 3)
    assert np.isnan(out.loc["b", "labels_to_reach"])
    assert np.isnan(out.loc["b", "saving"])


def test_annotation_savings_non_monotone_baseline_and_missing_baseline():
    n = [10, 20, 30]
    frame = frame_of(curve_rows("random", 0, n, [0.5, 0.72, 0.7]), curve_rows("a", 0, n, [0.7, 0.8, 0.9]))
    out = annotation_savings(frame).set_index("strategy")
    assert out.loc["random", "labels_to_reach"] == 20  # its own mean curve touched 0.7 at 20 already
    assert out.loc["a", "saving"] == pytest.approx(1 - 10 / 20)
    no_random = annotation_savings(frame[frame["strategy"] == "a"])
    assert no_random["saving"].isna().all() and no_random["labels_to_reach"].isna().all()


def test_accuracy_scale():
    assert accuracy_scale([0.1, 0.95]) == 100.0
    assert accuracy_scale([12.0, 85.3]) == 1.0


# ---------------------------------------------------------------- penalty matrix


def noisy_pair(settings: int = 1, seeds: int = 5, checkpoints: int = 4, gap: float = 0.2, shared_start=False):
    """Strategy a = b + gap (+ noise): a is clearly better at every checkpoint of every setting."""
    rng = np.random.default_rng(0)
    rows = []
    n = [100 * (k + 1) for k in range(checkpoints)]
    for s, seed in itertools.product(range(settings), range(seeds)):
        base = 0.5 + 0.05 * np.arange(checkpoints) + rng.normal(0, 0.01, checkpoints)
        better = base + gap + rng.normal(0, 0.01, checkpoints)
        if shared_start:
            better[0] = base[0]
        rows += curve_rows("b", seed, n, list(base), dataset=f"d{s}")
        rows += curve_rows("a", seed, n, list(better), dataset=f"d{s}")
    return pd.DataFrame(rows)


def test_penalty_matrix_clear_winner_counts_one_per_setting():
    for settings in (1, 3):
        matrix, col_means = penalty_matrix(noisy_pair(settings=settings))
        assert matrix.loc["a", "b"] == pytest.approx(settings)
        assert matrix.loc["b", "a"] == 0.0
        assert np.all(np.diag(matrix.to_numpy()) == 0.0)
        assert matrix.attrs["n_settings"] == settings
        # column mean over both rows (diagonal included): b is beaten in half of the entries of its column
        assert col_means["b"] == pytest.approx(settings / 2)
        assert col_means["a"] == 0.0


def test_penalty_matrix_shared_initial_checkpoint_counts_in_the_denominator():
    matrix, _ = penalty_matrix(noisy_pair(checkpoints=4, shared_start=True))
    assert matrix.loc["a", "b"] == pytest.approx(3 / 4)  # Z = 0 at the initial set: no win there
    assert matrix.loc["b", "a"] == 0.0


def test_penalty_matrix_identical_strategies_tie():
    frame = noisy_pair()
    twin = frame[frame["strategy"] == "a"].assign(strategy="a_twin")
    matrix, _ = penalty_matrix(pd.concat([frame, twin]))
    assert matrix.loc["a", "a_twin"] == 0.0 and matrix.loc["a_twin", "a"] == 0.0
    assert matrix.loc["a", "b"] == pytest.approx(1.0) and matrix.loc["a_twin", "b"] == pytest.approx(1.0)


def test_penalty_matrix_needs_two_paired_seeds():
    matrix, _ = penalty_matrix(noisy_pair(seeds=1))
    assert (matrix.to_numpy() == 0.0).all()
    # two seeds each but only one in common: still no test
    frame = noisy_pair(seeds=2)
    frame.loc[(frame["strategy"] == "a") & (frame["seed"] == 0), "seed"] = 7
    matrix, _ = penalty_matrix(frame)
    assert (matrix.to_numpy() == 0.0).all()


def test_penalty_matrix_constant_difference_is_a_win():
    n = [10, 20]
    base = {0: [0.5, 0.25], 1: [0.125, 0.75], 2: [0.375, 0.5]}  # dyadic values: Z is exactly 0.25, std 0
    frame = frame_of(
        *(curve_rows("b", seed, n, acc) for seed, acc in base.items()),
        *(curve_rows("a", seed, n, [x + 0.25 for x in acc]) for seed, acc in base.items()),
    )
    matrix, _ = penalty_matrix(frame)
    assert matrix.loc["a", "b"] == 1.0 and matrix.loc["b", "a"] == 0.0


def test_penalty_matrix_uses_first_five_sorted_seeds():
    """Seeds 0-4: a wins by 0.1 (+ noise); seeds 5, 6: a loses by 10. Only the cap keeps a's win."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in [6, 3, 0, 5, 1, 4, 2]:  # unsorted on purpose
        b = 0.5 + rng.normal(0, 0.005)
        a = b + (0.1 + rng.normal(0, 0.005) if seed < 5 else -10.0)
        rows += curve_rows("a", seed, [10], [a]) + curve_rows("b", seed, [10], [b])
    frame = pd.DataFrame(rows)
    capped, _ = penalty_matrix(frame)
    assert capped.loc["a", "b"] == 1.0 and capped.loc["b", "a"] == 0.0
    uncapped, _ = penalty_matrix(frame, max_seeds=7)
    assert uncapped.loc["a", "b"] == 0.0  # mean(Z) < 0 over all seven


def test_penalty_matrix_strategy_selection_and_order():
    frame = noisy_pair()
    matrix, col_means = penalty_matrix(frame, strategies=["b", "a"])
    assert list(matrix.index) == ["b", "a"] and list(col_means.index) == ["b", "a"]
    only_a, _ = penalty_matrix(frame, strategies=["a"])
    assert only_a.shape == (1, 1) and only_a.iloc[0, 0] == 0.0
    with pytest.raises(ValueError):
        penalty_matrix(frame, strategies=["a", "nope"])


def reference_penalty(frame: pd.DataFrame, max_seeds: int = 5, alpha: float = 0.05) -> pd.DataFrame:
    """Plain loops over settings, checkpoints and pairs, like BADGE's agg_results.py (but paired by seed)."""
    names = sorted(frame["strategy"].unique())
    out = pd.DataFrame(0.0, index=names, columns=names)
    for _, g in frame.groupby(["dataset", "model", "budget"]):
        checkpoints = sorted(g["n_labeled"].unique())
        for n in checkpoints:
            at = g[g["n_labeled"] == n]
            for i, j in itertools.permutations(names, 2):
                acc_i = at[at["strategy"] == i].set_index("seed")["test_acc"]
                acc_j = at[at["strategy"] == j].set_index("seed")["test_acc"]
                common = sorted(set(acc_i.index) & set(acc_j.index))[:max_seeds]
                if len(common) < 2:
                    continue
                z = acc_i.loc[common].to_numpy() - acc_j.loc[common].to_numpy()
                if z.mean() <= 0:
                    continue
                p = 0.0 if z.std(ddof=1) == 0 else stats.ttest_1samp(z, 0.0).pvalue
                if p < alpha:
                    out.loc[i, j] += 1.0 / len(checkpoints)
    return out


@pytest.mark.parametrize("trial", range(4))
def test_penalty_matrix_matches_loop_reference(trial):
    """Random ragged sweeps (missing seeds / cycles, 3 strategies, 2 settings) against the loop version."""
    rng = np.random.default_rng(trial)
    rows = []
    for dataset, strategy, seed in itertools.product(["d0", "d1"], ["x", "y", "z"], range(7)):
        if rng.random() < 0.2:
            continue  # missing run
        cycles = rng.integers(1, 6)  # unfinished runs stop early
        skill = {"x": 0.0, "y": 0.02, "z": 0.05}[strategy]
        acc = 0.5 + 0.05 * np.arange(cycles) + skill + rng.normal(0, 0.02, cycles)
        rows += curve_rows(strategy, seed, [10 * (k + 1) for k in range(cycles)], list(acc), dataset=dataset)
    frame = pd.DataFrame(rows)
    for max_seeds in (3, 5):
        matrix, _ = penalty_matrix(frame, max_seeds=max_seeds)
        expected = reference_penalty(frame, max_seeds=max_seeds)
        np.testing.assert_allclose(matrix.to_numpy(), expected.loc[matrix.index, matrix.columns].to_numpy())
    assert matrix.to_numpy().sum() > 0  # the trial does exercise wins


# ---------------------------------------------------------------- summary


def test_summary_table_on_a_tiny_frame():
    n = [10, 20, 30]
    frame = frame_of(
        curve_rows("random", 0, n, [0.4, 0.5, 0.6], train_s=1.0, select_s=0.2),
        curve_rows("random", 1, n, [0.6, 0.7, 0.8], train_s=3.0, select_s=0.4),  # mean 0.5 0.6 0.7
        curve_rows("a", 0, n, [0.5, 0.7, 0.8]),
        curve_rows("a", 1, n, [0.5, 0.7, 0.8]),
        curve_rows("a", 2, n[:2], [0.5, 0.7]),  # unfinished: counts per checkpoint, not in AUBC
    )
    out = summary_table(frame)
    assert len(out) == 6  # 2 strategies x 3 checkpoints
    a20 = out[(out["strategy"] == "a") & (out["n_labeled"] == 20)].iloc[0]
    assert a20["acc_mean"] == pytest.approx(0.7) and a20["acc_std"] == pytest.approx(0.0)
    assert a20["n_seeds"] == 3
    a30 = out[(out["strategy"] == "a") & (out["n_labeled"] == 30)].iloc[0]
    assert a30["n_seeds"] == 2
    assert a20["aubc_seeds"] == 2
    assert a20["aubc_mean"] == pytest.approx(aubc(n, [0.5, 0.7, 0.8]))
    assert a20["labels_to_reach"] == 20 and a20["saving"] == pytest.approx(1 - 20 / 30)
    r = out[out["strategy"] == "random"].iloc[0]
    assert r["acc_mean"] == pytest.approx(0.5) and r["acc_std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert r["aubc_mean"] == pytest.approx(0.6) and r["aubc_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert r["target_acc"] == pytest.approx(0.7) and r["saving"] == pytest.approx(0.0)
    assert r["train_s_mean"] == pytest.approx(2.0) and r["select_s_mean"] == pytest.approx(0.3)


def test_mean_curves_and_seed_aubc_shapes():
    n = [10, 20]
    frame = frame_of(curve_rows("a", 0, n, [0.2, 0.4]), curve_rows("a", 1, n[:1], [0.4]))
    curves = mean_curves(frame)
    assert curves["n_seeds"].tolist() == [2, 1]
    assert curves["mean"].tolist() == pytest.approx([0.3, 0.4])
    assert np.isnan(curves["std"].iloc[1])  # one seed: no spread
    areas = seed_aubc(frame)
    assert areas["seed"].tolist() == [0] and areas["aubc"].iloc[0] == pytest.approx(0.3)
