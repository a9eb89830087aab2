"""ALFA-Mix kernels (Parvaneh et al., "Active Learning by Feature Mixing", CVPR 2022).

A candidate with features z [D] and predicted label y* is *inconsistent* when interpolating its features
toward some class anchor z*_k (the mean labeled feature of class k) changes the head's prediction:
``argmax head((1 - alpha) * z + alpha * z*_k) != y*``, alpha in R^D (elementwise). The paper's Eq. 5 picks
alpha by a first-order approximation of the most prediction-changing mix with ||alpha|| <= eps:

    alpha* = eps * ||z*_k - z|| / ||g|| * g / (z*_k - z)        (elementwise division)

with g = grad_z CE(head(z), y*). Then alpha* * (z*_k - z) = eps * ||z*_k - z|| * g / ||g||: the mix is a step
of length ``eps * ||z*_k - z||`` from z along the normalised loss gradient, the same direction for every
anchor. :func:`alfamix_flags` uses this form (an anchor only sets the step length) and tests all anchors at
once from the head's logits; :func:`closed_form_alpha` gives alpha itself as the authors' code computes it.

As the authors' code (AminParvaneh/alpha_mix_active_learning, ``alpha_mix_sampling.py``, options
``--alpha_closed_form_approx --alpha_cap 0.2``):

- eps = cap / sqrt(D), and cap grows 0.2, 0.4, ... while cap < 1 (each step adds ``alpha_cap``); the flags
  of all caps so far are united and the growth stops once more than ``budget`` candidates are flagged;
- the gradient is that of the cross-entropy with the predicted label, g = (softmax(logits) - onehot(y*)) W
  for the linear head W [C, D];
- anchors: one per class of the dataset; a class without labeled points gets the mean of all labeled
  features.

Differences: the code adds 1e-8 to (z*_k - z) before dividing (alpha blows up where a coordinate difference
is ~0); the step form needs no division. Where g = 0 (a saturated softmax) the code's alpha is NaN and its
NaN logits flag the point; here the step is 0 and the point is consistent. DAL-Toolbox and ALFM
(sanketx/AL-foundation-models) run a single cap (0.2) without the growth loop.

The learned variant (the authors' ``--alpha_opt``, the paper's main results) searches alpha instead:
:func:`learned_alpha_flips` and :func:`alfamix_flags_learned`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

#: the authors' guard added to (z* - z) before the elementwise division in alpha.
ALPHA_DENOM_EPS = 1e-8

#: elements of one [chunk, K, C] block of mixed logits held at once.
_CHUNK_ELEMENTS = 1 << 24


def class_anchors(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Anchors [num_classes, D]: mean labeled feature of each class; the mean of all ``features [L, D]``
    for a class with no point in ``labels [L]`` (the authors' rule)."""
    if len(features) == 0:
        raise ValueError("ALFA-Mix anchors need at least one labeled point")
    labels = labels.to(device=features.device, dtype=torch.long)
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=num_classes).to(features.dtype)
    anchors = sums / counts.clamp_min(1)[:, None]
    empty = counts == 0
    if bool(empty.any()):
        anchors[empty] = features.mean(0)
    return anchors


