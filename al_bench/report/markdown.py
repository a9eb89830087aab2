"""summary.md: the report as Markdown (claims, figure links, tables, runs not finished, definitions)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from al_bench.report.aggregate import SETTING_KEYS, setting_keys, setting_label
from al_bench.report.families import family_of
from al_bench.report.tables import (
    Block,
    aubc_blocks,
    penalty_block,
    rank_block,
    render_markdown,
    to_markdown,
)

if TYPE_CHECKING:
    from al_bench.report.writer import ReportData

DEFINITIONS = """\
- Setting: one (dataset, model, budget, scenario, variant); the variant lists the config overrides of a sweep
  (empty for the default configuration). Strategies are compared within a setting.
- Accuracy cells: {what} (%) at that number of labeled samples, mean ± std (ddof 1) over the seeds
  that reached it; the best mean of a column is in bold. Wide curves show evenly spaced checkpoints,
  summary.csv has them all.
- AUBC: area under the budget curve (trapezoid rule) divided by the budget range, i.e. the mean accuracy
  over the budget axis; mean ± std over the runs whose curve covers every checkpoint of the setting. Its
  {pct}% interval is a percentile bootstrap of the mean over those seeds ({n_boot} resamples, seed {seed}).
- Inside {baseline}'s seed std: |AUBC - {baseline}'s AUBC| <= the std of {baseline}'s AUBC over its seeds, a
  difference that a reseeded {baseline} run could show: not evidence.
- Difference to {baseline}: per budget, the mean over seeds of (strategy - {baseline}) paired by seed
  (same seed = same initial set), with a {pct}% t-interval over those pairs.
