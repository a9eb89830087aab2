"""Learning-dynamics strategies: scores from the labels predicted on the pool after each training epoch."""

from __future__ import annotations

import numpy as np
import torch

from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.ops.dynamics import forgetting_counts, label_dispersion
from al_bench.strategies.base import ScoreStrategy, SelectionContext

KEY = "pool_predictions"


def _history(ctx: SelectionContext, name: str) -> torch.Tensor:
    """The recorded [N, T] label history of ``ctx.candidates``, checked."""
    recorded = ctx.dynamics.get(KEY)
    if recorded is None:
        raise RuntimeError(
            f"{name}: no pool predictions were recorded during training (ctx.dynamics[{KEY!r}])"
        )
    if not np.array_equal(recorded["indices"], ctx.candidates):
        raise RuntimeError(f"{name}: pool predictions were recorded on other indices than the candidates")
    history = recorded["history"]
    if history.shape[1] == 0:
        raise ALBenchError(
            f"{name}: no epoch was recorded; every_n_epochs must not exceed the number of training epochs"
        )
    return history


class _PoolDynamics(ScoreStrategy):
    every_n_epochs: int
    augment_pool: bool = False

    def training_callbacks(self, data: ALDataModule, candidates: np.ndarray, cycle: int) -> list:
        return [
            PoolPredictionRecorder(
                data,
                candidates,
                every_n_epochs=self.every_n_epochs,
                augment=self.augment_pool,
                key=KEY,
                seed=cycle,
            )
        ]


class LabelDispersion(_PoolDynamics):
    """Bengar et al. 2021: query the samples whose predicted label changed most across training epochs,
    ``1 - f_x / T`` (see :func:`al_bench.ops.dynamics.label_dispersion` for the options)."""

    def __init__(
        self,
        every_n_epochs: int = 1,
        augment_pool: bool = False,
        mode_window: int | None = None,
        denominator: str = "epochs",
    ) -> None:
        if every_n_epochs < 1:
            raise ALBenchError(f"label_dispersion: every_n_epochs must be >= 1, got {every_n_epochs}")
        if mode_window is not None and mode_window < 1:
            raise ALBenchError(f"label_dispersion: mode_window must be >= 1 or null, got {mode_window}")
        if denominator not in ("epochs", "epochs_plus_one"):
            raise ALBenchError(
                f"label_dispersion: unknown denominator {denominator!r}; valid: epochs, epochs_plus_one"
            )
        self.every_n_epochs = int(every_n_epochs)
        self.augment_pool = bool(augment_pool)
        self.mode_window = None if mode_window is None else int(mode_window)
        self.denominator = denominator

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return label_dispersion(_history(ctx, "label_dispersion"), self.mode_window, self.denominator)


class Forgetting(_PoolDynamics):
    """Query the samples whose predicted label flipped most often between consecutive recorded epochs."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ALBenchError(f"forgetting: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = int(every_n_epochs)

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return forgetting_counts(_history(ctx, "forgetting"))
