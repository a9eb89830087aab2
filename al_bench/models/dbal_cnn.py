"""The CNN of Gal, Islam & Ghahramani 2017 (Deep Bayesian Active Learning with Image Data), for MNIST."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import ALNet


class DBALCNN(ALNet):
    """conv32(4x4)-ReLU-conv32(4x4)-ReLU-maxpool2-dropout(0.25)-dense128-ReLU-dropout(0.5)-dense(C).

    Convolutions are unpadded ("valid", as in the original Keras model): 1x28x28 -> 32x25x25 -> 32x22x22
    -> max-pool 32x11x11 -> 3872 inputs to the dense layer; the size is computed for any ``in_shape``
    (1x8x8 gives 32x1x1).

    - ``trunk(x)`` -> convolutions + max-pool, flattened [B, 32 * h * w] (before the first dropout);
    - ``tail_features`` = dropout(0.25)-dense128-ReLU-dropout(0.5) -> features [B, 128].
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        channels: int = 32,
        kernel_size: int = 4,
        hidden: int = 128,
        dropout_conv: float = 0.25,
        dropout_fc: float = 0.5,
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(int(in_shape[0]), channels, kernel_size),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *[int(s) for s in in_shape])).shape[1]
        self.dense = nn.Sequential(
            nn.Dropout(dropout_conv), nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout_fc)
        )
        self.feature_dim = int(hidden)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.dense(z)
