"""The LightningModule that trains an :class:`ALNet` on the labeled set of one AL cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from al_bench.errors import TrainingDivergedError
from al_bench.models.base import ALNet

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


class ALModule(pl.LightningModule):
    """Cross-entropy training of ``net`` (+ an optional auxiliary module, e.g. LL4AL's loss predictor).

    ``training_step`` returns per-sample outputs (``per_sample_loss``, ``logits``, ``index``) so that
    callbacks can record learning dynamics from ``on_train_batch_end``. Batches are ``(x, y, global index)``.
    Nothing is logged per step (logging costs more than an MLP step); the epoch's mean loss and accuracy
    are kept in ``epoch_loss`` / ``epoch_acc`` for callbacks (e.g. stop at a train accuracy).
    """

    def __init__(
        self,
        net: ALNet,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        aux: nn.Module | None = None,
        gradient_clip_val: float | None = None,
    ) -> None:
        super().__init__()
        # Manual optimization: one zero_grad/backward/step per batch, as the hand-written loop does; it skips
        # Lightning's closure machinery, which costs as much as a small model's whole step.
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self.net = net
        self.aux = aux
        self._optimizer_factory = optimizer
        self._scheduler_factory = scheduler
        self.epoch_loss = float("nan")
        self.epoch_acc = float("nan")
        self._loss_sum: torch.Tensor | None = None
        self._correct: torch.Tensor | None = None
        self._seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        x, y, index = batch
        if self.aux is not None:
            inter = self.net.intermediate_features(x)
            logits = self.net.head(inter[-1])
        else:
            logits = self.net(x)
        per_sample = F.cross_entropy(logits, y, reduction="none")
        loss = per_sample.mean()
        if self.aux is not None:
            loss = loss + self.aux.training_loss(
                inter, logits, per_sample, y, self.current_epoch, self.trainer.max_epochs
            )
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val)
        optimizer.step()
        detached = loss.detach()
        correct = (logits.detach().argmax(1) == y).sum()
        if self._loss_sum is None:
            self._loss_sum, self._correct = detached * len(y), correct
        else:
            self._loss_sum += detached * len(y)
            self._correct += correct
        self._seen += len(y)
        return {
            "loss": loss,
            "per_sample_loss": per_sample.detach(),
            "logits": logits.detach(),
            "index": index,
        }

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._correct, self._seen = None, None, 0

    def on_train_epoch_end(self) -> None:
        if self._scheduler_factory is not None:
            self.lr_schedulers().step()
        if self._seen:
            self.epoch_loss = float(self._loss_sum) / self._seen
            self.epoch_acc = float(self._correct) / self._seen
            if not torch.isfinite(torch.tensor(self.epoch_loss)):
                raise TrainingDivergedError(
                    f"training loss became {self.epoch_loss} at epoch {self.current_epoch}: "
                    "lower the learning rate (trainer.optimizer.lr) or check the data"
                )

    def configure_optimizers(self) -> Any:
        params = list(self.net.parameters()) + (list(self.aux.parameters()) if self.aux is not None else [])
        optimizer = self._optimizer_factory(params)
        if self._scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self._scheduler_factory(optimizer)}}


class StopAtTrainAccuracy(pl.Callback):
    """Stop training once an epoch's training accuracy reaches ``threshold`` (BADGE trains to 99%)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: ALModule) -> None:
        if pl_module.epoch_acc >= self.threshold:
            trainer.should_stop = True
