"""Fixed-length training epochs over a small labeled set (BatchBALD's RandomFixedLengthSampler)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from al_bench import distributed

if TYPE_CHECKING:
    from al_bench.data.base import ALDataModule


class SampledBatches:
    """An iterable of (x [B, ...] float, y [B], index [B]) batches; one iteration is one epoch.

    Kirsch et al. 2019: an "epoch" is 5,056 samples however small the labeled set. As the authors'
    ``RandomFixedLengthSampler`` does, an epoch is ``randperm(n_samples) % len(indices)``: every labeled
    sample appears floor or ceil(n_samples / L) times, in a random order (balanced, not i.i.d. draws); a
    labeled set of ``n_samples`` or more gives one plain shuffled pass. The order comes from ``generator``.
    Batches of ``batch_size`` are served through :meth:`ALDataModule.get_batch` (``augment`` and ``labels`` as
    :class:`~al_bench.data.base.IndexBatches`). ``drop_last`` drops the final partial batch unless it is
    the only one. Under DDP every rank draws the same indices and takes its strided share.
    """

    def __init__(
        self,
        data: ALDataModule,
        indices: np.ndarray | torch.Tensor,
        n_samples: int,
        batch_size: int,
        generator: torch.Generator,
        augment: str = "none",
        labels: torch.Tensor | None = None,
        drop_last: bool = False,
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.data = data
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        if len(self.indices) == 0:
            raise ValueError("cannot draw training samples from an empty index set")
        self.n_samples = int(n_samples)
        self.batch_size = int(batch_size)
        self.generator = generator
        self.augment = augment
        self.labels = labels
        self.drop_last = drop_last and self._per_rank() >= self.batch_size

    @property
    def epoch_length(self) -> int:
        """Samples per epoch: ``n_samples``, or the labeled-set size when that is larger."""
        return max(self.n_samples, len(self.indices))

    def _per_rank(self) -> int:
        return -(-self.epoch_length // distributed.world_size())

    def __len__(self) -> int:
        n = self._per_rank()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def draw(self) -> torch.Tensor:
        """One epoch's global indices [epoch_length] (advances ``generator``)."""
        device = self.generator.device if self.generator is not None else torch.device("cpu")
        order = torch.randperm(self.epoch_length, generator=self.generator, device=device).cpu()
        return self.indices[order % len(self.indices)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        idx = self.draw()
        if distributed.world_size() > 1:
            idx = distributed.shard(idx, distributed.world_size(), distributed.rank())
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.data.get_batch(
                idx[start : start + self.batch_size],
                split="train",
                augment=self.augment,
                generator=self.generator,
                labels=self.labels,
            )
