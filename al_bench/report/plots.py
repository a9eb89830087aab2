"""Matplotlib figures of a sweep: learning curves and differences to random as small multiples (one panel per
strategy family and setting), time per cycle, and the pairwise penalty matrix.

Figures are built with ``matplotlib.figure.Figure`` (Agg canvas, no pyplot global state, no display needed)
and written atomically; the format follows the file suffix (.png, .pdf, .svg).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from al_bench.report.aggregate import setting_keys, setting_label
from al_bench.report.families import BASELINE_FAMILY, family_title, group_by_family
from al_bench.report.metrics import BASELINE, accuracy_scale, mean_curves
from al_bench.results import atomic_write_bytes


def learning_curves_figure(
    frame: pd.DataFrame,
    metric: str = "test_acc",
    baseline: str = BASELINE,
    ncols: int = 4,
) -> Figure:
    """Small multiples: mean ± std (over seeds) of ``metric`` in % against n_labeled, one panel per strategy
    family and setting, the baseline (random, black dashed) drawn in every panel.

    frame: the tidy curve frame of ``load_curves``. Panels of one setting share their y-axis; a setting's
    families wrap after ``ncols`` panels. A band is drawn where at least two seeds exist. Returns the Figure.
    """
    curves = mean_curves(frame, metric)
    scale = accuracy_scale(curves["mean"])
    grid = FamilyGrid(curves, baseline, ncols)
    for (setting, family), ax in grid.panels.items():
        g = grid.setting_frames[setting]
        members = grid.families[family]
        colors = _member_colors(members)
        drawn = [name for name in members if name in set(g["strategy"])]
        for name in ([baseline] if baseline in set(g["strategy"]) else []) + drawn:
            curve = g[g["strategy"] == name]
            x = curve["n_labeled"].to_numpy()
            mean = curve["mean"].to_numpy() * scale
            std = np.nan_to_num(curve["std"].to_numpy() * scale)
            color = (0.0, 0.0, 0.0, 1.0) if name == baseline else colors[name]
            style = "--" if name == baseline else "-"
            ax.plot(x, mean, style, marker="o", markersize=2.5, linewidth=1.3, color=color, label=name)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        if not drawn:
            _empty(ax, "no runs of this family in this setting")
        ax.set_xlabel("labeled samples")
        ax.set_ylabel(f"{metric_label(metric)} (%)" if scale == 100.0 else metric_label(metric))
        ax.legend(loc="lower right", fontsize=7, frameon=False, handlelength=1.8)
    grid.finish(share_y=True)
    return grid.fig


def plot_learning_curves(
    frame: pd.DataFrame, path: str | Path, metric: str = "test_acc", baseline: str = BASELINE, ncols: int = 4
) -> Path:
    """Write :func:`learning_curves_figure` to ``path``; returns it."""
    return save_figure(learning_curves_figure(frame, metric, baseline, ncols), path)


def diff_to_random_figure(
    diff: pd.DataFrame,
    metric: str = "test_acc",
    baseline: str = BASELINE,
    level: float = 0.95,
    ncols: int = 4,
    scale: float = 100.0,
) -> Figure:
    """Small multiples of ``metric`` minus the baseline's (percentage points, paired by seed) per checkpoint
    with the ``level`` confidence band, one panel per family and setting; grey: ± the baseline's seed std.

    diff: ``al_bench.report.stats.diff_to_random``; ``scale``: 100 when the metric is a fraction, 1 when it
    is already in % (``accuracy_scale`` of the curve frame). A strategy with one common seed has no band;
    the y range fits the mean differences and the baseline's spread, so wider bands are clipped.
    Returns the Figure.
    """
    grid = FamilyGrid(diff.rename(columns={"diff": "mean"}), baseline, ncols)
    for (setting, family), ax in grid.panels.items():
        g = grid.setting_frames[setting].rename(columns={"mean": "diff"})
        members = grid.families[family]
        colors = _member_colors(members)
        ax.axhline(0.0, color="black", linewidth=1.0, linestyle="--", label=f"{baseline} (0)")
        first = g.drop_duplicates("n_labeled").sort_values("n_labeled")
        spread = np.nan_to_num(first["random_std"].to_numpy() * scale)
        ax.fill_between(
            first["n_labeled"],
            -spread,
            spread,
            color="0.5",
            alpha=0.2,
            linewidth=0,
            label=f"± {baseline} std",
        )
        drawn = [name for name in members if name in set(g["strategy"])]
        for name in drawn:
            curve = g[g["strategy"] == name].sort_values("n_labeled")
            x = curve["n_labeled"].to_numpy()
            ax.plot(
                x,
                curve["diff"] * scale,
                marker="o",
                markersize=2.5,
                linewidth=1.3,
                color=colors[name],
                label=name,
            )
            ax.fill_between(
                x, curve["lo"] * scale, curve["hi"] * scale, color=colors[name], alpha=0.15, linewidth=0
            )
        if not drawn:
            _empty(ax, "no runs of this family in this setting")
        ax.set_xlabel("labeled samples")
        ax.set_ylabel(f"{metric_label(metric)} - {baseline} ({'points' if scale == 100.0 else 'units'})")
        ax.legend(loc="best", fontsize=7, frameon=False, handlelength=1.8)
    if not grid.panels:
        _empty(grid.fig.add_subplot(), f"no {baseline} runs: no differences to draw")
    grid.finish(share_y=True, limits={i: _diff_limits(g, scale) for i, g in grid.setting_frames.items()})
    grid.fig.suptitle(
        f"difference to {baseline}, paired by seed; bands: {round(100 * level)}% t-interval", fontsize=10
    )
    return grid.fig


def plot_diff_to_random(
    diff: pd.DataFrame,
    path: str | Path,
    metric: str = "test_acc",
    baseline: str = BASELINE,
    level: float = 0.95,
    ncols: int = 4,
    scale: float = 100.0,
) -> Path:
    """Write :func:`diff_to_random_figure` to ``path``; returns it."""
    return save_figure(diff_to_random_figure(diff, metric, baseline, level, ncols, scale), path)


def time_per_cycle_figure(frame: pd.DataFrame, ncols: int = 3) -> Figure:
    """Mean seconds per cycle (over cycles and seeds), train + select stacked, one bar per strategy, one panel
    per setting; strategies sorted by total time, the slowest at the top. Returns the Figure."""
    keys = setting_keys(frame)
    timing = frame.groupby([*keys, "strategy"], sort=True)[["train_s", "select_s"]].mean().reset_index()
    settings = list(timing.groupby(keys, sort=True))
    n_strategies = max((len(g) for _, g in settings), default=1)
    ncols = max(1, min(ncols, len(settings)))
    nrows = max(1, math.ceil(len(settings) / ncols))
    fig = Figure(figsize=(5.5 * ncols, (0.24 * n_strategies + 1.4) * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (setting, g) in zip(axes, settings):
        g = g.fillna({"train_s": 0.0, "select_s": 0.0})
        g = g.assign(total=g["train_s"] + g["select_s"]).sort_values("total", kind="stable")
        y = np.arange(len(g))
        ax.barh(y, g["train_s"], color="tab:blue", label="train")
        ax.barh(y, g["select_s"], left=g["train_s"], color="tab:orange", label="select")
        for yi, (_, row) in zip(y, g.iterrows()):
            ax.text(
                row["total"], yi, f" {row['train_s']:.2g} + {row['select_s']:.2g} s", va="center", fontsize=7
            )
        ax.set_yticks(y, g["strategy"], fontsize=8)
        ax.set_xlim(0, max(float(g["total"].max()), 1e-9) * 1.35)
        ax.set_xlabel("seconds per cycle (mean over cycles and seeds)")
        ax.set_title(setting_label(setting, keys), fontsize=10)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        ax.grid(True, axis="x", linestyle="--", linewidth=0.5, alpha=0.6)
    for ax in axes[len(settings) :]:
        ax.set_visible(False)
    return fig


def plot_time_per_cycle(frame: pd.DataFrame, path: str | Path, ncols: int = 3) -> Path:
    """Write :func:`time_per_cycle_figure` to ``path``; returns it."""
    return save_figure(time_per_cycle_figure(frame, ncols), path)


class FamilyGrid:
    """The panels of the small-multiple figures: per setting, one panel per family of the strategies present
    (random has no panel of its own: it is drawn in every one), wrapping after ``ncols`` panels.

    ``curves``: a frame with the setting keys and ``strategy`` (and ``n_labeled``, ``mean`` for the y range).
    ``panels``: {(setting index, family): Axes}; ``setting_frames``: {setting index: rows of that setting};
    ``families``: {family: its strategies in the frame, sorted}.
    """

    def __init__(self, curves: pd.DataFrame, baseline: str, ncols: int) -> None:
        keys = setting_keys(curves)
        groups = group_by_family(curves["strategy"].unique())
        if set(groups) != {BASELINE_FAMILY}:
            groups.pop(BASELINE_FAMILY, None)  # random is drawn in every panel
        self.families = {f: [s for s in names if s != baseline] or names for f, names in groups.items()}
        settings = list(curves.groupby(keys, sort=True)) if len(curves) else []
        self.labels = [setting_label(setting, keys) for setting, _ in settings]
        self.setting_frames = {i: g for i, (_, g) in enumerate(settings)}
        n_fam = max(1, len(self.families))
        self.ncols = max(1, min(ncols, n_fam))
        self.rows_per_setting = math.ceil(n_fam / self.ncols)
        nrows = max(1, self.rows_per_setting * len(settings))
        self.fig = Figure(figsize=(3.9 * self.ncols, 3.1 * nrows + 0.4), layout="constrained")
        FigureCanvasAgg(self.fig)
        self.axes = self.fig.subplots(nrows, self.ncols, squeeze=False) if settings else np.empty((0, 0))
        self.panels: dict[tuple[int, str], object] = {}
        for i in range(len(settings)):
            for j, family in enumerate(self.families):
                ax = self.axes[i * self.rows_per_setting + j // self.ncols, j % self.ncols]
                title = family_title(family) + (f"\n{self.labels[i]}" if len(settings) > 1 else "")
                ax.set_title(title, fontsize=9)
                ax.grid(True, linestyle="--", linewidth=0.5, alpha=0.6)
                self.panels[(i, family)] = ax

    def finish(self, share_y: bool, limits: dict[int, tuple[float, float]] | None = None) -> None:
        """Hide the unused cells; give the panels of each setting one y range (``limits[setting]`` when given,
        else the union of the panels' own ranges)."""
        used = {id(ax) for ax in self.panels.values()}
        for ax in np.ravel(self.axes):
            if id(ax) not in used:
                ax.set_visible(False)
        if share_y:
            for i in self.setting_frames:
                axes = [ax for (s, _), ax in self.panels.items() if s == i]
                lo = min(ax.get_ylim()[0] for ax in axes)
                hi = max(ax.get_ylim()[1] for ax in axes)
                lo, hi = (limits or {}).get(i, (lo, hi))
                for ax in axes:
                    ax.set_ylim(lo, hi)


def _diff_limits(g: pd.DataFrame, scale: float) -> tuple[float, float]:
    """A y range that shows every mean difference and the baseline's spread, with a margin; wide confidence
    bands (few seeds) are clipped rather than squeezing every curve into a thin strip."""
    values = np.concatenate(
        [
            g["mean"].to_numpy(dtype=float),
            g["random_std"].to_numpy(dtype=float),
            -g["random_std"].to_numpy(dtype=float),
        ]
    )
    values = values[np.isfinite(values)] * scale
    if values.size == 0:
        return -1.0, 1.0
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    pad = 0.2 * max(hi - lo, 1e-6)
    return lo - pad, hi + pad


def _member_colors(members: list[str]) -> dict[str, tuple]:
    """Distinct colours for the strategies of one panel (tab10 without its grey), in sorted order."""
    import matplotlib

    palette = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7]
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(members))}


