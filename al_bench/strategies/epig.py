"""EPIG (Bickford Smith et al., AISTATS 2023): query the candidates whose labels are most informative about
the predictions on target inputs, see :func:`al_bench.ops.epig.epig_from_probs`.

The target distribution is the unlabeled pool (the paper's setting where p*(x*) matches the pool):
``n_target_inputs`` target inputs x* are drawn uniformly without replacement from
``ctx.pool.unlabeled_indices`` with ``ctx.rng`` each selection. Candidates and targets are scored through
``ctx.mc_probs(n_samples, ...)``, whose posterior is cached per ``n_samples`` within one selection, so both
use the same T consistent MC-dropout functions, which the joint p(y, y*) = mean_t p_t(y) p_t(y*) requires.
"""

from __future__ import annotations

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.ops.epig import epig_from_probs
from al_bench.strategies.base import ScoreStrategy, SelectionContext


class EPIG(ScoreStrategy):
    """Expected predictive information gain with the unlabeled pool as the target distribution.

    Args:
        n_samples: T consistent MC-dropout functions (the authors use 100 for MC dropout).
        n_target_inputs: M target inputs drawn from the unlabeled pool per selection (the authors' default
            is 100); None or more than the unlabeled pool holds: every unlabeled input.
    """

    needs_mc_dropout = True

    def __init__(self, n_samples: int = 100, n_target_inputs: int | None = 100) -> None:
        if int(n_samples) < 1:
            raise ALBenchError(f"EPIG: n_samples must be >= 1 MC-dropout passes, got {n_samples}")
        if n_target_inputs is not None and int(n_target_inputs) < 1:
            raise ALBenchError(f"EPIG: n_target_inputs must be None or >= 1, got {n_target_inputs}")
        self.n_samples = int(n_samples)
        self.n_target_inputs = None if n_target_inputs is None else int(n_target_inputs)

    def target_indices(self, ctx: SelectionContext) -> np.ndarray:
        """Global indices [M] of the target inputs x*: uniform without replacement from the unlabeled pool."""
        unlabeled = ctx.pool.unlabeled_indices
        m = len(unlabeled) if self.n_target_inputs is None else min(self.n_target_inputs, len(unlabeled))
        if m == 0:
            raise ALBenchError("EPIG: the unlabeled pool is empty, there are no target inputs to draw")
        return np.sort(ctx.rng.choice(unlabeled, size=m, replace=False))

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        """EPIG [len(ctx.candidates)] (float64, nats) averaged over the drawn target inputs."""
        probs_pool = ctx.mc_probs(self.n_samples)  # [N, T, C]; draws the T functions
        probs_targ = ctx.mc_probs(self.n_samples, self.target_indices(ctx))  # [M, T, C], same functions
        return epig_from_probs(probs_pool.to(ctx.device), probs_targ.to(ctx.device)).cpu()
