"""Matplotlib figures of a sweep: learning curves per setting and the pairwise penalty matrix.

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
from matplotlib.lines import Line2D

from al_bench.report.aggregate import SETTING_KEYS
from al_bench.report.metrics import BASELINE, accuracy_scale, mean_curves
from al_bench.results import atomic_write_bytes


def strategy_colors(strategies: list[str]) -> dict[str, tuple]:
    """A fixed, distinct colour per strategy name (sorted order): tab10 up to 10 strategies, else tab20 then
    tab20b (40 colours) before any colour repeats; the random baseline is always black."""
    import matplotlib

    names = sorted(strategies)
    if len(names) <= 10:
        palette = list(matplotlib.colormaps["tab10"].colors)
    else:
        palette = list(matplotlib.colormaps["tab20"].colors) + list(matplotlib.colormaps["tab20b"].colors)
    others = [n for n in names if n != BASELINE]
    colors = {name: palette[i % len(palette)] for i, name in enumerate(others)}
    if BASELINE in names:
        colors[BASELINE] = (0.0, 0.0, 0.0, 1.0)
    return colors


def plot_learning_curves(
    frame: pd.DataFrame, path: str | Path, metric: str = "test_acc", ncols: int = 3
) -> Path:
    """Mean ± std (over seeds) test accuracy in % against n_labeled, one panel per (dataset, model, budget).

    frame: the tidy curve frame of ``load_curves``. A band is drawn where at least two seeds exist.
    Returns the written path.
    """
    curves = mean_curves(frame, metric)
    scale = accuracy_scale(curves["mean"])
    settings = list(curves.groupby(list(SETTING_KEYS), sort=True))
    colors = strategy_colors(list(curves["strategy"].unique()))
    ncols = max(1, min(ncols, len(settings)))
    nrows = math.ceil(len(settings) / ncols)
    legend_cols = math.ceil(len(colors) / 16)  # the legend sits to the right, 16 names per column
    fig = Figure(figsize=(5.0 * ncols + 1.9 * legend_cols, max(3.8 * nrows, 4.2)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (setting, g) in zip(axes, settings):
        for strategy, curve in g.groupby("strategy", sort=True):
            x = curve["n_labeled"].to_numpy()
            mean = curve["mean"].to_numpy() * scale
            std = np.nan_to_num(curve["std"].to_numpy() * scale)
            style = "--" if strategy == BASELINE else "-"
            ax.plot(
                x,
                mean,
                style,
                marker="o",
                markersize=3,
                linewidth=1.5,
                color=colors[strategy],
                label=strategy,
            )
            ax.fill_between(x, mean - std, mean + std, color=colors[strategy], alpha=0.2, linewidth=0)
        ax.set_title(" / ".join(str(s) for s in setting))
        ax.set_xlabel("labeled samples")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, linestyle="--", linewidth=0.5, alpha=0.6)
    for ax in axes[len(settings) :]:
        ax.set_visible(False)
    # one legend for the figure, with every strategy even if some panel lacks it
    handles = [
        Line2D(
            [], [], color=colors[name], linewidth=2, linestyle="--" if name == BASELINE else "-", label=name
        )
        for name in sorted(colors)
    ]
    fig.legend(handles=handles, loc="outside right upper", ncols=legend_cols, frameon=False, fontsize=8)
    return _save(fig, path)


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
    return _save(fig, path)


def _annotate(ax, values: np.ndarray, image) -> None:
    """Write each value in its cell, white on dark colours and black on light ones."""
    for (row, col), value in np.ndenumerate(values):
        if not np.isfinite(value):
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        color = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=color, fontsize=8)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=150)
    atomic_write_bytes(path, buffer.getvalue())
    return path
