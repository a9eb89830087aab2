"""Diagnostics of selection scores: model accuracy per label-dispersion bin (Bengar et al. 2021, Fig. 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def dispersion_accuracy_bins(
    dispersion: torch.Tensor | np.ndarray, correct: torch.Tensor | np.ndarray, n_bins: int = 10
) -> pd.DataFrame:
    """Accuracy of the model per dispersion bin.

    dispersion [N] in [0, 1], correct [N] bool (prediction == true label) -> one row per bin of
    ``n_bins`` equal bins over [0, 1] (the last bin includes 1): bin, lo, hi, count, accuracy
    (NaN when empty).
    """
    d = _numpy(dispersion).astype(np.float64).ravel()
    c = _numpy(correct).astype(bool).ravel()
    if len(d) != len(c):
        raise ValueError(f"dispersion and correct differ in length: {len(d)} != {len(c)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.floor(d * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    hits = np.bincount(which, weights=c.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(count > 0, hits / np.maximum(count, 1), np.nan)
    return pd.DataFrame(
        {"bin": np.arange(n_bins), "lo": edges[:-1], "hi": edges[1:], "count": count, "accuracy": accuracy}
    )


def plot_dispersion_accuracy(df: pd.DataFrame, path: str | Path) -> Path:
    """Bar chart of accuracy per dispersion bin (sample counts above the bars) saved as PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    centres = (df["lo"] + df["hi"]) / 2
    width = float((df["hi"] - df["lo"]).iloc[0]) * 0.9 if len(df) else 0.1
    acc = df["accuracy"].fillna(0.0)
    ax.bar(centres, acc, width=width, color="tab:blue")
    for x, y, n in zip(centres, acc, df["count"]):
        ax.annotate(str(int(n)), (x, y), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("label dispersion")
    ax.set_ylabel("accuracy")
    ax.set_title("Model accuracy per dispersion bin (counts above bars)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path
