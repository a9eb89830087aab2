"""Deep ensembles: T independently trained networks (Lakshminarayanan et al. 2017; Beluch et al. 2018: N = 5).

Member t is one function of every input: its softmax in eval mode (dropout off, batch norm frozen).
The cycle's model is member 1 unless ``include_trained_model`` is false (it saves one training); the others
come from ``ctx.fit_model(seed)`` with seeds drawn from ``ctx.rng`` in one draw, exactly as the committee
strategies always trained theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from al_bench.data.base import ALDataModule
from al_bench.inference import logits_and_features
from al_bench.models.base import ALNet
from al_bench.posteriors.base import PosteriorSource, fit_member, member_seeds

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


class MembersPosterior:
    """T networks as T functions: ``probs`` -> [N, T, C] (float32, CPU), member-major along T."""

    def __init__(self, members: Sequence[ALNet], bf16: bool = False) -> None:
        if not members:
            raise ValueError("a members posterior needs at least one network")
        self.members = list(members)
        self.n_samples = len(self.members)
        self.bf16 = bf16

    def probs(self, data: ALDataModule, indices: np.ndarray, split: str = "train") -> torch.Tensor:
        per_member = [
            logits_and_features(m, data, indices, split=split, bf16=self.bf16)[0].softmax(-1)
            for m in self.members
        ]
        return torch.stack(per_member, dim=1)


class EnsembleSource(PosteriorSource):
    """``strategy.posterior=ensemble``: T independently trained members (see the module docstring)."""

    name = "ensemble"

    def __init__(self, include_trained_model: bool = True) -> None:
        self.include_trained_model = bool(include_trained_model)

    def draw(self, ctx: SelectionContext, n_samples: int) -> MembersPosterior:
        members = [ctx.model] if self.include_trained_model else []
        for seed in member_seeds(ctx, n_samples - len(members)):
            members.append(fit_member(ctx, self.name, seed))
        return MembersPosterior(members, bf16=ctx.bf16)
