"""Expected gradient length (Settles, Craven & Ray 2008) on the classifier's last linear layer."""

from __future__ import annotations

import torch

from al_bench.ops.egl import expected_gradient_length
from al_bench.strategies.base import ScoreStrategy, SelectionContext


class EGL(ScoreStrategy):
    """Query the largest expected norm of the head's cross-entropy gradient, sum_y p(y|x) ||grad L(x, y)||.

    Args:
        include_bias: the gradient over the head's weight and bias (True) or its weight only (False).
    """

    def __init__(self, include_bias: bool = True) -> None:
        self.include_bias = bool(include_bias)

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return expected_gradient_length(ctx.probs(), ctx.features(), bias=self.include_bias)
