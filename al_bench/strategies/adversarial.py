"""Building blocks shared by the adversarial strategies (VAAL, MAL): the authors' latent discriminator, their
weight init, and endless reshuffled index batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn


def latent_discriminator(latent_dim: int) -> nn.Sequential:
    """VAAL's adversary (Sinha et al. 2019): latent -> 512 -> 512 -> 512 -> 512 -> 1 with ReLUs, Kaiming-
    initialised; outputs a logit of "labeled" (their Sigmoid + BCELoss folded into BCEWithLogits: the same
    objective, numerically safer)."""
    layers: list[nn.Module] = []
    for d_in in (latent_dim, 512, 512, 512):
        layers += [nn.Linear(d_in, 512), nn.ReLU(True)]
    net = nn.Sequential(*layers, nn.Linear(512, 1))
    kaiming_init(net)
    return net


def kaiming_init(*blocks: nn.Module) -> None:
    """As VAAL's authors: Kaiming-normal weights and zero biases for Linear and Conv2d inside the blocks, BN
    to (1, 0); transposed convolutions and separate mu/logvar layers keep PyTorch's default init."""
    for block in blocks:
        for m in block.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def endless_batches(
    indices: np.ndarray, batch_size: int, generator: torch.Generator, drop_last: bool
) -> Iterator[torch.Tensor]:
    """Reshuffled passes over ``indices`` forever, in batches of min(batch_size, len(indices))."""
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    b = min(batch_size, len(idx))
    stop = len(idx) - len(idx) % b if drop_last else len(idx)
    while True:
        perm = idx[torch.randperm(len(idx), generator=generator)]
        for s in range(0, stop, b):
            yield perm[s : s + b]
