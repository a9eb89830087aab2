"""Diversity strategies: core-set k-center greedy (Sener & Savarese 2018) and BADGE (Ash et al. 2020)."""

from __future__ import annotations

import numpy as np
import torch

from al_bench.ops.diversity import badge_factors, badge_kmeanspp, kcenter_greedy
from al_bench.strategies.base import SelectionContext, Strategy


class CoreSet(Strategy):
    """k-center greedy on penultimate features: the labeled set's features are the initial centres, and
    each pick is the candidate farthest from every centre so far."""

    def __init__(self, chunk_size: int = 1024) -> None:
        self.chunk_size = int(chunk_size)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        labeled = ctx.labeled_features()
        features = torch.cat([labeled, ctx.features()]).to(ctx.device)
        n_labeled = len(labeled)
        rows = kcenter_greedy(features, torch.arange(n_labeled), ctx.budget, chunk_size=self.chunk_size)
        return ctx.candidates[(rows - n_labeled).cpu().numpy()]


class BADGE(Strategy):
    """k-means++ seeding on gradient embeddings ``(p - onehot(argmax p)) (outer) h``, from their factors."""

    def select(self, ctx: SelectionContext) -> np.ndarray:
        a, h = badge_factors(ctx.probs().to(ctx.device), ctx.features().to(ctx.device))
        rows = badge_kmeanspp(a, h, ctx.budget, generator=ctx.torch_generator(ctx.device))
        return ctx.candidates[rows.cpu().numpy()]
