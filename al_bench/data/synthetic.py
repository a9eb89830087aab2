"""Seeded class-conditional synthetic images of any shape and size (tests, scale benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from al_bench.data.base import ArrayDataset


def make_synthetic(
    n_train: int = 2000,
    n_test: int = 500,
    num_classes: int = 10,
    shape: Sequence[int] = (1, 8, 8),
    separation: float = 1.0,
    noise: float = 1.0,
    as_uint8: bool = False,
    seed: int = 0,
    **_: object,
) -> ArrayDataset:
    """Gaussian classes: x = separation * mu_y + noise * eps, mu_y ~ N(0, I) per class, balanced labels.

    ``as_uint8`` stores images as uint8 (CIFAR-like memory footprint and the same normalisation path as
    real image datasets). The same ``seed`` always gives the same dataset.
    """
    g = torch.Generator().manual_seed(int(seed))
    shape = tuple(int(s) for s in shape)
    means = torch.randn(num_classes, *shape, generator=g)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        x = separation * means[y] + noise * torch.randn(n, *shape, generator=g)
        return x, y

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    mean = std = None
    if as_uint8:
        lo, hi = x_tr.min(), x_tr.max()
        x_tr = ((x_tr - lo) / (hi - lo) * 255).clamp(0, 255).to(torch.uint8)
        x_te = ((x_te - lo) / (hi - lo) * 255).clamp(0, 255).to(torch.uint8)
        mean, std = (0.5,) * shape[0], (0.25,) * shape[0]
    return ArrayDataset("synthetic", x_tr, y_tr, x_te, y_te, num_classes, mean=mean, std=std)
