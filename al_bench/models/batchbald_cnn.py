"""The MNIST CNN of Kirsch, van Amersfoort & Gal 2019 (BatchBALD), as batchbald_redux's ``BayesianCNN``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from al_bench.models.base import ALNet


class BatchBALDCNN(ALNet):
    """conv32(5x5)-Dropout2d-maxpool2-ReLU-conv64(5x5)-Dropout2d-maxpool2-ReLU-fc128-Dropout-ReLU-fc(C).

    Every dropout has rate ``dropout`` (0.5 in the paper). 1x28x28 -> 32x24x24 -> 32x12x12 -> 64x8x8 -> 64x4x4
    -> 1024 inputs to fc128. The convolution dropouts are ``nn.Dropout2d`` (one mask entry per channel, as
    redux's ``ConsistentMCDropout2d``); the fc dropout is elementwise (dropout before or after the ReLU is the
    same function). Convolutions are unpadded, as the original, when the input is at least 16x16; smaller
    inputs (8x8 digits) get padding 2 so that both convolutions fit.

    - ``trunk(x)`` -> conv1's output [B, 32, H', W'] (everything before the first dropout);
    - ``tail_features`` = the rest up to the ReLU after fc128 -> features [B, 128] (every dropout of the net);
    - ``head`` = fc(C).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"BatchBALDCNN needs image inputs [C, H, W], got in_shape {list(in_shape)}")
        channels, height, width = (int(s) for s in in_shape)
        padding = 0 if min(height, width) >= 16 else 2
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=padding)
        self.conv1_drop = nn.Dropout2d(dropout)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=padding)
        self.conv2_drop = nn.Dropout2d(dropout)
        with torch.no_grad():
            flat = self._conv_features(self.conv1(torch.zeros(1, channels, height, width))).shape[1]
        self.fc1 = nn.Linear(flat, 128)
        self.fc1_drop = nn.Dropout(dropout)
        self.feature_dim = 128
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def _conv_features(self, z: torch.Tensor) -> torch.Tensor:
        """conv1 output [B, 32, H', W'] -> flattened conv2 block output [B, 64 * h * w]."""
        h = F.relu(F.max_pool2d(self.conv1_drop(z), 2))
        h = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(h)), 2))
        return h.flatten(1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1_drop(self.fc1(self._conv_features(z))))
