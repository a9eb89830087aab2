"""Uncertainty sampling on the softmax of the trained model (single forward pass, dropout off)."""

from __future__ import annotations

import torch

from al_bench.ops import uncertainty
from al_bench.strategies.base import ScoreStrategy, SelectionContext


class LeastConfidence(ScoreStrategy):
    """Query the lowest top-class probability: score = 1 - max p."""

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return uncertainty.least_confidence(ctx.probs())


class MarginSampling(ScoreStrategy):
    """Query the smallest gap between the two most probable classes."""

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return uncertainty.margin(ctx.probs())


class EntropySampling(ScoreStrategy):
    """Query the highest predictive entropy."""

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return uncertainty.entropy(ctx.probs())
