"""VGG-11 / VGG-16 with batch norm and the CIFAR-style classifier (512 features -> dropout -> linear head)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from al_bench.models.base import StagedConvNet

# Conv widths per stage; every stage ends with a 2x2 max-pool (Simonyan & Zisserman 2015, configs A and D).
_STAGES: dict[int, tuple[tuple[int, ...], ...]] = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}


class VGG(StagedConvNet):
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
        self.stem = nn.Identity()
        self.stages = nn.ModuleList(stages)
        self._build_head(channels, num_classes, dropout)
        self.depth = int(depth)


class VGG11(VGG):
    """VGG-11 with batch norm (BADGE's VGG experiments)."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__(in_shape, num_classes, depth=11, dropout=dropout)


class VGG16(VGG):
    """VGG-16 with batch norm."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, dropout: float = 0.5) -> None:
        super().__init__(in_shape, num_classes, depth=16, dropout=dropout)
