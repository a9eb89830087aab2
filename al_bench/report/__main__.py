"""``python -m al_bench.report RESULTS_DIR [--out DIR]``: tables, curves and penalty matrix of a sweep.

Writes into ``--out`` (default ``RESULTS_DIR/report/``), each file atomically:
summary.md, summary.csv, summary.tex, learning_curves.png, penalty_matrix.csv, penalty_matrix.png, status.csv.
``--count-validation`` adds the validation labels each run read (curve.csv's ``n_val``) to ``n_labeled`` for
every budget-indexed quantity; summary.md always says how many validation labels the runs read.
A user mistake (missing or empty directory, malformed curve.csv) prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from al_bench.errors import ALBenchError
from al_bench.report.aggregate import REPORT_DIRNAME, SETTING_KEYS, load_curves, load_status
from al_bench.report.metrics import BASELINE, count_validation_labels, penalty_matrix, summary_table
from al_bench.report.tables import Block, penalty_block, render_markdown, to_latex, to_markdown

DEFINITIONS = """\
- Accuracy cells: test accuracy (%) at that number of labeled samples, mean ± std (ddof 1) over the seeds
  that reached it; the best mean of a column is in bold. Wide curves show evenly spaced checkpoints,
  summary.csv has them all.
- AUBC: area under the budget curve (trapezoid rule) divided by the budget range, i.e. the mean accuracy
  over the budget axis; mean ± std over the runs whose curve covers every checkpoint of the setting.
- Labels to reach: first checkpoint where the strategy's mean curve reaches {baseline}'s mean accuracy at its
  final checkpoint (no interpolation). Saving = 1 - labels / labels {baseline} needs itself.
- Train / select s per cycle: mean wall-clock seconds over all cycles and seeds.
- Penalty matrix (Ash et al. 2020, BADGE): P[i, j] = sum over settings of the fraction of checkpoints at which
  row i beats column j in a paired two-sided t-test over at most {max_seeds} seeds (p < {alpha}, mean
  difference > 0). Column mean = how often a strategy is beaten: lower is better."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m al_bench.report",
        description="Summarise the runs under RESULTS_DIR: tables, learning curves, BADGE penalty matrix.",
    )
    parser.add_argument("results_dir", type=Path, help="a run or sweep directory (searched for **/curve.csv)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: RESULTS_DIR/report)"
    )
    parser.add_argument("--baseline", default=BASELINE, help="strategy that savings are measured against")
    parser.add_argument(
        "--max-seeds", type=int, default=5, help="seeds per paired t-test in the penalty matrix"
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the penalty matrix")
    parser.add_argument("--max-checkpoints", type=int, default=8, help="accuracy columns per table (>= 2)")
    parser.add_argument(
        "--count-validation",
        action="store_true",
        help="count the validation labels each run read (n_val) as labels: n_labeled + n_val everywhere",
    )
    return parser


def write_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    baseline: str = BASELINE,
    max_seeds: int = 5,
    alpha: float = 0.05,
    max_checkpoints: int = 8,
    count_validation: bool = False,
) -> dict[str, Path]:
    """Compute every summary of ``results_dir`` and write the report files; returns {file name: path}.

    ``count_validation``: budgets count the validation labels each run read (``n_labeled + n_val``).
    """
    root = Path(results_dir).expanduser().resolve()
    out = (root / REPORT_DIRNAME if out_dir is None else Path(out_dir)).expanduser().resolve()
    if max_checkpoints < 2:
        raise ALBenchError("--max-checkpoints must be at least 2 (the first and the last checkpoint)")
    if max_seeds < 2:
        raise ALBenchError("--max-seeds must be at least 2 (a t-test needs two paired seeds)")
    curves = load_curves(root, exclude=[out])
    if count_validation:
        curves = count_validation_labels(curves)
    # imported here so that a user error above is reported at once: these pull in matplotlib and torch
    from al_bench.report.plots import plot_learning_curves, plot_penalty_matrix
    from al_bench.results import atomic_write_text

    status = load_status(root, exclude=[out])
    status["run_dir"] = [_relative(p, root) for p in status["run_dir"]]
    summary = summary_table(curves, baseline=baseline)
    matrix, col_means = penalty_matrix(curves, max_seeds=max_seeds, alpha=alpha)

    written: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        atomic_write_text(out / name, content)
        written[name] = out / name

    text("summary.csv", summary.to_csv(index=False))
    text("summary.tex", to_latex(summary, max_checkpoints))
    written["learning_curves.png"] = plot_learning_curves(curves, out / "learning_curves.png")
    with_means = pd.concat([matrix, col_means.to_frame().T])
    text("penalty_matrix.csv", with_means.rename_axis("winner \\ loser").to_csv())
    written["penalty_matrix.png"] = plot_penalty_matrix(matrix, col_means, out / "penalty_matrix.png")
    text("status.csv", status.to_csv(index=False))
    settings = {
        "baseline": baseline,
        "max_seeds": max_seeds,
        "alpha": alpha,
        "max_checkpoints": max_checkpoints,
        "count_validation": count_validation,
    }
    text("summary.md", _summary_markdown(root, curves, summary, matrix, col_means, status, **settings))
    return written


