"""``python -m al_bench.report RESULTS_DIR [--out DIR] [--metric COL] [--open | --status]``: a sweep's report.

Writes into ``--out`` (default ``RESULTS_DIR/report/``), each file atomically: summary.md, summary.csv,
summary.tex, learning_curves.png (small multiples by strategy family), diff_to_random.png, aubc_ranking.png,
critical_difference.png (when the Friedman test applies), time_per_cycle.png, aubc.csv, ranks.csv,
penalty_matrix.csv, penalty_matrix.png, status.csv and index.html (one self-contained page, ``--open`` opens
it).
``--status`` writes nothing: one line per run with its state, finished cycles / total and message.
``--count-validation`` adds the validation labels each run read (curve.csv's ``n_val``) to ``n_labeled`` for
every budget-indexed quantity; summary.md always says how many validation labels the runs read.
A user mistake (missing or empty directory, malformed curve.csv, unknown metric) prints one line and exits
with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path

from al_bench.errors import ALBenchError
from al_bench.report.metrics import BASELINE
from al_bench.report.writer import write_report

__all__ = ["build_parser", "main", "open_in_browser", "write_report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m al_bench.report",
        description="Summarise the runs under RESULTS_DIR: figures, ranks and tests, tables, one HTML page.",
    )
    parser.add_argument("results_dir", type=Path, help="a run or sweep directory (searched for **/curve.csv)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: RESULTS_DIR/report)"
    )
    parser.add_argument("--baseline", default=BASELINE, help="strategy that savings are measured against")
    parser.add_argument(
        "--metric",
        default="test_acc",
        help="curve.csv column to plot and rank by, higher is better (test_acc, balanced_acc, macro_f1, ...)",
    )
    parser.add_argument(
        "--max-seeds", type=int, default=5, help="seeds per paired t-test in the penalty matrix"
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of every test")
    parser.add_argument("--max-checkpoints", type=int, default=8, help="accuracy columns per table (>= 2)")
    parser.add_argument(
        "--count-validation",
        action="store_true",
        help="count the validation labels each run read (n_val) as labels: n_labeled + n_val everywhere",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--open", action="store_true", help="open index.html in a web browser when written")
    action.add_argument(
        "--status",
        action="store_true",
        help="only list the runs: state, finished cycles / total, message (writes nothing)",
    )
    return parser


def open_in_browser(path: Path) -> str:
    """Open ``path`` in the default web browser; returns the line to print (also when there is no display)."""
    uri = path.resolve().as_uri()
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if headless or not webbrowser.open(uri):
        return f"no display or web browser here: open {uri} on a machine with one"
    return f"opened {uri}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.status:
            from al_bench.report.status import status_lines

            print("\n".join(status_lines(args.results_dir)))
            return 0
        written = write_report(
            args.results_dir,
            args.out,
            baseline=args.baseline,
            max_seeds=args.max_seeds,
            alpha=args.alpha,
            max_checkpoints=args.max_checkpoints,
            count_validation=args.count_validation,
            metric=args.metric,
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
    if args.open:
        print(open_in_browser(written["index.html"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
