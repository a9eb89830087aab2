"""Suggestive Annotation (Yang, Zhang, Chen, Zhang, Chen; MICCAI 2017), for classification.

1. Uncertainty: ``n_members`` models, each trained with the run's recipe on a bootstrap resample of the
   labeled set (|L| draws with replacement), predict the candidates; a candidate's uncertainty is the
   variance across members of its predicted class probabilities, averaged over the classes (the paper: the
   per-pixel variance across its bootstrapped FCNs, averaged over the image's pixels;
   :func:`al_bench.ops.max_cover.bootstrap_variance`).
2. The K = ceil(``top_k_factor`` * budget) most uncertain candidates form S_c (the paper: K = 16 for
   k = 8 per round, factor 2).
3. Greedy max-cover picks ``budget`` of S_c that maximise F(S_a, S_u) = sum_{j in S_u} max_{i in S_a}
   cos(x_i, x_j), with S_u = every candidate (the paper: all unannotated images, not only S_c; here
   ``ctx.candidates``, a random subset of the pool when ``budget.pool_subset`` is set) and x = the cycle's
   model's penultimate features (the paper: the mean over each feature map of the last encoder conv layer
   of an FCN; :func:`al_bench.ops.max_cover.greedy_max_cover`). Gain ties go to the more uncertain one.

Members are built with ``ctx.fit_model(seed, indices=resample)`` (the run's recipe on a bootstrap resample
of the labeled set). Seeds and resamples come from ``ctx.rng``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.inference import logits_and_features
from al_bench.models.base import ALNet
from al_bench.ops.max_cover import bootstrap_variance, greedy_max_cover
from al_bench.strategies.base import SelectionContext, Strategy, top_k


class SuggestiveAnnotation(Strategy):
    """Top-K by bootstrap-ensemble disagreement, then greedy max-cover of the candidates (see module doc)."""

    def __init__(self, n_members: int = 4, top_k_factor: float = 2.0) -> None:
        if int(n_members) < 2:
            raise ALBenchError(f"suggestive_annotation: n_members must be >= 2, got {n_members}")
        if float(top_k_factor) < 1:
            raise ALBenchError(f"suggestive_annotation: top_k_factor must be >= 1, got {top_k_factor}")
        self.n_members = int(n_members)
        self.top_k_factor = float(top_k_factor)

    def member_probs(self, ctx: SelectionContext) -> torch.Tensor:
        """Softmax probabilities [M, N, C] of the bootstrap members on ``ctx.candidates``."""
        if ctx.fit_model is None:
            raise ALBenchError(
                "suggestive_annotation trains a bootstrap ensemble but this run has no fit_model"
            )
        labeled = ctx.labeled
        if len(labeled) == 0:
            raise ALBenchError("suggestive_annotation needs a labeled set: set budget.init_size > 0")
        probs = []
        for seed in ctx.rng.integers(0, 2**62, size=self.n_members):
            resample = labeled[ctx.rng.integers(0, len(labeled), size=len(labeled))]
            member: ALNet = ctx.fit_model(int(seed), indices=resample)
            logits, _ = logits_and_features(member, ctx.data, ctx.candidates, bf16=ctx.bf16)
            probs.append(logits.softmax(-1))
            del member
        return torch.stack(probs)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        uncertainty = bootstrap_variance(self.member_probs(ctx))
        n_top = min(len(ctx.candidates), math.ceil(self.top_k_factor * ctx.budget))
        shortlist = top_k(uncertainty, n_top, ctx.rng)  # most uncertain first
        feats = ctx.features().to(ctx.device)
        picks = greedy_max_cover(feats[torch.as_tensor(shortlist, device=ctx.device)], feats, ctx.budget)
        return ctx.candidates[shortlist[picks.numpy()]]
