"""Early stopping on validation accuracy with the best epoch's weights restored (Kirsch et al. 2019)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from al_bench.data.base import ALDataModule
from al_bench.inference import evaluate

Score = Callable[[nn.Module], float]


def val_accuracy(data: ALDataModule) -> Score:
    """``score(net)`` = accuracy on ``data.val_indices`` (eval mode: dropout off, batch norm frozen)."""

    def score(net: nn.Module) -> float:
        return float(evaluate(net, data, split="train", indices=data.val_indices)["acc"])

    return score


class ValidationEarlyStopping(pl.Callback):
    """After every training epoch score ``pl_module.net``; stop after ``patience`` epochs without improvement
    and load the best epoch's weights back at the end of the fit.

    An epoch improves when its score is strictly above the best so far (ties do not), as the BatchBALD
    code's ``RestoringScoreGuard`` does. With patience p, a best epoch k followed by p epochs that
    do not beat it stops after epoch k + p, i.e. k + p + 1 epochs run. The best epoch's
    ``pl_module.state_dict()`` (the net and any auxiliary module) is kept on the CPU and loaded back in
    ``on_train_end``, also when ``max_epochs`` ends the fit first. ``best_score`` / ``best_epoch`` say what
    was restored; the state lives in :meth:`state_dict` / :meth:`load_state_dict`.
    """

    def __init__(self, patience: int, score: Score) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = int(patience)
        self.score = score
        self.reset()

    def reset(self) -> None:
        """Forget the previous fit (a fresh Trainer per cycle may reuse the callback)."""
        self.best_score = -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    # ---- Lightning hooks -------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":  # before Lightning restores a checkpoint's callback state
            self.reset()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        score = float(self.score(pl_module.net))
        if score > self.best_score:
            self.best_score, self.best_epoch, self.wait = score, trainer.current_epoch, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)

    # ---- state -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.patience = int(state_dict["patience"])
        self.best_score = float(state_dict["best_score"])
        self.best_epoch = int(state_dict["best_epoch"])
        self.wait = int(state_dict["wait"])
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_state = state_dict["best_state"]
