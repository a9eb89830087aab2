"""Multi-layer perceptron with dropout, for the bundled digits and tabular-like inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import ALNet


class MLP(ALNet):
    """Flatten -> [Linear -> ReLU -> Dropout] * len(hidden) -> Linear.

    The trunk is the first Linear+ReLU (no dropout before it); the tail holds every dropout layer.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("MLP needs at least one hidden layer")
        in_dim = int(math.prod(in_shape))
        self.first = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden[0]), nn.ReLU())
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for d_in, d_out in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
        self.rest = nn.Sequential(*layers)
        self.feature_dim = int(hidden[-1])
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(z)
