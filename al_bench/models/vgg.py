"""VGG-11 / VGG-16 with batch norm and the CIFAR-style classifier (512 features -> dropout -> linear head)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import ALNet

# Conv widths per stage; every stage ends with a 2x2 max-pool (Simonyan & Zisserman 2015, configs A and D).
_STAGES: dict[int, tuple[tuple[int, ...], ...]] = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}


class VGG(ALNet):
    """VGG with batch norm: five stages of [conv3x3-BN-ReLU] * k + max-pool, global average pooling to
    [B, 512], dropout, linear head (the CIFAR variant: no 4096-wide FC layers).

    - ``trunk(x)`` -> pooled conv features [B, 512] (deterministic);
    - ``tail_features`` = dropout (``nn.Identity`` when ``dropout == 0``): every dropout of the net;
    - ``intermediate_features(x)`` -> the global-average-pooled output of the first four stages, then the
      penultimate features [B, 512] (== ``features(x)``).

    Max-pools use ``ceil_mode`` and an adaptive average pool follows the last stage, so any input works
    (32x32 CIFAR gives a 1x1 map as in the usual CIFAR VGG; 28x28 gives 28-14-7-4-2-1).
    """

    def __init__(
        self, in_shape: Sequence[int], num_classes: int, depth: int = 11, dropout: float = 0.5
    ) -> None:
        super().__init__()
        if depth not in _STAGES:
            raise ValueError(f"VGG depth must be one of {sorted(_STAGES)}, got {depth}")
        channels = int(in_shape[0])
        stages = []
        for widths in _STAGES[depth]:
            layers: list[nn.Module] = []
            for width in widths:
                layers += [
                    nn.Conv2d(channels, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.depth = int(depth)
        self.feature_dim = channels
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def _stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], x
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


class VGG11(VGG):
    """VGG-11 with batch norm (BADGE's VGG experiments)."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__(in_shape, num_classes, depth=11, dropout=dropout)


class VGG16(VGG):
    """VGG-16 with batch norm."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__(in_shape, num_classes, depth=16, dropout=dropout)
