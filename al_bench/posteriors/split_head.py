"""Split-head ensembles (Lee et al. 2015's multi-head nets, one of Beluch et al. 2018's implicit ensembles):
one network whose trunk and tail are shared by T linear heads, trained jointly; head t is function t.

The network is a fresh one (``ctx.fit_model``): its own ``head`` is head 1 and :class:`SplitHeads` carries
heads 2..T as the fit's auxiliary module, so the loss is the sum of the T heads' cross-entropies on the same
penultimate features (``net.intermediate_features(x)[-1]``, dropout active in training). The extra heads are
initialised like ``nn.Linear`` from a generator seeded by ``ctx.rng``. One training besides the cycle's model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from al_bench.data.base import ALDataModule
from al_bench.inference import logits_and_features
from al_bench.models.base import ALNet
from al_bench.posteriors.base import PosteriorSource, fit_member, member_seeds

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


class SplitHeads(nn.Module):
    """``n_heads`` extra linear heads [D -> C]: aux of :func:`al_bench.training.train_model`."""

    def __init__(self, feature_dim: int, num_classes: int, n_heads: int, generator: torch.Generator) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(feature_dim, num_classes) for _ in range(n_heads))
        bound = 1 / math.sqrt(feature_dim)  # nn.Linear's default init, from an explicit generator
        with torch.no_grad():
            for head in self.heads:
                head.weight.uniform_(-bound, bound, generator=generator)
                head.bias.uniform_(-bound, bound, generator=generator)

    def training_loss(
        self,
        inter: list[torch.Tensor],
        logits: torch.Tensor,
        per_sample_loss: torch.Tensor,
        y: torch.Tensor,
        epoch: int,
        max_epochs: int,
    ) -> torch.Tensor:
        """Sum over the extra heads of their mean cross-entropy on the shared features ``inter[-1]``."""
        h = inter[-1]
        return sum((F.cross_entropy(head(h), y) for head in self.heads), h.new_zeros(()))


class SplitHeadPosterior:
    """Heads [net.head, *extra] on one pass of ``net.features``: ``probs`` -> [N, T, C] (float32, CPU)."""

    def __init__(self, net: ALNet, extra: SplitHeads, bf16: bool = False) -> None:
        self.net = net
        self.heads = [net.head, *extra.heads]
        self.n_samples = len(self.heads)
        self.bf16 = bf16

    @torch.inference_mode()
    def probs(self, data: ALDataModule, indices: np.ndarray, split: str = "train") -> torch.Tensor:
        _, features = logits_and_features(self.net, data, indices, split=split, bf16=self.bf16)  # [N, D]
        logits = [F.linear(features, _cpu(h.weight), _cpu(h.bias)) for h in self.heads]  # T x [N, C]
        return torch.stack(logits, dim=1).softmax(-1)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().cpu()


class SplitHeadSource(PosteriorSource):
    """``strategy.posterior=split_head``: one fresh network with T heads on a shared trunk."""

    name = "split_head"

    def draw(self, ctx: SelectionContext, n_samples: int) -> SplitHeadPosterior:
        (seed,) = member_seeds(ctx, 1)
        model = ctx.model
        extra = SplitHeads(model.feature_dim, model.num_classes, n_samples - 1, ctx.torch_generator())
        extra.to(ctx.device)
        net = fit_member(ctx, self.name, seed, aux=extra)
        return SplitHeadPosterior(net, extra, bf16=ctx.bf16)
