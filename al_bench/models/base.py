"""The interface every classifier in al_bench exposes to the loop and the strategies."""

from __future__ import annotations

import torch
from torch import nn


class ALNet(nn.Module):
    """A classifier split into stages that strategies rely on.

    ``forward(x) == tail(trunk(x))`` and ``tail(z) == head(dropout_stage(z))`` where

    - ``trunk(x) -> [B, ...]``: the deterministic part (no dropout): computed once for MC dropout;
    - ``tail(z) -> [B, C]``: everything after the trunk, holding every dropout layer of the net;
    - ``features(x) -> [B, D]``: penultimate features (the input of ``head``), dropout inactive in eval;
    - ``head``: the final ``nn.Linear(D, C)``.

    Subclasses set ``feature_dim`` and ``num_classes`` and implement ``trunk``, ``tail_features``.
    """

    feature_dim: int
    num_classes: int
    head: nn.Linear

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic part of the network: [B, *in_shape] -> [B, ...]."""
        raise NotImplementedError

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        """From the trunk output to penultimate features [B, D] (may hold dropout)."""
        raise NotImplementedError

    def tail(self, z: torch.Tensor) -> torch.Tensor:
        """From the trunk output to logits [B, C]."""
        return self.head(self.tail_features(z))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [B, D]."""
        return self.tail_features(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, C]."""
        return self.head(self.features(x))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, C], features [B, D]) in one pass."""
        h = self.features(x)
        return self.head(h), h

    def intermediate_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate activations for auxiliary modules (e.g. LL4AL's loss predictor).

        Default: the trunk output and the penultimate features, flattened to [B, *] each.
        """
        z = self.trunk(x)
        return [z.flatten(1), self.tail_features(z)]


def has_dropout(module: nn.Module) -> bool:
    """True when ``module`` holds any dropout layer (needed for MC dropout)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules())


def enable_dropout_only(module: nn.Module) -> None:
    """Put ``module`` in eval mode except its dropout layers (MC dropout; batch norm stays in eval)."""
    module.eval()
    for m in module.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train()


class StagedConvNet(ALNet):
    """A conv net as ``stem -> stages -> global pool -> dropout -> head`` (ResNet, VGG).

    Subclasses build ``stem`` (``nn.Identity()`` when there is none) and ``stages`` (an ``nn.ModuleList``),
    then call ``_build_head``. The trunk ends at the pooled features, so every dropout layer is in the tail.
    ``intermediate_features`` are the pooled outputs of each stage (LL4AL's loss-prediction inputs), the
    last one passed through the tail.
    """

    stem: nn.Module
    stages: nn.ModuleList
    pool: nn.Module
    dropout: nn.Module

    def _build_head(self, feature_dim: int, num_classes: int, dropout: float) -> None:
        """Global average pool -> [B, feature_dim], dropout (Identity when 0), linear head to num_classes."""
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def _stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each stage, [B, C_s, H_s, W_s]."""
        out, h = [], self.stem(x)
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self._stage_outputs(x)[-1])

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.dropout(z)

    def intermediate_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        pooled = [self.pool(m) for m in self._stage_outputs(x)]
        return [*pooled[:-1], self.tail_features(pooled[-1])]
