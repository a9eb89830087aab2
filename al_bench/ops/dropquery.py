"""DropQuery kernels (Gupte, Aklilu, Nirschl, Yeung-Levy, "Revisiting Active Learning in the Era of Vision
Foundation Models", TMLR 2024): prediction changes under dropout on the input features of a linear head.

A candidate with features x [D] and prediction y* = argmax(W x + b) is run M times through the head with
dropout on x (each coordinate zeroed with probability p, the rest scaled by 1 / (1 - p), as ``nn.Dropout``);
it is a candidate for the k-means step when its prediction differs from y* in more than half of the M runs.

As the authors' code (sanketx/AL-foundation-models, ``ALFM/src/query_strategies/dropout.py``; dropout
``dropout_p: 0.75`` on the classifier's input features, ``num_iter: 3``), which DAL-Toolbox's ``DropQuery``
follows: when fewer than ``candidate_factor`` (25) x budget candidates pass the threshold "more than M // 2
mismatches", the threshold is lowered one mismatch at a time, down to "at least one"
(:func:`mismatch_threshold`). ``candidate_factor = 0`` keeps the fixed "more than half" rule, as the
first version of the authors' code and scikit-activeml's ``DropQuery``, which also zeroes without rescaling
(the same predictions when b = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def dropout_masks(
    n_draws: int, shape: tuple[int, int], p: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """``n_draws`` bool masks [N, D], True = dropped (probability ``p`` each, independent), drawn in order
    from ``generator`` (one ``torch.rand`` [N, D] per draw, on the generator's device)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    return [torch.rand(shape, generator=generator, device=generator.device) < p for _ in range(int(n_draws))]


def dropout_mismatches(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    reference: torch.Tensor,
    p: float,
    masks: Sequence[torch.Tensor],
    rescale: bool = True,
) -> torch.Tensor:
    """Mismatch counts [N] (int64, 0..M): how many of the M dropped-out copies of ``features [N, D]`` the
    linear head (``weight [C, D]``, ``bias [C]`` or None) predicts differently from ``reference [N]``.

    ``masks``: M bool tensors [N, D], True = dropped (:func:`dropout_masks`). ``rescale``: scale kept
    coordinates by 1 / (1 - ``p``) as ``nn.Dropout`` (the authors' code); False zeroes only (scikit-activeml).
    """
    x = features.float()
    w = weight.to(x)
    b = None if bias is None else bias.to(x)
    ref = reference.to(x.device)
    keep_scale = 1.0 / (1.0 - p) if rescale else 1.0
    counts = torch.zeros(len(x), dtype=torch.long, device=x.device)
    for mask in masks:
        xd = x.masked_fill(mask.to(x.device), 0.0) * keep_scale
        logits = xd @ w.T if b is None else torch.addmm(b, xd, w.T)
        counts += (logits.argmax(1) != ref).long()
    return counts


def mismatch_threshold(
    counts: torch.Tensor, n_draws: int, budget: int, candidate_factor: float = 25.0
) -> int:
    """The threshold t: candidates are the rows of ``counts [N]`` with count > t.

    t starts at ``n_draws // 2`` (more than half of the draws) and, as the authors' code, drops by one while
    fewer than ``candidate_factor * budget`` rows pass and t > 0. ``candidate_factor = 0``: fixed majority.
    """
    t = int(n_draws) // 2
    need = float(candidate_factor) * int(budget)
    while t > 0 and int((counts > t).sum()) < need:
        t -= 1
    return t


def dropquery_flags(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    reference: torch.Tensor,
    budget: int,
    generator: torch.Generator,
    p: float = 0.75,
    n_draws: int = 3,
    candidate_factor: float = 25.0,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(flags bool [N], mismatch counts [N], threshold): DropQuery's candidates among ``features [N, D]``,
    masks from ``generator``; arguments as :func:`dropout_mismatches` and :func:`mismatch_threshold`."""
    masks = dropout_masks(n_draws, (len(features), features.shape[1]), p, generator)
    counts = dropout_mismatches(features.to(generator.device), weight, bias, reference, p, masks)
    t = mismatch_threshold(counts, n_draws, budget, candidate_factor)
    return counts > t, counts, t
