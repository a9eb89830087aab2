"""Query by committee (Seung et al. 1992; Settles' survey sec. 3.2): disagreement of M models per cycle.

The committee is the model trained this cycle plus ``committee_size - 1`` fresh models that
``ctx.fit_model(seed)`` trains on the labeled set with the run's recipe, from seeds drawn from ``ctx.rng``
(so the committee is reproducible). Reusing the cycle's model saves one training; set
``include_trained_model: false`` to train all M members from new seeds instead. Members predict the candidates
with dropout off; each new member is dropped once its predictions are taken.
"""

from __future__ import annotations

import torch

from al_bench.errors import ALBenchError
from al_bench.inference import logits_and_features
from al_bench.ops import committee
from al_bench.strategies.base import ScoreStrategy, SelectionContext


class _CommitteeScore(ScoreStrategy):
    """A disagreement score of the committee's probabilities [M, N, C]."""

    def __init__(self, committee_size: int = 5, include_trained_model: bool = True) -> None:
        if int(committee_size) < 2:
            raise ALBenchError(f"{type(self).__name__}: committee_size must be >= 2, got {committee_size}")
        self.committee_size = int(committee_size)
        self.include_trained_model = bool(include_trained_model)

    def member_probs(self, ctx: SelectionContext) -> torch.Tensor:
        """Softmax probabilities [M, N, C] of the committee on ``ctx.candidates``."""
        if ctx.fit_model is None:
            raise ALBenchError(f"{type(self).__name__} trains a committee but this run provides no fit_model")
        probs = [ctx.probs()] if self.include_trained_model else []
        seeds = ctx.rng.integers(0, 2**62, size=self.committee_size - len(probs))
        for seed in seeds:
            member = ctx.fit_model(int(seed))
            logits, _ = logits_and_features(member, ctx.data, ctx.candidates, bf16=ctx.bf16)
            probs.append(logits.softmax(-1))
            del member
        return torch.stack(probs)

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
