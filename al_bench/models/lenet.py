"""A LeNet-5-style CNN with dropout in its fully connected tail, for small grey or colour images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import ALNet


class LeNet(ALNet):
    """conv6(5x5)-ReLU-maxpool2-conv16(5x5)-ReLU-maxpool2 -> fc120-ReLU-dropout-fc84-ReLU-dropout -> head.

    Convolutions are zero-padded ("same") and pools use ``ceil_mode``, so any ``in_shape`` works:
    1x28x28 -> 16x7x7 (784 inputs), 3x32x32 -> 16x8x8, 1x8x8 -> 16x2x2; the size is computed at build time.

    - ``trunk(x)`` -> convolutions and pools, flattened [B, 16 * h * w];
    - ``tail_features`` = fc120-ReLU-dropout-fc84-ReLU-dropout -> features [B, 84] (every dropout of the net).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(int(in_shape[0]), 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(6, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *[int(s) for s in in_shape])).shape[1]
        self.fc = nn.Sequential(
            nn.Linear(flat, 120),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.feature_dim = 84
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)