def metric_label(metric: str) -> str:
    return {"test_acc": "test accuracy"}.get(metric, metric)


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")


def plot_penalty_matrix(matrix: pd.DataFrame, col_means: pd.Series, path: str | Path) -> Path:
    """Heat-map of P (row i beats column j) with each value written in its cell, and the column means below.

    ``matrix`` and ``col_means`` as returned by ``metrics.penalty_matrix``. Returns the written path.
    """
    names = [str(c) for c in matrix.columns]
    values = matrix.to_numpy(dtype=float)
    means = col_means.reindex(matrix.columns).to_numpy(dtype=float)
    vmax = max(float(np.nanmax(values, initial=0.0)), float(np.nanmax(means, initial=0.0)), 1e-9)
    size = max(3.0, 0.75 * len(names) + 2.0)
    fig = Figure(figsize=(size + 1.0, size + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[max(len(names), 1), 1], width_ratios=[1, 0.05])
    ax = fig.add_subplot(grid[0, 0])
    ax_means = fig.add_subplot(grid[1, 0], sharex=ax)
    image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    ax_means.imshow(means[None, :], cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    _annotate(ax, values, image)
    _annotate(ax_means, means[None, :], image)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylabel("winner (row beats column)")
    ax.xaxis.set_tick_params(labelbottom=False)
    ax_means.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax_means.set_yticks([0], ["beaten\n(col. mean)"])
    ax_means.set_xlabel("loser (column)")
    n_settings = matrix.attrs.get("n_settings")
    suffix = f" (max entry = {n_settings} settings)" if n_settings is not None else ""
    ax.set_title(f"Pairwise penalty matrix{suffix}")
    fig.colorbar(image, cax=fig.add_subplot(grid[:, 1]))
    return save_figure(fig, path)


def _annotate(ax, values: np.ndarray, image) -> None:
    """Write each value in its cell, white on dark colours and black on light ones."""
    for (row, col), value in np.ndenumerate(values):
        if not np.isfinite(value):
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        color = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=color, fontsize=8)


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=150)
    atomic_write_bytes(path, buffer.getvalue())
    return path
