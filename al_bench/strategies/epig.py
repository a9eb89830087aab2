"""EPIG (Bickford Smith et al., AISTATS 2023): query the candidates whose labels are most informative about
the predictions on target inputs, see :func:`al_bench.ops.epig.epig_from_probs`.

The target distribution is the unlabeled pool (the paper's setting where p*(x*) matches the pool):
``n_target_inputs`` target inputs x* are drawn uniformly without replacement from
``ctx.pool.unlabeled_indices`` with ``ctx.rng`` each selection. Candidates and targets are scored through the
same T functions of the ``posterior`` source (``ctx.posterior_probs``, drawn once per selection): consistent
MC-dropout masks by default (exactly ``ctx.mc_probs(n_samples)``), or the members of an ensemble, snapshots,
BBB weight samples... (:mod:`al_bench.posteriors.sources`), as the joint p(y, y*) = mean_t p_t(y) p_t(y*)
requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.ops.epig import epig_from_probs
from al_bench.strategies.base import ScoreStrategy, SelectionContext
from al_bench.strategies.bayesian import PosteriorSamples


class EPIG(PosteriorSamples, ScoreStrategy):
    """Expected predictive information gain with the unlabeled pool as the target distribution.

    Args:
        n_samples: T consistent functions of the sampling sources (MC-dropout passes: the authors use 100;
            BBB weight samples).
        n_target_inputs: M target inputs drawn from the unlabeled pool per selection (the authors' default
            is 100); None or more than the unlabeled pool holds: every unlabeled input.
        posterior: where the T functions come from, see :mod:`al_bench.posteriors.sources`.
        posterior_options: the sources' options (``members``: T of the sources that train networks).
    """

    def __init__(
        self,
        n_samples: int = 100,
        n_target_inputs: int | None = 100,
        posterior: str = "mc_dropout",
        posterior_options: Mapping[str, Any] | None = None,
    ) -> None:
        if n_target_inputs is not None and int(n_target_inputs) < 1:
            raise ALBenchError(f"EPIG: n_target_inputs must be None or >= 1, got {n_target_inputs}")
        self._init_posterior(n_samples, posterior, posterior_options)  # refuses n_samples < 1, names EPIG
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
        probs_pool = self.posterior_probs(ctx)  # [N, T, C]; draws the T functions
        probs_targ = ctx.posterior_probs(self.source, self.n_functions, self.target_indices(ctx))  # [M, T, C]
        return epig_from_probs(probs_pool.to(ctx.device), probs_targ.to(ctx.device)).cpu()