- Average rank: per block, rank 1 = highest AUBC (ties share the mean rank), averaged over blocks. Blocks are
  the settings (each strategy's mean AUBC) when there are two or more, else the seeds of the one setting.
  Friedman test on those ranks; Nemenyi post-hoc test and critical difference CD = q_alpha sqrt(k (k + 1) /
  (6 N)) (Demšar, JMLR 2006), alpha = {alpha}; scikit-posthocs computes the p-values and draws the diagram.
- Labels to reach: first checkpoint where the strategy's mean curve reaches {baseline}'s mean accuracy at its
  final checkpoint (no interpolation). Saving = 1 - labels / labels {baseline} needs itself.
- Train / select s per cycle: mean wall-clock seconds over all cycles and seeds.
- Penalty matrix (Ash et al. 2020, BADGE): P[i, j] = sum over settings of the fraction of checkpoints at which
  row i beats column j in a paired two-sided t-test over at most {max_seeds} seeds (p < {alpha}, mean
  difference > 0). Column mean = how often a strategy is beaten: lower is better."""


def definitions(data: ReportData) -> str:
    """The definitions paragraph filled with the report's options."""
    o = data.options
    return DEFINITIONS.format(
        baseline=o.baseline,
        max_seeds=o.max_seeds,
        alpha=o.alpha,
        pct=round(100 * o.level),
        n_boot=o.n_boot,
        seed=o.bootstrap_seed,
        what="test accuracy" if o.metric == "test_acc" else o.metric,
    )


def overview(data: ReportData) -> str:
    """One sentence: where the runs come from, how many runs, settings and strategies, how many unfinished."""
    curves = data.curves
    n_settings = curves[setting_keys(curves)].drop_duplicates().shape[0]
    strategies = ", ".join(sorted(curves["strategy"].unique()))
    unfinished = int((data.status["state"] != "finished").sum())
    source = relative_to_cwd(data.root)
    return (
        f"Source: `{source}`: {curves['run_dir'].nunique()} runs with a curve, {n_settings} setting(s) "
        f"({' / '.join(SETTING_KEYS)}), strategies: {strategies}. {unfinished} run(s) not finished. "
        f"Metric: {data.options.metric}."
    )


def summary_markdown(data: ReportData) -> str:
    """The whole summary.md."""
    o = data.options
    no_baseline = not (data.curves["strategy"] == o.baseline).any()
    notes = (
        [f"No `{o.baseline}` runs: labels-to-reach and savings are left empty.", ""] if no_baseline else []
    )
    figures = [
        f"![{title}]({name})" for name, (title, _) in data.figures.items() if name != "penalty_matrix.png"
    ]
    cd_note = [] if data.test.applicable else [f"No critical-difference diagram: {data.test.reason}.", ""]
    families = {s: family_of(s) for s in data.test.avg_ranks.index}
    ranks = rank_block(data.test.avg_ranks, families, data.test.n_blocks, data.test.blocks)
    aubc = [
        f"### {b.title}\n\n{render_markdown(b)}"
        for b in aubc_blocks(data.aubc, data.scale, o.baseline, o.level)
    ]
    unfinished = data.status[data.status["state"] != "finished"]
    lines = [
        "# Active-learning report",
        "",
        overview(data),
        "",
        validation_note(data.curves, o.count_validation),
        "",
        "Open `index.html` for the same report on one page (figures, sortable tables, protocols).",
        "",
        "## Summary",
        "",
        *(f"- {claim}" for claim in data.claims),
        "",
        "## Figures",
        "",
        *(line for figure in figures for line in (figure, "")),
        *cd_note,
        "## Ranking",
        "",
        render_markdown(ranks) if len(ranks.rows) else "No strategy has a complete curve: no ranks.",
        "",
        "\n\n".join(aubc),
        "",
        "## Results per setting",
        "",
        *notes,
        to_markdown(data.summary, o.max_checkpoints).rstrip(),
        "",
        "## Pairwise penalty matrix",
        "",
        "Rows beat columns; an entry is at most the number of settings "
        f"({data.matrix.attrs.get('n_settings')}).",
        "",
        render_markdown(penalty_block(data.matrix, data.col_means)),
        "",
        "![penalty matrix](penalty_matrix.png)",
        "",
        "## Runs not finished",
        "",
        unfinished_markdown(unfinished, len(data.status)),
        "",
        "## Definitions",
        "",
        definitions(data),
        "",
    ]
    return "\n".join(lines)


def validation_note(curves: pd.DataFrame, counted: bool) -> str:
    """One paragraph: how many validation labels the runs read (``n_val``) and whether budgets count them."""
    n_val = curves["n_val"] if "n_val" in curves.columns else pd.Series(0, index=curves.index)
    if not (n_val > 0).any():
        return "Validation labels: the runs read none (n_val = 0 in every curve)."
    keys = setting_keys(curves)
    per_setting = curves.assign(n_val=n_val).groupby(keys, sort=True)["n_val"].agg(["min", "max"])
    parts = []
    for setting, row in per_setting.iterrows():
        amount = f"{row['max']}" if row["min"] == row["max"] else f"{row['min']}-{row['max']}"
        parts.append(
            f"{setting_label(setting if isinstance(setting, tuple) else (setting,), keys)}: {amount}"
        )
    how = (
        "every budget below COUNTS them (--count-validation: n_labeled + n_val)"
        if counted
        else "budgets below count the pool labels only (pass --count-validation to count them too)"
    )
    return f"Validation labels read by the runs (n_val): {'; '.join(parts)}. They are labels: {how}."


def unfinished_markdown(unfinished: pd.DataFrame, n_runs: int) -> str:
    """The runs that did not finish with their state, cycles and message, or one line when all finished."""
    if unfinished.empty:
        return f"All {n_runs} runs finished."
    block = Block(title="Runs not finished", header=["Run", "State", "Cycles done", "Message"], align="llrl")
    for _, row in unfinished.iterrows():
        done = "?" if pd.isna(row["cycles_done"]) else str(row["cycles_done"])
        total = "?" if pd.isna(row["cycles_total"]) else str(row["cycles_total"])
        block.rows.append([f"`{row['run_dir']}`", str(row["state"]), f"{done}/{total}", str(row["message"])])
        block.bold.append([False] * 4)
    return render_markdown(block)


def relative_to_cwd(path: Path) -> str:
    """``path`` relative to the working directory when below it (reports show short paths)."""
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
