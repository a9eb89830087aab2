"""Learning-dynamics scores from per-epoch predicted labels ``pred_history [N, T]`` (int, T recorded epochs).

Higher = query first.
"""

from __future__ import annotations

import torch

_DENOMINATORS = ("epochs", "epochs_plus_one")


def _mode_counts(history: torch.Tensor, chunk_elements: int = 1 << 24) -> tuple[torch.Tensor, torch.Tensor]:
    """(most frequent label [N], its count [N]) per row of ``history`` [N, T] (int64, labels >= 0).

    One-hot sums by ``scatter_add_`` over row chunks (at most ``chunk_elements`` counters at a time).
    Ties go to the smallest label.
    """
    n = len(history)
    n_classes = int(history.max()) + 1
    rows = max(1, chunk_elements // max(n_classes, 1))
    mode = torch.empty(n, dtype=torch.long, device=history.device)
    count = torch.empty(n, dtype=torch.long, device=history.device)
    for s in range(0, n, rows):
        h = history[s : s + rows]
        counts = torch.zeros(len(h), n_classes, dtype=torch.int32, device=history.device)
        counts.scatter_add_(1, h, torch.ones_like(h, dtype=torch.int32))
        c, m = counts.max(1)  # first maximum = smallest label
        mode[s : s + rows], count[s : s + rows] = m, c.long()
    return mode, count


def label_dispersion(
    pred_history: torch.Tensor, mode_window: int | None = None, denominator: str = "epochs"
) -> torch.Tensor:
    """Label dispersion (Bengar et al. 2021): ``1 - f_x / T`` -> float32 [N], in [0, 1).

    pred_history [N, T] int: predicted label of each pool sample after each recorded epoch.
    ``c*`` = most frequent label (ties: the smallest label),
    ``f_x`` = number of the T epochs predicting ``c*``.

    - ``mode_window=None`` (paper): c* over all T epochs.
      ``mode_window=k``: c* over the last k epochs only, f_x still counted over all T epochs (the first
      author's later code takes the mode of epochs 75..100 of 100).
    - ``denominator="epochs"`` (paper): divide by T;
      ``"epochs_plus_one"``: by T + 1 (that code's ``n_epoch + 1``).
    """
    if pred_history.ndim != 2:
        raise ValueError(f"pred_history must be [N, T], got shape {tuple(pred_history.shape)}")
    if denominator not in _DENOMINATORS:
        raise ValueError(f"unknown denominator {denominator!r}; valid: {', '.join(_DENOMINATORS)}")
    if mode_window is not None and mode_window < 1:
        raise ValueError(f"mode_window must be >= 1 or None, got {mode_window}")
    n, t = pred_history.shape
    if t == 0:
        raise ValueError("pred_history has no recorded epoch")
    if n == 0:
        return torch.zeros(0, device=pred_history.device)
    hist = pred_history.long()
    if mode_window is None or mode_window >= t:
        _, f_x = _mode_counts(hist)
    else:
        mode, _ = _mode_counts(hist[:, -mode_window:])
        f_x = (hist == mode[:, None]).sum(1)
    denom = t if denominator == "epochs" else t + 1
    return 1.0 - f_x.float() / denom


def forgetting_counts(pred_history: torch.Tensor) -> torch.Tensor:
    """Prediction changes between consecutive recorded epochs -> int64 [N] (0 when T < 2).

    Toneva et al.'s forgetting events need true labels; on the unlabeled pool every change of the predicted
    label counts instead (``yhat_t != yhat_{t-1}``).
    """
    if pred_history.ndim != 2:
        raise ValueError(f"pred_history must be [N, T], got shape {tuple(pred_history.shape)}")
    return (pred_history[:, 1:] != pred_history[:, :-1]).sum(1, dtype=torch.long)
