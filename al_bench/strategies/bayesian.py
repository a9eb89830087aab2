"""Bayesian strategies on MC-dropout predictions (Gal, Islam & Ghahramani 2017; Kirsch et al. 2019).

Every strategy reads ``ctx.mc_probs(n_samples)`` [N, T, C]: T consistent MC-dropout functions (one mask per
dropout layer per pass, shared by every candidate; see :mod:`al_bench.posteriors.mc_dropout`); the trunk runs
once, the dropout tail T times.
"""

from __future__ import annotations

import numpy as np
import torch

from al_bench.errors import ALBenchError, BudgetError
from al_bench.ops import bayesian
from al_bench.ops.batchbald import batchbald
from al_bench.strategies.base import ScoreStrategy, SelectionContext, Strategy, top_k


def _check_n_samples(name: str, n_samples: int) -> int:
    if int(n_samples) < 1:
        raise ALBenchError(f"{name}: n_samples must be >= 1 MC-dropout passes, got {n_samples}")
    return int(n_samples)


class _MCDropoutScore(ScoreStrategy):
    """A score of the MC-dropout predictions [N, T, C] of the candidates."""

    needs_mc_dropout = True

    def __init__(self, n_samples: int = 20) -> None:
        self.n_samples = _check_n_samples(type(self).__name__, n_samples)

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return self.score_mc(ctx.mc_probs(self.n_samples))


class BALD(_MCDropoutScore):
    """Mutual information of label and weights, H[mean_t p_t] - mean_t H[p_t] (Houlsby et al. 2011)."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.bald(mc_probs)


class VariationRatio(_MCDropoutScore):
    """1 - (passes voting for the modal class) / T."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.variation_ratio(mc_probs)


class MeanStd(_MCDropoutScore):
    """Mean over classes of the (population) std of p_c over the passes (Kampffmeyer et al. 2016)."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.mean_std(mc_probs)


class MCEntropy(_MCDropoutScore):
    """Entropy of the MC-dropout mean prediction (max entropy in Gal et al. 2017)."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.mc_entropy(mc_probs)


class BatchBALD(Strategy):
    """Greedy BatchBALD (Kirsch et al. 2019), see :func:`al_bench.ops.batchbald.batchbald`.

    Args:
        n_samples: MC-dropout passes T.
        num_joint_samples: configurations sampled once the exact joint (C^k configurations) would exceed it.
        max_candidates: when set and smaller than the candidate set, only the ``max_candidates`` candidates
            with the highest BALD score enter the greedy search (each greedy step costs O(N * S * C)). This
            prefilter is a common practice with batchbald_redux on large pools, not part of the paper's
            algorithm; None (default) searches every candidate.

    Candidates are shuffled with ``ctx.rng`` first, so exact ties fall to a random candidate. The greedy runs
    on the data device (CUDA when the data lives there).
    """

    needs_mc_dropout = True

    def __init__(
        self, n_samples: int = 20, num_joint_samples: int = 10000, max_candidates: int | None = None
    ) -> None:
        self.n_samples = _check_n_samples("BatchBALD", n_samples)
        if int(num_joint_samples) < 1:
            raise ALBenchError(f"BatchBALD: num_joint_samples must be >= 1, got {num_joint_samples}")
        if max_candidates is not None and int(max_candidates) < 1:
            raise ALBenchError(f"BatchBALD: max_candidates must be None or >= 1, got {max_candidates}")
        self.num_joint_samples = int(num_joint_samples)
        self.max_candidates = None if max_candidates is None else int(max_candidates)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        n = len(ctx.candidates)
        if ctx.budget > n:
            raise BudgetError(f"BatchBALD: cannot select {ctx.budget} of {n} candidates")
        if self.max_candidates is not None and self.max_candidates < ctx.budget:
            raise ALBenchError(
                f"BatchBALD: max_candidates={self.max_candidates} is smaller than the budget {ctx.budget}"
            )
        mc = ctx.mc_probs(self.n_samples)
        if self.max_candidates is not None and self.max_candidates < n:
            positions = top_k(bayesian.bald(mc), self.max_candidates, ctx.rng)
        else:
            positions = ctx.rng.permutation(n)
        device = ctx.device
        picks, _ = batchbald(
            mc[torch.as_tensor(positions)].to(device),
            ctx.budget,
            self.num_joint_samples,
            generator=ctx.torch_generator(device),
        )
        return ctx.candidates[positions[picks.cpu().numpy()]]
