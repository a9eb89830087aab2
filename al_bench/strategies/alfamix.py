"""ALFA-Mix (Parvaneh, Abbasnejad, Teney, Haffari, van den Hengel, Shi, CVPR 2022): active learning by
feature mixing.

1. Anchors: the mean penultimate feature of each class's labeled points
   (:func:`~al_bench.ops.alfamix.class_anchors`; a class with no labeled point: the mean of all of them).
2. Each candidate's features are interpolated toward every anchor and re-classified by the model's linear
   head; a candidate whose predicted label changes for some anchor is *inconsistent*. alpha comes from
   ``alpha: closed_form`` (default): the paper's Eq. 5 (:func:`~al_bench.ops.alfamix.alfamix_flags`),
   with ||alpha|| <= eps = cap / sqrt(D); or ``alpha: learned``: the authors' search (a few Adam steps from a
   random start, :func:`~al_bench.ops.alfamix.alfamix_flags_learned`), every alpha coordinate in
   [1e-8, cap]. As the authors' code, cap grows by ``alpha_cap`` (null: their 0.2 for the closed form,
   0.03125 for the search) up to 1 until more than ``budget`` candidates are inconsistent.
3. More inconsistent candidates than the budget: k-means (k = budget) of their L2-normalised features and the
   member nearest each centroid; otherwise all of them; the rest of the batch uniformly at random
   (:func:`~al_bench.ops.candidate_kmeans.select_flagged`).

Differences from the authors' code, and why: their k-means (scikit-learn, unseeded) is
:func:`~al_bench.ops.clustering.kmeans` seeded from ``ctx.rng``; their random fill draws with replacement from
the whole unlabeled pool with the global NumPy RNG (duplicates possible), ours draws distinct candidates from
``ctx.rng``; the start alphas of the search come from ``ctx.torch_generator()``, not the global torch RNG; the
closed form is evaluated as a step along the normalised gradient, without their 1e-8 guard, and a zero
gradient never flags (see :mod:`al_bench.ops.alfamix`).
"""

from __future__ import annotations

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.ops.alfamix import alfamix_flags, alfamix_flags_learned, class_anchors
from al_bench.ops.candidate_kmeans import select_flagged
from al_bench.strategies.base import SelectionContext, Strategy

#: alpha variants and the authors' cap step for each.
ALPHA_CAP_DEFAULTS = {"closed_form": 0.2, "learned": 0.03125}


class AlfaMix(Strategy):
    """ALFA-Mix: k-means over the candidates whose prediction flips when mixed toward a class anchor."""

    def __init__(
        self,
        alpha: str = "closed_form",
        alpha_cap: float | None = None,
        normalize: bool = True,
        learn_rate: float = 0.1,
        learn_iters: int = 5,
        l2_coef: float = 0.01,
    ) -> None:
        if alpha not in ALPHA_CAP_DEFAULTS:
            raise ALBenchError(
                f"alfamix alpha={alpha!r} is unknown: choose one of {list(ALPHA_CAP_DEFAULTS)}"
            )
        if alpha_cap is not None and not 0.0 < float(alpha_cap) <= 1.0:
            raise ALBenchError(
                f"alfamix alpha_cap must be in (0, 1] or null (the variant's), got {alpha_cap}"
            )
        if not float(learn_rate) > 0 or int(learn_iters) < 1 or not float(l2_coef) >= 0:
            raise ALBenchError(
                "alfamix needs learn_rate > 0, learn_iters >= 1 and l2_coef >= 0, got "
                f"{learn_rate}, {learn_iters}, {l2_coef}"
            )
        self.alpha = alpha
        self.alpha_cap = ALPHA_CAP_DEFAULTS[alpha] if alpha_cap is None else float(alpha_cap)
        self.normalize = bool(normalize)
        self.learn_rate = float(learn_rate)
        self.learn_iters = int(learn_iters)
        self.l2_coef = float(l2_coef)
        #: how many candidates the last selection flagged, and the cap it stopped at (for inspection)
        self.last_n_flagged: int | None = None
        self.last_cap: float | None = None

    def select(self, ctx: SelectionContext) -> np.ndarray:
        device = ctx.device
        z = ctx.features().to(device)
        logits = ctx.logits().to(device)
        anchors = class_anchors(
            ctx.labeled_features().to(device), ctx.labeled_labels().to(device), int(ctx.data.num_classes)
        )
        head = ctx.model.head
        weight = head.weight.detach().to(device, torch.float32)
        if self.alpha == "closed_form":
            flags, cap = alfamix_flags(z, logits, anchors, weight, self.alpha_cap, stop_above=ctx.budget)
        else:
            bias = None if head.bias is None else head.bias.detach().to(device, torch.float32)
            flags, cap = alfamix_flags_learned(
                z, logits, anchors, weight, bias, ctx.torch_generator(device), self.alpha_cap, ctx.budget,
                lr=self.learn_rate, iters=self.learn_iters, l2_coef=self.l2_coef,
            )  # fmt: skip
        self.last_n_flagged, self.last_cap = int(flags.sum()), cap
        pos = select_flagged(
            z, flags, ctx.budget, ctx.torch_generator(device), ctx.rng, normalize=self.normalize
        )
        return ctx.candidates[pos]
