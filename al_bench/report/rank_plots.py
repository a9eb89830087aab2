"""Figures of the cross-strategy statistics: AUBC ranking with bootstrap intervals and the critical-difference
diagram (Demšar 2006, drawn by scikit-posthocs). Same conventions as ``plots``: an Agg ``Figure``, no pyplot
state, written atomically, format from the file suffix.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from al_bench.report.aggregate import setting_keys, setting_label
from al_bench.report.families import FAMILIES, family_colors, family_of, family_title
from al_bench.report.metrics import BASELINE
from al_bench.report.plots import metric_label, save_figure
from al_bench.report.stats import RankTest


def aubc_ranking_figure(
    table: pd.DataFrame,
    metric: str = "test_acc",
    baseline: str = BASELINE,
    level: float = 0.95,
    ncols: int = 3,
    scale: float = 100.0,
) -> Figure:
    """One panel per setting: every strategy's mean AUBC over seeds (dot, family colour) with its bootstrap
    interval (bar), best at the top; the baseline's mean (dashed line) ± its seed std (grey). A hollow dot
    differs from the baseline by less than that std.

    table: ``stats.setting_aubc``; ``scale``: 100 for fractions (``accuracy_scale`` of the curve frame).
    Returns the Figure.
    """
    keys = setting_keys(table)
    settings = list(table.groupby(keys, sort=True)) if len(table) else []
    n_strategies = max((len(g) for _, g in settings), default=1)
    ncols = max(1, min(ncols, len(settings)))
    nrows = max(1, math.ceil(len(settings) / ncols))
    fig = Figure(figsize=(5.2 * ncols + 1.6, (0.26 * n_strategies + 1.5) * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    colors = family_colors()
    for ax, (setting, g) in zip(axes, settings):
        g = g.sort_values("aubc_mean", kind="stable")  # best last = top row
        y = np.arange(len(g))
        base = g[g["strategy"] == baseline]
        if len(base):
            mean, std = float(base["aubc_mean"].iloc[0]) * scale, float(base["random_std"].iloc[0]) * scale
            if np.isfinite(std):
                ax.axvspan(mean - std, mean + std, color="0.5", alpha=0.2, linewidth=0)
            ax.axvline(mean, color="black", linestyle="--", linewidth=1.0)
        for yi, (_, row) in zip(y, g.iterrows()):
            color = colors[row["family"]]
            ax.plot([row["ci_lo"] * scale, row["ci_hi"] * scale], [yi, yi], color=color, linewidth=2.0)
            hollow = bool(row["within_random_spread"]) and row["strategy"] != baseline
            ax.plot(
                row["aubc_mean"] * scale, yi, "o", markersize=6, color=color,
                markerfacecolor="white" if hollow else color,
            )  # fmt: skip
        ax.set_yticks(y, [f"{s} ({n})" for s, n in zip(g["strategy"], g["n_seeds"])], fontsize=8)
        for tick, family in zip(ax.get_yticklabels(), g["family"]):
            tick.set_color(colors[family])
        unit = " (%)" if scale == 100.0 else ""
        ax.set_xlabel(
            f"AUBC of {metric_label(metric)}{unit}, mean over seeds, {round(100 * level)}% bootstrap"
        )
        ax.set_title(f"{setting_label(setting, keys)} (strategy (seeds))", fontsize=10)
        ax.grid(True, axis="x", linestyle="--", linewidth=0.5, alpha=0.6)
    for ax in axes[len(settings) :]:
        ax.set_visible(False)
    if not settings:
        axes[0].set_visible(True)
        axes[0].text(
            0.5, 0.5, "no complete run: no AUBC", ha="center", va="center", transform=axes[0].transAxes
        )
    present = [f for f in FAMILIES if f in set(table.get("family", []))]
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colors[f], label=family_title(f)) for f in present
    ]
    handles += [
        Line2D([], [], marker="o", linestyle="", color="0.3", markerfacecolor="white",
               label=f"inside {baseline}'s seed std"),
        Line2D([], [], color="black", linestyle="--", label=f"{baseline} mean ± seed std"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def plot_aubc_ranking(
    table: pd.DataFrame,
    path: str | Path,
    metric: str = "test_acc",
    baseline: str = BASELINE,
    level: float = 0.95,
    ncols: int = 3,
    scale: float = 100.0,
) -> Path:
    """Write :func:`aubc_ranking_figure` to ``path``; returns it."""
    return save_figure(aubc_ranking_figure(table, metric, baseline, level, ncols, scale), path)


def critical_difference_figure(test: RankTest) -> Figure:
    """Critical-difference diagram of the rank test: average ranks on the axis (1 = best, left), strategies
    joined by a bar where Nemenyi cannot tell them apart at ``test.alpha``; the CD is given in the title.

    Needs an applicable test (``test.nemenyi`` set). Label colours are the strategies' family colours.
    Returns the Figure.
    """
    if test.nemenyi is None:
        raise ValueError(f"plot_critical_difference: the rank test is not applicable ({test.reason})")
    import scikit_posthocs as sp

    k = len(test.avg_ranks)
    fig = Figure(figsize=(10.0, 1.6 + 0.3 * (math.ceil(k / 2) + 2)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = family_colors()
    palette = {name: colors[family_of(name)] for name in test.avg_ranks.index}
    sp.critical_difference_diagram(
        test.avg_ranks,
        test.nemenyi,
        alpha=test.alpha,
        ax=ax,
        color_palette=palette,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
        label_props={"fontsize": 8},
    )
    ax.set_title(
        f"Average rank over {test.n_blocks} {test.blocks} (1 = best); Friedman p = {test.p_value:.3g}\n"
        f"bars join strategies Nemenyi cannot tell apart (p >= {test.alpha}, CD = {test.cd:.2f} ranks)",
        fontsize=10,
    )
    return fig


def plot_critical_difference(test: RankTest, path: str | Path) -> Path:
    """Write :func:`critical_difference_figure` to ``path``; returns it."""
    return save_figure(critical_difference_figure(test), path)
