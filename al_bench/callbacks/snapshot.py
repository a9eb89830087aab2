"""Snapshot ensembles (Huang et al. 2017): a cyclic cosine learning rate and one weight copy per cycle.

The fit's S optimizer steps are split into M cycles at steps ``floor(k * S / M)``, k = 1..M (so there are
exactly M, as equal as S allows). Within a cycle of L steps, step i (0-based) uses

    lr(i) = lr0 / 2 * (cos(pi * i / L) + 1)

(restart at lr0, annealed towards 0), and the network's weights are copied after the cycle's last step.
Huang et al. write the cycle length as ceil(S / M), which can leave fewer than M cycles when S is not a
multiple of M; the boundaries above always give M.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch

from al_bench.errors import ALBenchError


def cycle_bounds(total_steps: int, cycles: int) -> list[int]:
    """Step index (exclusive) at which each of the ``cycles`` cycles ends: [M] ints, the last = total."""
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    if total_steps < cycles:
        raise ALBenchError(
            f"snapshot: {cycles} snapshots need at least {cycles} optimizer steps, the fit has {total_steps}:"
            " "
            "lower strategy.posterior_options.members or raise trainer.max_epochs"
        )
    return [(k * total_steps) // cycles for k in range(1, cycles + 1)]


def cyclic_cosine_lr(step: int, total_steps: int, cycles: int, lr0: float) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps`` split into ``cycles``."""
    bounds = cycle_bounds(total_steps, cycles)
    start = 0
    for end in bounds:
        if step < end:
            return lr0 / 2 * (math.cos(math.pi * (step - start) / (end - start)) + 1)
        start = end
    raise ValueError(f"step {step} is past the last step {total_steps - 1}")


class SnapshotEnsemble(pl.Callback):
    """Sets every parameter group's lr before each optimizer step by :func:`cyclic_cosine_lr` (lr0 = the
    group's initial lr) and keeps a copy of ``pl_module.net.state_dict()`` at the end of each cycle.

    It owns the learning rate: a run's scheduler is overridden. The total step count is
    ``trainer.max_epochs * trainer.num_training_batches``, so the fit must not stop early.
    ``snapshots`` holds the M copies once the fit ends.
    """

    key = "snapshots"

    def __init__(self, cycles: int) -> None:
        self.cycles = int(cycles)
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self.lrs: list[float] = []  # the lr of every step (first group), for inspection and tests
        self._lr0: list[float] = []
        self._bounds: set[int] = set()
        self._total = 0
        self._step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._total = int(trainer.max_epochs) * int(trainer.num_training_batches)
        self._bounds = set(cycle_bounds(self._total, self.cycles))
        self._lr0 = [float(g["lr"]) for g in self._optimizer(trainer).param_groups]
        self._step = 0
        self.snapshots, self.lrs = [], []

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for group, lr0 in zip(self._optimizer(trainer).param_groups, self._lr0):
            group["lr"] = cyclic_cosine_lr(self._step, self._total, self.cycles, lr0)
        self.lrs.append(float(self._optimizer(trainer).param_groups[0]["lr"]))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._step += 1
        if self._step in self._bounds:
            net = pl_module.net  # type: ignore[attr-defined]
            self.snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})

    def result(self) -> list[dict[str, torch.Tensor]]:
        return self.snapshots

    @staticmethod
    def _optimizer(trainer: pl.Trainer) -> torch.optim.Optimizer:
        optimizer = trainer.optimizers[0]
        return getattr(optimizer, "optimizer", optimizer)  # Lightning may wrap it
