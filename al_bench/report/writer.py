"""Compute every part of a report once (:class:`ReportData`) and write its files, each atomically.

Files in the output directory: summary.md, summary.csv, summary.tex, learning_curves.png, diff_to_random.png,
aubc_ranking.png, critical_difference.png (when the rank test applies), time_per_cycle.png, aubc.csv,
ranks.csv, penalty_matrix.csv, penalty_matrix.png, status.csv and index.html (everything on one page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from al_bench.errors import ALBenchError
from al_bench.report.aggregate import REPORT_DIRNAME, load_curves, load_status
from al_bench.report.metrics import (
    BASELINE,
    accuracy_scale,
    count_validation_labels,
    penalty_matrix,
    select_metric,
    summary_table,
)
from al_bench.report.protocol import Protocol, protocols
from al_bench.report.stats import RankTest, claims, diff_to_random, rank_test, setting_aubc

CD_FILE = "critical_difference.png"


@dataclass
class ReportOptions:
    """The knobs of a report (the CLI flags); see ``python -m al_bench.report --help``."""

    baseline: str = BASELINE
    max_seeds: int = 5
    alpha: float = 0.05
    max_checkpoints: int = 8
    count_validation: bool = False
    metric: str = "test_acc"
    level: float = 0.95
    n_boot: int = 2000
    bootstrap_seed: int = 0


@dataclass
class ReportData:
    """Everything a report shows, computed from the runs under ``root`` (status.run_dir relative to it)."""

    root: Path
    out: Path
    options: ReportOptions
    curves: pd.DataFrame
    status: pd.DataFrame
    summary: pd.DataFrame
    matrix: pd.DataFrame
    col_means: pd.Series
    aubc: pd.DataFrame
    test: RankTest
    diff: pd.DataFrame
    claims: list[str]
    protocols: list[Protocol]
    scale: float
    #: figure file name -> (title, caption), in page order; filled by :func:`write_figures`
    figures: dict[str, tuple[str, str]] = field(default_factory=dict)


def compute_report(root: Path, out: Path, options: ReportOptions) -> ReportData:
    """Load the runs under ``root`` (skipping ``out``) and compute tables and statistics; no file is written.

    Raises ALBenchError for a user mistake (bad option, missing or empty directory, malformed curve, a metric
    the curves do not have).
    """
    if options.max_checkpoints < 2:
        raise ALBenchError("--max-checkpoints must be at least 2 (the first and the last checkpoint)")
    if options.max_seeds < 2:
        raise ALBenchError("--max-seeds must be at least 2 (a t-test needs two paired seeds)")
    if not 0.0 < options.alpha < 1.0:
        raise ALBenchError("--alpha must lie strictly between 0 and 1, e.g. 0.05")
    curves = load_curves(root, exclude=[out])
    curves = select_metric(curves, options.metric)
    if options.count_validation:
        curves = count_validation_labels(curves)
    status = load_status(root, exclude=[out])
    status["run_dir"] = [relative(p, root) for p in status["run_dir"]]
    metric, baseline = options.metric, options.baseline
    summary = summary_table(curves, baseline=baseline, metric=metric)
    matrix, col_means = penalty_matrix(
        curves, max_seeds=options.max_seeds, alpha=options.alpha, metric=metric
    )
    rng = np.random.default_rng(options.bootstrap_seed)
    aubc = setting_aubc(curves, metric, baseline, rng=rng, n_boot=options.n_boot, level=options.level)
    test = rank_test(curves, metric, options.alpha)
    return ReportData(
        root=root,
        out=out,
        options=options,
        curves=curves,
        status=status,
        summary=summary,
        matrix=matrix,
        col_means=col_means,
        aubc=aubc,
        test=test,
        diff=diff_to_random(curves, metric, baseline, options.level),
        claims=claims(aubc, test, metric, baseline),
        protocols=protocols(curves),
        scale=accuracy_scale(curves[metric]),
    )


def write_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    baseline: str = BASELINE,
    max_seeds: int = 5,
    alpha: float = 0.05,
    max_checkpoints: int = 8,
    count_validation: bool = False,
    metric: str = "test_acc",
) -> dict[str, Path]:
    """Compute every summary of ``results_dir`` and write the report files; returns {file name: path}.

    ``count_validation``: budgets count the validation labels each run read (``n_labeled + n_val``).
    ``metric``: the curve column that curves, AUBC, ranks and tables use (higher is better).
    """
    root = Path(results_dir).expanduser().resolve()
    out = (root / REPORT_DIRNAME if out_dir is None else Path(out_dir)).expanduser().resolve()
    options = ReportOptions(
        baseline=baseline,
        max_seeds=max_seeds,
        alpha=alpha,
        max_checkpoints=max_checkpoints,
        count_validation=count_validation,
        metric=metric,
    )
    data = compute_report(root, out, options)
    # imported here so that a user error above is reported at once: these pull in matplotlib
    from al_bench.report.html import report_page
    from al_bench.report.markdown import summary_markdown
    from al_bench.report.tables import to_latex
    from al_bench.results import atomic_write_text

    written: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        atomic_write_text(out / name, content)
        written[name] = out / name

    text("summary.csv", data.summary.to_csv(index=False))
    text("summary.tex", to_latex(data.summary, max_checkpoints, metric))
    written |= write_figures(data)
    text("aubc.csv", data.aubc.to_csv(index=False))
    text("ranks.csv", ranks_frame(data.test).to_csv(index=False))
    with_means = pd.concat([data.matrix, data.col_means.to_frame().T])
    text("penalty_matrix.csv", with_means.rename_axis("winner \\ loser").to_csv())
    text("status.csv", data.status.to_csv(index=False))
    text("summary.md", summary_markdown(data))
    text("index.html", report_page(data))
    return written


def write_figures(data: ReportData) -> dict[str, Path]:
    """Draw every figure into ``data.out``, record its title and caption in ``data.figures``; returns paths.

    A stale critical_difference.png of an earlier report is removed when the rank test does not apply.
    """
    from al_bench.report.plots import (
        plot_diff_to_random,
        plot_learning_curves,
        plot_penalty_matrix,
        plot_time_per_cycle,
    )
    from al_bench.report.rank_plots import plot_aubc_ranking, plot_critical_difference

    o, out, pct = data.options, data.out, round(100 * data.options.level)
    what = "test accuracy" if o.metric == "test_acc" else o.metric
    written = {
        "learning_curves.png": plot_learning_curves(
            data.curves, out / "learning_curves.png", o.metric, o.baseline
        ),
        "diff_to_random.png": plot_diff_to_random(
            data.diff, out / "diff_to_random.png", o.metric, o.baseline, o.level, scale=data.scale
        ),
        "aubc_ranking.png": plot_aubc_ranking(
            data.aubc, out / "aubc_ranking.png", o.metric, o.baseline, o.level, scale=data.scale
        ),
    }
    data.figures = {
        "learning_curves.png": (
            "Learning curves by strategy family",
            f"Mean ± std over seeds of {what}; one panel per strategy family (and setting); "
            f"{o.baseline} (black, dashed) is drawn in every panel.",
        ),
        "diff_to_random.png": (
            f"Difference to {o.baseline}",
            f"{what} minus {o.baseline}'s at each budget, paired by seed, with a {pct}% t-interval band; "
            f"grey: ± {o.baseline}'s seed std (a curve inside it is within {o.baseline}'s seed spread). "
            "The y range fits the curves; wider bands are clipped.",
        ),
        "aubc_ranking.png": (
            "AUBC ranking",
            f"Mean AUBC over seeds with a {pct}% bootstrap interval (resampling seeds), best at the top; "
            f"hollow dots differ from {o.baseline} by less than its seed std.",
        ),
    }
    if data.test.applicable:
        written[CD_FILE] = plot_critical_difference(data.test, out / CD_FILE)
        data.figures[CD_FILE] = (
            "Critical-difference diagram",
            f"Average ranks over {data.test.description}. Bars join strategies that the Nemenyi test cannot "
            f"tell apart at alpha = {o.alpha} (Demšar 2006).",
        )
    else:
        (out / CD_FILE).unlink(missing_ok=True)
    written["time_per_cycle.png"] = plot_time_per_cycle(data.curves, out / "time_per_cycle.png")
    data.figures["time_per_cycle.png"] = (
        "Time per cycle",
        "Mean wall-clock seconds per cycle over cycles and seeds: training (blue) + selection (orange).",
    )
    written["penalty_matrix.png"] = plot_penalty_matrix(
        data.matrix, data.col_means, out / "penalty_matrix.png"
    )
    data.figures["penalty_matrix.png"] = (
        "Pairwise penalty matrix",
        "P[i, j]: how often row i beats column j (BADGE, Ash et al. 2020); column mean: how often a strategy "
        "is beaten (lower is better).",
    )
    return written


def ranks_frame(test: RankTest) -> pd.DataFrame:
    """ranks.csv: one row per strategy of the rank test, best first, with the test's result on every row."""
    from al_bench.report.families import family_of

    return pd.DataFrame(
        {
            "strategy": test.avg_ranks.index,
            "family": [family_of(s) for s in test.avg_ranks.index],
            "average_rank": test.avg_ranks.to_numpy(),
            "n_blocks": test.n_blocks,
            "blocks": test.blocks,
            "friedman_chi2": test.statistic,
            "friedman_p": test.p_value,
            "nemenyi_cd": test.cd,
        }
    )


def relative(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string, or unchanged when it is not below it."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)
