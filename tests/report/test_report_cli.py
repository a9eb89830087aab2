"""Aggregation of run files, table rendering and ``python -m al_bench.report`` end to end on a fake sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from al_bench.errors import ALBenchError
from al_bench.report.__main__ import main
from al_bench.report.aggregate import load_curves, load_status
from al_bench.report.metrics import penalty_matrix, summary_table
from al_bench.report.tables import format_mean_std, latex_escape, to_latex, to_markdown

ROOT = Path(__file__).resolve().parents[2]
REPORT_FILES = [
    "summary.md", "summary.csv", "summary.tex", "learning_curves.png", "diff_to_random.png",
    "aubc_ranking.png", "time_per_cycle.png", "aubc.csv", "ranks.csv", "penalty_matrix.csv",
    "penalty_matrix.png", "status.csv", "index.html",
]  # fmt: skip


def write_run(
    root: Path,
    strategy: str,
    seed: int,
    acc: list[float],
    status: dict | None = None,
    dataset: str = "digits",
    budget: str = "digits",
) -> Path:
    """One run directory as the loop writes it: curve.csv (+ status.json when given)."""
    run_dir = root / dataset / "mlp" / strategy / f"seed={seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    k = len(acc)
    pd.DataFrame(
        {
            "dataset": dataset,
            "model": "mlp",
            "strategy": strategy,
            "seed": seed,
            "cycle": range(k),
            "n_labeled": [20 + 10 * c for c in range(k)],
            "test_acc": acc,
            "test_loss": [1.0] * k,
            "val_acc": [np.nan] * k,
            "train_s": [2.0] * k,
            "select_s": [0.1] * k,
            "budget": budget,
        }  # fmt: skip
    ).to_csv(run_dir / "curve.csv", index=False)
    if status is not None:
        (run_dir / "status.json").write_text(json.dumps(status))
    return run_dir


def fake_sweep(root: Path) -> Path:
    """2 strategies x 3 seeds, 4 cycles; entropy clearly better; entropy seed 2 failed after 2 cycles."""
    rng = np.random.default_rng(0)
    for seed in range(3):
        start = 0.5 + 0.01 * seed
        random_acc = [start, *(start + 0.05 * c + rng.normal(0, 0.001) for c in (1, 2, 3))]
        entropy_acc = [start, *(start + 0.1 * c + rng.normal(0, 0.001) for c in (1, 2, 3))]
        done = {"state": "finished", "message": "", "cycles_done": 4, "cycles_total": 4}
        write_run(root, "random", seed, random_acc, status=done if seed else None)  # seed 0: an old run
        if seed == 2:
            failed = {"state": "failed", "message": "CUDA out of memory", "cycles_done": 2, "cycles_total": 4}
            write_run(root, "entropy", seed, entropy_acc[:2], status=failed)
        else:
            write_run(root, "entropy", seed, entropy_acc, status=done)
    return root


# ---------------------------------------------------------------- aggregation


def test_load_curves_concatenates_and_skips_the_report_dir(tmp_path):
    fake_sweep(tmp_path)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "curve.csv").write_text("garbage\n")  # would fail validation if read
    frame = load_curves(tmp_path)
    assert len(frame) == 3 * 4 + 2 * 4 + 2
    assert frame["run_dir"].nunique() == 6
    assert frame["seed"].dtype == np.int64 and frame["n_labeled"].dtype == np.int64
    assert {"test_loss", "val_acc", "train_s", "select_s", "budget"} <= set(frame.columns)


def test_load_curves_fills_optional_columns(tmp_path):
    run_dir = write_run(tmp_path, "random", 0, [0.5, 0.6])
    frame = pd.read_csv(run_dir / "curve.csv").drop(columns=["train_s", "select_s", "val_acc", "test_loss"])
    frame.to_csv(run_dir / "curve.csv", index=False)
    loaded = load_curves(tmp_path)
    assert loaded["train_s"].isna().all() and len(loaded) == 2


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.drop(columns=["test_acc"]), "missing column"),
        (lambda f: f.assign(test_acc=["x", "0.5"]), "non-numeric"),
        (lambda f: f.assign(cycle=[0, 0]), "same cycle"),
        (lambda f: f.assign(n_labeled=[10.5, 20]), "integers"),
        (lambda f: f.assign(strategy=["a", "b"]), "more than one run"),
    ],
)
def test_load_curves_names_a_malformed_file(tmp_path, mutate, message):
    run_dir = write_run(tmp_path, "random", 0, [0.5, 0.6])
    mutate(pd.read_csv(run_dir / "curve.csv")).to_csv(run_dir / "curve.csv", index=False)
    with pytest.raises(ALBenchError, match=message) as err:
        load_curves(tmp_path)
    assert str(run_dir / "curve.csv") in str(err.value)


def test_load_curves_errors(tmp_path):
    with pytest.raises(ALBenchError, match="does not exist"):
        load_curves(tmp_path / "nope")
    with pytest.raises(ALBenchError, match="no curve.csv"):
        load_curves(tmp_path)
    write_run(tmp_path / "sweep1", "random", 0, [0.5])
    write_run(tmp_path / "sweep2", "random", 0, [0.5])
    with pytest.raises(ALBenchError, match="same run"):
        load_curves(tmp_path)
    empty = write_run(tmp_path / "x", "random", 0, [0.5]) / "curve.csv"
    empty.write_text("")
    with pytest.raises(ALBenchError, match="empty file"):
        load_curves(tmp_path / "x")
    header_only = write_run(tmp_path / "y", "random", 0, []) / "curve.csv"
    assert header_only.read_text().startswith("dataset,")
    with pytest.raises(ALBenchError, match="no rows"):
        load_curves(tmp_path / "y")


def test_load_status_states(tmp_path):
    fake_sweep(tmp_path)
    crashed = tmp_path / "digits" / "mlp" / "badge" / "seed=0"  # failed before its first curve row
    crashed.mkdir(parents=True)
    (crashed / "status.json").write_text(json.dumps({"state": "failed", "message": "boom\nline 2"}))
    (crashed / "config.yaml").write_text("budget:\n  name: digits\n")
    status = load_status(tmp_path).set_index(["strategy", "seed"])
    assert len(status) == 7
    assert status.loc[("entropy", 2), "state"] == "failed"
    assert status.loc[("entropy", 2), "message"] == "CUDA out of memory"
    assert status.loc[("entropy", 2), "cycles_done"] == 2
    assert status.loc[("random", 0), "state"] == "finished" and not status.loc[("random", 0), "has_status"]
    badge = status.loc[("badge", 0)]
    assert badge["state"] == "failed" and badge["message"] == "boom line 2"  # one line
    assert badge["dataset"] == "digits" and badge["budget"] == "digits"


# ---------------------------------------------------------------- tables


def test_format_mean_std():
    assert format_mean_std(85.31, 0.64) == "85.3 ± 0.6"
    assert format_mean_std(85.31, float("nan")) == "85.3"
    assert format_mean_std(float("nan"), 1.0) == "–"
    assert latex_escape("a_b & 5% ± 1") == "a\\_b \\& 5\\% $\\pm$ 1"


def test_markdown_and_latex_tables(tmp_path):
    summary = summary_table(load_curves(fake_sweep(tmp_path)))
    markdown = to_markdown(summary)
    assert "### digits / mlp / digits" in markdown
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(lines) == 4  # header, rule, 2 strategies
    assert len({line.count("|") for line in lines}) == 1  # every row has the same number of cells
    entropy = next(line for line in lines if line.startswith("| entropy"))
    assert "**" in entropy and " ± " in entropy  # the better strategy is bold
    assert "| 51.0 ± 1.0 |" in entropy  # shared initial set (50, 51, 52 %): no bold where all tie
    latex = to_latex(summary)
    assert latex.count("\\begin{tabular}") == 1 and "\\toprule" in latex and "\\bottomrule" in latex
    assert "$\\pm$" in latex and "±" not in latex
    thin = to_markdown(summary, max_checkpoints=2)
    assert "n=20" in thin and "n=50" in thin and "n=30" not in thin


# ---------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "al_bench.report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_end_to_end(tmp_path):
    results = fake_sweep(tmp_path / "results")
    proc = run_cli(str(results))
    assert proc.returncode == 0, proc.stderr
    out = results / "report"
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
        assert name in proc.stdout
    assert not list(out.glob(".*.tmp"))  # atomic writes left no temp file
    summary_md = (out / "summary.md").read_text()
    runs_not_finished = summary_md.split("## Runs not finished")[1]
    assert "entropy/seed=2" in runs_not_finished and "CUDA out of memory" in runs_not_finished
    matrix = pd.read_csv(out / "penalty_matrix.csv", index_col=0)
    assert matrix.loc["entropy", "random"] == pytest.approx(3 / 4)  # wins at 3 of 4 checkpoints
    assert matrix.loc["random", "entropy"] == 0.0
    assert "beaten (column mean)" in matrix.index
    status = pd.read_csv(out / "status.csv")
    assert (status["state"] == "failed").sum() == 1
    assert len(pd.read_csv(out / "summary.csv")) == 2 * 4
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    # two strategies: no Friedman test, so no critical-difference diagram, and the summary says why
    assert not (out / "critical_difference.png").exists() and "needs >= 3 strategies" in summary_md
    # reading the results again (the report dir, now full, is skipped) gives the same matrix
    again, again_means = penalty_matrix(load_curves(results))
    pd.testing.assert_frame_equal(matrix.iloc[:-1], again, check_names=False)
    assert matrix.iloc[-1].to_numpy() == pytest.approx(again_means.to_numpy())


def test_cli_empty_dir_is_one_clear_line(tmp_path):
    proc = run_cli(str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no curve.csv" in proc.stderr and proc.stdout == ""


def test_cli_missing_or_malformed_dir_in_process(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    run_dir = write_run(tmp_path, "random", 0, [0.5, 0.6])
    (run_dir / "curve.csv").write_text("dataset,model\ndigits,mlp\n")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "curve.csv" in err and "missing column" in err


def test_penalty_matrix_of_the_fake_sweep_pairs_by_seed(tmp_path):
    frame = load_curves(fake_sweep(tmp_path))
    matrix, col_means = penalty_matrix(frame)
    # checkpoints 20 (tie), 30 (3 seeds), 40 and 50 (2 common seeds: entropy seed 2 failed)
    assert matrix.loc["entropy", "random"] == pytest.approx(3 / 4)
    assert col_means["random"] == pytest.approx(3 / 8)


def test_out_above_the_results_dir_hides_nothing(tmp_path):
    """`--out results/digits` over `results/digits/runs` (as `make suite-digits` does) finds every run."""
    from al_bench.report.aggregate import load_curves

    runs = tmp_path / "suite" / "runs"
    write_run(runs, "random", 0, [0.5, 0.6])
    assert len(load_curves(runs, exclude=[tmp_path / "suite"])) == 2
