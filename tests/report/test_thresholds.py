"""Per-seed "labels to X" and its quartiles (DBAL / BatchBALD tables), accuracy at fixed budgets, and
validation labels counted as labels: hand-made curves with answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from al_bench.report.__main__ import main
from al_bench.report.aggregate import load_curves
from al_bench.report.metrics import (
    accuracy_at_budgets,
    aubc,
    count_validation_labels,
    labels_to_reach_per_seed,
    quantiles_with_inf,
    summary_table,
    threshold_quartiles,
)
from tests.report.test_metrics import curve_rows, frame_of
from tests.report.test_report_cli import write_run

INF = float("inf")
BUDGETS = [20, 30, 40, 50]


def four_seeds() -> pd.DataFrame:
    """bald: its seeds reach 0.9 at 30, 40, 50 and never; random never reaches 0.9."""
    return frame_of(
        curve_rows("bald", 0, BUDGETS, [0.5, 0.9, 0.95, 0.96]),  # 0.9 exactly counts (>=)
        curve_rows("bald", 1, BUDGETS, [0.5, 0.8, 0.91, 0.85]),  # reached at 40 even though it falls later
        curve_rows("bald", 2, BUDGETS, [0.5, 0.6, 0.7, 0.92]),
        curve_rows("bald", 3, BUDGETS, [0.5, 0.6, 0.7, 0.8]),
        curve_rows("random", 0, BUDGETS, [0.5, 0.6, 0.7, 0.8]),
    )


def test_labels_to_reach_per_seed_counts_the_initial_set_and_inf_when_never():
    per_seed = labels_to_reach_per_seed(four_seeds(), 0.9)
    bald = per_seed[per_seed["strategy"] == "bald"].set_index("seed")["labels"]
    assert bald.to_dict() == {0: 30.0, 1: 40.0, 2: 50.0, 3: INF}
    assert per_seed.loc[per_seed["strategy"] == "random", "labels"].tolist() == [INF]
    assert set(per_seed["max_labeled"]) == {50.0}
    # the first cycle by budget, whatever the row order of the frame
    shuffled = four_seeds().sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(labels_to_reach_per_seed(shuffled, 0.9), per_seed)


def test_quantiles_with_inf_by_hand():
    # 3 seeds: positions 0.5, 1, 1.5 -> halfway, the middle, halfway
    assert quantiles_with_inf([70, 90, 110]) == [80.0, 90.0, 100.0]
    # 4 seeds [30, 40, 50, inf]: q25 at h = 0.75 -> 37.5; q50 at 1.5 -> 45; q75 at 2.25 needs inf -> inf
    assert quantiles_with_inf([50, INF, 30, 40]) == [37.5, 45.0, INF]
    # a quantile landing exactly on a finite order statistic stays finite next to inf: 5 seeds, q75 at h = 3
    assert quantiles_with_inf([10, 20, 30, 40, INF]) == [20.0, 30.0, 40.0]
    assert quantiles_with_inf([INF, INF]) == [INF, INF, INF]
    assert all(math.isnan(v) for v in quantiles_with_inf([]))
    with pytest.raises(ValueError, match="NaN"):
        quantiles_with_inf([1.0, float("nan")])


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_with_inf_equal_numpy_on_finite_values(seed):
    values = np.random.default_rng(seed).integers(2, 30, size=seed + 2) * 10.0
    qs = (0.1, 0.25, 0.5, 0.75, 0.9)
    assert quantiles_with_inf(values, qs) == pytest.approx(list(np.quantile(values, qs)))


def test_threshold_quartiles_table():
    table = threshold_quartiles(four_seeds(), [0.9, 0.95])
    row = table[(table["strategy"] == "bald") & (table["target"] == 0.9)].iloc[0]
    assert (row["n_seeds"], row["n_reached"], row["max_labeled"]) == (4, 3, 50.0)
    assert (row["q25"], row["q50"], row["q75"]) == (37.5, 45.0, INF)
    row = table[(table["strategy"] == "bald") & (table["target"] == 0.95)].iloc[0]
    assert row["n_reached"] == 1 and row["q25"] == INF  # seeds: 40, inf, inf, inf
    row = table[(table["strategy"] == "random") & (table["target"] == 0.9)].iloc[0]
    assert (row["n_seeds"], row["n_reached"], row["q50"]) == (1, 0, INF)
    assert list(table.columns) == [
        "dataset", "model", "budget", "strategy", "target", "n_seeds", "n_reached", "q25", "q50", "q75",
        "max_labeled",
    ]  # fmt: skip


def test_threshold_quartiles_keep_settings_apart():
    frame = frame_of(
        curve_rows("bald", 0, BUDGETS, [0.5, 0.9, 0.9, 0.9], budget="mnist"),
        curve_rows("bald", 0, BUDGETS, [0.5, 0.6, 0.6, 0.9], budget="rmnist"),
    )
    table = threshold_quartiles(frame, [0.9]).set_index("budget")
    assert table.loc["mnist", "q50"] == 30.0 and table.loc["rmnist", "q50"] == 50.0


def test_accuracy_at_budgets_median_over_seeds():
    acc = accuracy_at_budgets(four_seeds(), [20, 40, 60], stat="median")
    bald = acc[acc["strategy"] == "bald"].set_index("n_labeled")
    assert bald.loc[20, "value"] == 0.5 and bald.loc[20, "n_seeds"] == 4
    assert bald.loc[40, "value"] == pytest.approx(np.median([0.95, 0.91, 0.7, 0.7]))
    assert math.isnan(bald.loc[60, "value"]) and bald.loc[60, "n_seeds"] == 0


# ---------------------------------------------------------------- validation labels are labels


def test_count_validation_labels_shifts_every_budget_quantity():
    frame = four_seeds().assign(n_val=100)
    counted = count_validation_labels(frame)
    assert counted["n_labeled"].tolist() == [n + 100 for n in frame["n_labeled"]]
    assert counted["n_labeled_pool"].tolist() == frame["n_labeled"].tolist()
    assert frame["n_labeled"].min() == 20, "the input frame is not modified"
    per_seed = labels_to_reach_per_seed(counted, 0.9)
    assert per_seed.loc[per_seed["strategy"] == "bald", "labels"].tolist() == [130.0, 140.0, 150.0, INF]
    summary = summary_table(counted)
    assert summary["n_labeled"].min() == 120
    # AUBC is normalised by the budget range, so a uniform shift leaves it unchanged
    run = counted[(counted["strategy"] == "bald") & (counted["seed"] == 0)]
    assert aubc(run["n_labeled"], run["test_acc"]) == pytest.approx(aubc(BUDGETS, [0.5, 0.9, 0.95, 0.96]))
    assert count_validation_labels(four_seeds())["n_labeled"].min() == 20  # no n_val column: 0


def test_old_curves_without_n_val_load_as_zero(tmp_path):
    write_run(tmp_path, "random", 0, [0.5, 0.6])  # the columns an older loop wrote: no n_val
    run = write_run(tmp_path, "entropy", 0, [0.5, 0.7])
    curve = pd.read_csv(run / "curve.csv").assign(n_val=[100, 100])
    curve.to_csv(run / "curve.csv", index=False)
    frame = load_curves(tmp_path)
    assert frame["n_val"].dtype == np.int64
    assert frame.groupby("strategy")["n_val"].max().to_dict() == {"entropy": 100, "random": 0}


def test_report_states_validation_labels_and_counts_them_on_request(tmp_path):
    results = tmp_path / "results"
    for strategy, acc in (("random", [0.5, 0.6, 0.7]), ("entropy", [0.5, 0.7, 0.8])):
        run = write_run(results, strategy, 0, acc)
        pd.read_csv(run / "curve.csv").assign(n_val=100).to_csv(run / "curve.csv", index=False)
    assert main([str(results), "--out", str(tmp_path / "plain")]) == 0
    plain = (tmp_path / "plain" / "summary.md").read_text()
    assert "Validation labels read by the runs (n_val): digits / mlp / digits: 100" in plain
    assert "pass --count-validation" in plain
    assert pd.read_csv(tmp_path / "plain" / "summary.csv")["n_labeled"].min() == 20

    assert main([str(results), "--out", str(tmp_path / "counted"), "--count-validation"]) == 0
    counted = (tmp_path / "counted" / "summary.md").read_text()
    assert "COUNTS them" in counted and "n=120" in counted
    assert sorted(pd.read_csv(tmp_path / "counted" / "summary.csv")["n_labeled"].unique()) == [120, 130, 140]


def test_report_says_when_no_validation_labels_were_read(tmp_path):
    write_run(tmp_path / "results", "random", 0, [0.5, 0.6])
    assert main([str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert "the runs read none (n_val = 0 in every curve)" in (tmp_path / "out" / "summary.md").read_text()
