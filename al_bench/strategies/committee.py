"""Query by committee (Seung et al. 1992; Settles' survey sec. 3.2): disagreement of M models per cycle.

The M members are M functions from the source that ``posterior`` names (:mod:`al_bench.posteriors.sources`).
The default, ``ensemble``, is the committee as it always was: the model trained this cycle plus
``committee_size - 1`` fresh models that ``ctx.fit_model(seed)`` trains on the labeled set with the run's
recipe, from seeds drawn from ``ctx.rng`` (so the committee is reproducible). Reusing the cycle's model saves
one training; set ``include_trained_model: false`` to train all M members from new seeds instead. Members
predict the candidates with dropout off. Any other source gives its M = ``committee_size`` functions
(``mc_dropout``: M consistent dropout masks of the cycle's model; ``snapshot``: M snapshots of one run; ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from al_bench.errors import ALBenchError
from al_bench.ops import committee
from al_bench.posteriors.sources import build_source
from al_bench.strategies.base import ScoreStrategy, SelectionContext


class _CommitteeScore(ScoreStrategy):
    """A disagreement score of the committee's probabilities [M, N, C].

    Args:
        committee_size: M, the number of functions whatever the source.
        include_trained_model: ``ensemble`` only: the cycle's model is member 1.
        posterior: the source of the members (default ``ensemble``).
        posterior_options: options of the sources (``include_trained_model`` is the key above).
    """

    def __init__(
        self,
        committee_size: int = 5,
        include_trained_model: bool = True,
        posterior: str = "ensemble",
        posterior_options: Mapping[str, Any] | None = None,
    ) -> None:
        if int(committee_size) < 2:
            raise ALBenchError(f"{type(self).__name__}: committee_size must be >= 2, got {committee_size}")
        self.committee_size = int(committee_size)
        self.include_trained_model = bool(include_trained_model)
        options = {**dict(posterior_options or {}), "include_trained_model": self.include_trained_model}
        if options.get("members") is not None:
            raise ALBenchError(
                f"{type(self).__name__}: committee_size is the number of members; "
                "drop posterior_options.members"
            )
        self.source = build_source(str(posterior), options)
        self.needs_mc_dropout = self.source.needs_mc_dropout

    def member_probs(self, ctx: SelectionContext) -> torch.Tensor:
        """Softmax probabilities [M, N, C] of the committee on ``ctx.candidates``."""
        return ctx.posterior_probs(self.source, self.committee_size).permute(1, 0, 2).contiguous()

    def score_committee(self, member_probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return self.score_committee(self.member_probs(ctx))


class VoteEntropy(_CommitteeScore):
    """Entropy of the members' hard votes V(y) / M."""

    def score_committee(self, member_probs: torch.Tensor) -> torch.Tensor:
        return committee.vote_entropy(member_probs)


class ConsensusEntropy(_CommitteeScore):
    """Entropy of the mean of the members' distributions (soft vote entropy)."""

    def score_committee(self, member_probs: torch.Tensor) -> torch.Tensor:
        return committee.consensus_entropy(member_probs)


class KLDivergence(_CommitteeScore):
    """Mean KL divergence of each member from the consensus (McCallum & Nigam 1998)."""

    def score_committee(self, member_probs: torch.Tensor) -> torch.Tensor:
        return committee.kl_divergence_to_consensus(member_probs)
