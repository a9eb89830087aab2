"""Bayesian strategies on posterior samples [N, T, C] (Gal, Islam & Ghahramani 2017; Kirsch et al. 2019).

Every strategy reads ``ctx.posterior_probs(source, T)`` [N, T, C]: T consistent functions from the source
that ``posterior`` names (:mod:`al_bench.posteriors.sources`). The default, ``mc_dropout``, is T =
``n_samples`` consistent MC-dropout functions (one mask per dropout layer per pass, shared by every candidate;
the trunk runs once, the dropout tail T times), exactly ``ctx.mc_probs(n_samples)``. Sources that train
networks (ensemble, dee, snapshot, split_head) give T = ``posterior_options.members`` functions; ``bbb`` gives
``n_samples`` weight samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from al_bench.errors import ALBenchError, BudgetError
from al_bench.ops import bayesian
from al_bench.ops.batchbald import batchbald
from al_bench.posteriors.base import check_members
from al_bench.posteriors.sources import build_source
from al_bench.strategies.base import ScoreStrategy, SelectionContext, Strategy, top_k

#: T of the sources that train networks, unless ``posterior_options.members`` says otherwise (Beluch et al.
#: 2018 use ensembles of 5)
DEFAULT_MEMBERS = 5


def _check_n_samples(name: str, n_samples: int) -> int:
    if int(n_samples) < 1:
        raise ALBenchError(f"{name}: n_samples must be >= 1 MC-dropout passes, got {n_samples}")
    return int(n_samples)


class PosteriorSamples:
    """The ``posterior`` option of the Bayesian strategies: which source, and how many functions T."""

    def _init_posterior(
        self, n_samples: int, posterior: str, posterior_options: Mapping[str, Any] | None
    ) -> None:
        self.n_samples = _check_n_samples(type(self).__name__, n_samples)
        options = dict(posterior_options or {})
        self.source = build_source(str(posterior), options)
        members = options.get("members")
        self.members = check_members(self.source.name, DEFAULT_MEMBERS if members is None else members)
        self.needs_mc_dropout = self.source.needs_mc_dropout

    @property
    def n_functions(self) -> int:
        """T: ``members`` for the sources that train networks, else ``n_samples``."""
        return self.members if self.source.t_is_members else self.n_samples

    def posterior_probs(self, ctx: SelectionContext) -> torch.Tensor:
        """The candidates' probabilities [N, T, C] under the source's T functions."""
        return ctx.posterior_probs(self.source, self.n_functions)


class _PosteriorScore(PosteriorSamples, ScoreStrategy):
    """A score of the posterior samples [N, T, C] of the candidates (MC dropout by default).

    Args:
        n_samples: T for the sampling sources (MC-dropout passes; BBB weight samples).
        posterior: the source name, see :mod:`al_bench.posteriors.sources`.
        posterior_options: options of the sources (``members``: T of the trained ones).
    """

    def __init__(
        self,
        n_samples: int = 20,
        posterior: str = "mc_dropout",
        posterior_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._init_posterior(n_samples, posterior, posterior_options)

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return self.score_mc(self.posterior_probs(ctx))


class BALD(_PosteriorScore):
    """Mutual information of label and weights, H[mean_t p_t] - mean_t H[p_t] (Houlsby et al. 2011)."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.bald(mc_probs)


class VariationRatio(_PosteriorScore):
    """1 - (passes voting for the modal class) / T."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.variation_ratio(mc_probs)


class MeanStd(_PosteriorScore):
    """Mean over classes of the (population) std of p_c over the passes (Kampffmeyer et al. 2016)."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.mean_std(mc_probs)


class MCEntropy(_PosteriorScore):
    """Entropy of the MC-dropout mean prediction (max entropy in Gal et al. 2017)."""

    def score_mc(self, mc_probs: torch.Tensor) -> torch.Tensor:
        return bayesian.mc_entropy(mc_probs)


class BatchBALD(PosteriorSamples, Strategy):
    """Greedy BatchBALD (Kirsch et al. 2019), see :func:`al_bench.ops.batchbald.batchbald`.

    Args:
        n_samples: MC-dropout passes T (the sampling sources' T, see :class:`_PosteriorScore`).
        num_joint_samples: configurations sampled once the exact joint (C^k configurations) would exceed it.
        max_candidates: when set and smaller than the candidate set, only the ``max_candidates`` candidates
            with the highest BALD score enter the greedy search (each greedy step costs O(N * S * C)). This
            prefilter is a common practice with batchbald_redux on large pools, not part of the paper's
            algorithm; None (default) searches every candidate.
        posterior, posterior_options: where the T functions come from (default: consistent MC dropout).

    Candidates are shuffled with ``ctx.rng`` first, so exact ties fall to a random candidate. The greedy runs
    on the data device (CUDA when the data lives there).
    """

    def __init__(
        self,
        n_samples: int = 20,
        num_joint_samples: int = 10000,
        max_candidates: int | None = None,
        posterior: str = "mc_dropout",
        posterior_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._init_posterior(n_samples, posterior, posterior_options)
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
        mc = self.posterior_probs(ctx)
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
