"""ResNet-18 with the CIFAR stem (He et al. 2016), the variant in LL4AL, core-set, BADGE and ISAL code."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import StagedConvNet


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (1x1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(StagedConvNet):
    """ResNet-18, CIFAR stem: 3x3 conv stride 1, no max-pool; stages of [2, 2, 2, 2] BasicBlocks with
    64/128/256/512 channels (strides 1, 2, 2, 2); global average pooling -> 512 features -> dropout -> head.

    - ``trunk(x)`` -> pooled features [B, 512] (deterministic);
    - ``tail_features`` = dropout only (``nn.Identity`` when ``dropout == 0``);
    - ``intermediate_features(x)`` -> the global-average-pooled output of each stage, [B, 64], [B, 128],
      [B, 256], then the penultimate features [B, 512] (== ``features(x)``), for LL4AL's loss predictor;
      ``head(intermediate_features(x)[-1]) == forward(x)``, so one pass serves both.

    ``dropout`` defaults to 0 as in the training protocols of the papers; MC-dropout strategies (BALD,
    variation ratios) need ``model.dropout > 0`` on this network. Any ``in_shape`` [C, H, W] works
    (1-channel inputs, 28x28 or 8x8 images: the pooling is adaptive).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        in_channels = int(in_shape[0])
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU()
        )
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 2)
        stages, channels = [], 64
        for width, stride in zip(widths, strides):
            stages.append(nn.Sequential(BasicBlock(channels, width, stride), BasicBlock(width, width, 1)))
            channels = width
        self.stages = nn.ModuleList(stages)
        self._build_head(channels, num_classes, dropout)
