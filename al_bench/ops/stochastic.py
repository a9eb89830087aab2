"""Stochastic batch acquisition (Kirsch et al., TMLR 2023): draw a batch from a distribution over candidates.

Instead of the top-k of scores ``s [N]`` (higher = query first), a batch is drawn without replacement from

- ``softmax``:  p_i ∝ exp(beta * s_i)
- ``power``:    p_i ∝ s_i ** beta          (scores >= 0; items with s_i = 0 get no weight)
- ``softrank``: p_i ∝ r_i ** (-beta)       (r_i = rank of s_i, 1 = highest; ties share their average rank)

``beta = 0`` is uniform random sampling; ``beta -> inf`` recovers top-k. The draw is the Gumbel-top-k trick
(Vieira 2014; Kool, van Hoof & Welling 2019): the k largest ``log p_i + g_i``, ``g_i ~ Gumbel(0, 1)`` i.i.d.,
have the law of k sequential draws without replacement from ``p``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.special import logsumexp
from scipy.stats import rankdata

MODES = ("softmax", "power", "softrank")
#: ``power`` clamps negative scores down to ``-NEGATIVE_TOL * max(1, max |s|)`` to 0 (float error) and refuses
#: anything lower.
NEGATIVE_TOL = 1e-6


def _as_float64(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def log_weights(scores: torch.Tensor | np.ndarray, mode: str = "power", beta: float = 1.0) -> np.ndarray:
    """Normalised log-probabilities of the stochastic acquisition distribution. [N] -> float64 [N].

    ``log p_i`` with ``sum_i p_i = 1`` over the non-NaN scores (see the module docstring for the three
    ``mode`` formulas). Weight zero is ``-inf`` (``power`` with s_i = 0, ``softmax`` with s_i = -inf); a NaN
    score gives a NaN log-weight, which :func:`gumbel_top_k` draws after every other candidate (with a
    warning here). ``+inf`` scores take all the mass of ``softmax``/``power``, shared equally (the limit).

    Raises ValueError for an unknown ``mode``, ``beta`` < 0 or not finite, and for ``power`` on clearly
    negative scores (below ``-NEGATIVE_TOL * max(1, max |s|)``; smaller negatives are float error and
    count as 0).
    """
    s = _as_float64(scores, "scores")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    beta = float(beta)
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    nan = np.isnan(s)
    if nan.any():
        warnings.warn(f"{int(nan.sum())} NaN scores get no weight (drawn last)", RuntimeWarning, stacklevel=2)
    v = s[~nan]
    if mode == "power" and len(v):
        scale = np.abs(v[np.isfinite(v)]).max(initial=0.0)
        if v.min() < -NEGATIVE_TOL * max(1.0, scale):
            raise ValueError(f"mode power needs scores >= 0, got scores down to {v.min():.4g}")
        v = np.maximum(v, 0.0)
    if beta == 0:
        lw = np.zeros_like(v)
    elif mode == "softmax":
        lw = beta * v
    elif mode == "power":
        with np.errstate(divide="ignore"):
            lw = beta * np.log(v)
    else:
        lw = -beta * np.log(rankdata(-v, method="average"))
    if np.isposinf(lw).any():  # infinite scores: the limit puts all the mass on them
        lw = np.where(np.isposinf(lw), 0.0, -np.inf)
    finite = np.isfinite(lw)
    if finite.any():
        lw = lw - logsumexp(lw[finite])
    out = np.full(len(s), np.nan)
    out[~nan] = lw
    return out


def gumbel_top_k(log_w: torch.Tensor | np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions [k] (int64, in draw order) of k draws without replacement from ``p ∝ exp(log_w)`` [N].

    Gumbel-top-k: the k largest ``log_w_i + g_i`` with ``g_i ~ Gumbel(0, 1)`` i.i.d. from ``rng``; their order
    has the law of sequential sampling without replacement (``log_w`` need not be normalised). Candidates
    with ``log_w = -inf`` (weight zero) come after every finite one and NaN ones after those, each group in
    a random order from ``rng`` (a warning when the draw reaches them, as :func:`top_k` does for NaN);
    ties (``+inf``) are broken by that random order too, never by position.
    """
    lw = _as_float64(log_w, "log_w")
    n, k = len(lw), int(k)
    if not 0 <= k <= n:
        raise ValueError(f"cannot select {k} of {n} candidates")
    keys = lw + rng.gumbel(size=n)
    tier = np.where(np.isnan(lw), 2, np.where(np.isneginf(lw), 1, 0))
    keys = np.where(tier == 0, keys, 0.0)
    perm = rng.permutation(n)
    order = perm[np.lexsort((-keys[perm], tier[perm]))][:k]  # lexsort is stable: ties keep perm's order
    n_weighted = int((tier == 0).sum())
    if k > n_weighted:
        warnings.warn(
            f"only {n_weighted} of {n} candidates have positive weight; the other {k - n_weighted} are "
            "drawn at random (zero-weight ones before NaN scores)",
            RuntimeWarning,
            stacklevel=2,
        )
    return order.astype(np.int64)