def prediction_loss_gradient(logits: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """grad_z CE(W z + b, argmax) [N, D] of a linear head ``weight [C, D]``, from its ``logits [N, C]``:
    (softmax(logits) - onehot(argmax logits)) @ W."""
    p = logits.softmax(1)
    p[torch.arange(len(p), device=p.device), logits.argmax(1)] -= 1.0
    return p @ weight.to(p)


def closed_form_alpha(z: torch.Tensor, anchor: torch.Tensor, grad: torch.Tensor, eps: float) -> torch.Tensor:
    """alpha [N, D] of Eq. 5 as the authors' code computes it, for ``z [N, D]``, ``anchor [N, D]`` or
    ``[D]``, ``grad [N, D]``: eps * ||anchor - z|| / ||grad|| * grad / (anchor - z + 1e-8).

    ``(1 - alpha) * z + alpha * anchor`` is then, up to the 1e-8,
    ``z + eps * ||anchor - z|| * grad / ||grad||`` (NaN where ``grad`` is 0, as theirs).
    """
    diff = anchor - z
    scale = eps * diff.norm(dim=1, keepdim=True) / grad.norm(dim=1, keepdim=True)
    return scale * grad / (diff + ALPHA_DENOM_EPS)


def mix_flips(
    features: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """bool [N, K]: the head's prediction changes when candidate n is mixed toward anchor k with the
    closed-form alpha of ``eps``.

    Args:
        features: candidate features z [N, D].
        logits: the head's logits of ``features`` [N, C] (W z + b); their argmax is y*.
        anchors: class anchors [K, D].
        weight: the linear head's weight W [C, D].
        eps: the bound on ||alpha|| (cap / sqrt(D) in the authors' code).

    Mixed logits are ``logits + eps * ||anchors_k - z|| * (W g / ||g||)``; a zero gradient never flips.
    """
    z = features.float()
    lg = logits.to(z)
    w = weight.to(z)
    g = prediction_loss_gradient(lg, w)
    g_norm = g.norm(dim=1, keepdim=True)
    u = torch.where(g_norm > 0, g / g_norm.clamp_min(torch.finfo(z.dtype).tiny), torch.zeros_like(g))
    du = u @ w.T  # [N, C]: logit change per unit step
    y = lg.argmax(1)
    a = anchors.to(z)
    n, k, c = len(z), len(a), lg.shape[1]
    step = max(1, _CHUNK_ELEMENTS // max(1, k * c))
    out = torch.empty(n, k, dtype=torch.bool, device=z.device)
    for s in range(0, n, step):
        t = eps * torch.cdist(z[s : s + step], a)  # [B, K] step lengths
        mixed = lg[s : s + step, None, :] + t[:, :, None] * du[s : s + step, None, :]
        out[s : s + step] = mixed.argmax(2) != y[s : s + step, None]
    return out


def grow_cap(
    flips_at: Callable[[float, torch.Tensor], torch.Tensor], n: int, alpha_cap: float, stop_above: int | None
) -> tuple[torch.Tensor, float]:
    """(flags bool [n], last cap): the authors' cap loop. cap = ``alpha_cap``, then + ``alpha_cap`` (summed
    step by step, as their ``alpha_cap +=``) while the previous cap < 1; the flags ``flips_at(cap, flags)``
    [n] of every cap so far are united (``flags``: those so far, which it need not test again); the loop stops
    once more than ``stop_above`` (the budget) are flagged."""
    if not alpha_cap > 0:
        raise ValueError(f"alpha_cap must be > 0, got {alpha_cap}")
    flags = torch.zeros(n, dtype=torch.bool)
    cap = 0.0
    while cap < 1.0:
        cap += alpha_cap
        new = flips_at(cap, flags)
        flags = flags.to(new.device) | new
        if stop_above is not None and int(flags.sum()) > stop_above:
            break
    return flags, cap


def alfamix_flags(
    features: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    weight: torch.Tensor,
    alpha_cap: float = 0.2,
    stop_above: int | None = None,
) -> tuple[torch.Tensor, float]:
    """(flags bool [N], last cap): ALFA-Mix's inconsistent candidates, as the authors' closed-form run.

    :func:`grow_cap` with eps = cap / sqrt(D) at each cap and the flags of :func:`mix_flips` over all
    anchors. Shapes as :func:`mix_flips`.
    """
    root_d = math.sqrt(features.shape[1])
    return grow_cap(
        lambda cap, _: mix_flips(features, logits, anchors, weight, cap / root_d).any(1),
        len(features), alpha_cap, stop_above,
    )  # fmt: skip


def learned_alpha_flips(
    features: torch.Tensor,
    anchor: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    reference: torch.Tensor,
    cap: float,
    generator: torch.Generator,
    lr: float = 0.1,
    iters: int = 5,
    l2_coef: float = 0.01,
    skip: torch.Tensor | None = None,
) -> torch.Tensor:
    """bool [N]: the prediction of some alpha met while learning alpha flips (the authors' ``learn_alpha``).

    Args:
        features: candidate features z [N, D]; ``anchor`` [D]: one class anchor.
        weight, bias: the linear head [C, D], [C] (or None).
        reference: predicted labels y* [N].
        cap: alpha is kept in [1e-8, ``cap``] elementwise.
        generator: draws the start alpha ~ N(cap / 2, (cap / 2)^2) [N, D], clamped to [1e-8, cap].
        lr, iters, l2_coef: ``iters`` rounds; each tests the current alpha, then takes one step of a fresh
            Adam (lr, then lr / 10 from round 2/3 * iters on) on sum(-CE(head(mix), y*) + l2_coef ||alpha||)
            and clamps. As theirs, the alpha after the last step is not tested.
        skip: bool [N], rows not to search (reported False). Rows are independent (the loss is a sum over
            rows and Adam is elementwise), and the start alphas of every row are drawn all the same, so the
            other rows' results do not depend on ``skip``.
    """
    z = features.float()
    with torch.inference_mode(False), torch.enable_grad():
        e, a = z.clone(), anchor.to(z).clone()
        w = weight.to(z).clone()
        b = None if bias is None else bias.to(z).clone()
        y = reference.to(z.device).clone()
        alpha = torch.normal(
            cap / 2, cap / 2, size=tuple(z.shape), generator=generator, device=generator.device
        )
        alpha = alpha.to(z).nan_to_num(nan=1.0).clamp(1e-8, cap)
        rows = None if skip is None else torch.nonzero(~skip.to(z.device)).flatten()
        if rows is not None:
            if len(rows) == 0:
                return torch.zeros(len(z), dtype=torch.bool, device=z.device)
            e, y, alpha = e[rows], y[rows], alpha[rows]
        flipped = torch.zeros(len(e), dtype=torch.bool, device=z.device)
        for i in range(int(iters)):
            l = alpha.clone().requires_grad_(True)  # noqa: E741 (the authors' name)
            opt = torch.optim.Adam([l], lr=lr if i < iters * 2 / 3 else lr / 10)
            out = F.linear((1 - l) * e + l * a, w, b)
            flipped |= out.detach().argmax(1) != y
            loss = -F.cross_entropy(out, y, reduction="none") + l2_coef * l.norm(dim=1)
            loss.sum().backward()
            opt.step()
            alpha = l.detach().clamp(1e-8, cap)
    if rows is None:
        return flipped
    return torch.zeros(len(z), dtype=torch.bool, device=z.device).index_fill_(0, rows[flipped], True)


def alfamix_flags_learned(
    features: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    generator: torch.Generator,
    alpha_cap: float = 0.03125,
    stop_above: int | None = None,
    lr: float = 0.1,
    iters: int = 5,
    l2_coef: float = 0.01,
) -> tuple[torch.Tensor, float]:
    """(flags bool [N], last cap): the authors' learned-alpha run (``--alpha_opt``, cap step 0.03125).

    :func:`grow_cap` over :func:`learned_alpha_flips` for each anchor of ``anchors [K, D]`` in order (start
    alphas drawn from ``generator`` cap by cap, anchor by anchor); y* = argmax ``logits [N, C]``. Unlike the
    closed form, the cap bounds each alpha coordinate and is not divided by sqrt(D).
    """
    y = logits.argmax(1)

    def flips_at(cap: float, done: torch.Tensor) -> torch.Tensor:
        out = done.to(features.device).clone()
        for anchor in anchors:  # rows flagged already (this cap or before) are not searched again
            out |= learned_alpha_flips(
                features, anchor, weight, bias, y, cap, generator, lr, iters, l2_coef, skip=out
            )
        return out

    return grow_cap(flips_at, len(features), alpha_cap, stop_above)