def _summary_markdown(
    root: Path,
    curves: pd.DataFrame,
    summary: pd.DataFrame,
    matrix: pd.DataFrame,
    col_means: pd.Series,
    status: pd.DataFrame,
    baseline: str,
    max_seeds: int,
    alpha: float,
    max_checkpoints: int,
    count_validation: bool,
) -> str:
    n_runs = curves["run_dir"].nunique()
    n_settings = curves[list(SETTING_KEYS)].drop_duplicates().shape[0]
    strategies = ", ".join(sorted(curves["strategy"].unique()))
    unfinished = status[status["state"] != "finished"]
    no_baseline = not (curves["strategy"] == baseline).any()
    notes = [f"No `{baseline}` runs: labels-to-reach and savings are left empty.", ""] if no_baseline else []
    lines = [
        "# Active-learning report",
        "",
        f"Source: `{_relative(str(root), Path.cwd().resolve())}`: {n_runs} runs with a curve, "
        f"{n_settings} setting(s) (dataset / model / budget), "
        f"strategies: {strategies}. {len(unfinished)} run(s) not finished.",
        "",
        validation_note(curves, count_validation),
        "",
        "## Learning curves",
        "",
        "![learning curves](learning_curves.png)",
        "",
        "## Results per setting",
        "",
        *notes,
        to_markdown(summary, max_checkpoints).rstrip(),
        "",
        "## Pairwise penalty matrix",
        "",
        f"Rows beat columns; an entry is at most the number of settings ({matrix.attrs.get('n_settings')}).",
        "",
        render_markdown(penalty_block(matrix, col_means)),
        "",
        "![penalty matrix](penalty_matrix.png)",
        "",
        "## Runs not finished",
        "",
        _unfinished_markdown(unfinished, len(status)),
        "",
        "## Definitions",
        "",
        DEFINITIONS.format(baseline=baseline, max_seeds=max_seeds, alpha=alpha),
        "",
    ]
    return "\n".join(lines)


def validation_note(curves: pd.DataFrame, counted: bool) -> str:
    """One paragraph: how many validation labels the runs read (``n_val``) and whether budgets count them."""
    n_val = curves["n_val"] if "n_val" in curves.columns else pd.Series(0, index=curves.index)
    if not (n_val > 0).any():
        return "Validation labels: the runs read none (n_val = 0 in every curve)."
    per_setting = (
        curves.assign(n_val=n_val).groupby(list(SETTING_KEYS), sort=True)["n_val"].agg(["min", "max"])
    )
    parts = []
    for setting, row in per_setting.iterrows():
        amount = f"{row['max']}" if row["min"] == row["max"] else f"{row['min']}-{row['max']}"
        parts.append(f"{' / '.join(str(s) for s in setting)}: {amount}")
    how = (
        "every budget below COUNTS them (--count-validation: n_labeled + n_val)"
        if counted
        else "budgets below count the pool labels only (pass --count-validation to count them too)"
    )
    return f"Validation labels read by the runs (n_val): {'; '.join(parts)}. They are labels: {how}."


def _unfinished_markdown(unfinished: pd.DataFrame, n_runs: int) -> str:
    if unfinished.empty:
        return f"All {n_runs} runs finished."
    block = Block(title="Runs not finished", header=["Run", "State", "Cycles done", "Message"], align="llrl")
    for _, row in unfinished.iterrows():
        done = "?" if pd.isna(row["cycles_done"]) else str(row["cycles_done"])
        total = "?" if pd.isna(row["cycles_total"]) else str(row["cycles_total"])
        block.rows.append([f"`{row['run_dir']}`", str(row["state"]), f"{done}/{total}", str(row["message"])])
        block.bold.append([False] * 4)
    return render_markdown(block)


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = write_report(
            args.results_dir,
            args.out,
            baseline=args.baseline,
            max_seeds=args.max_seeds,
            alpha=args.alpha,
            max_checkpoints=args.max_checkpoints,
            count_validation=args.count_validation,
        )
    except ALBenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot write the report: {err}", file=sys.stderr)
        return 2
    width = max(len(name) for name in written)
    for name, path in written.items():
        print(f"{name:<{width}}  ->  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
