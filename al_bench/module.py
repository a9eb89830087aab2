"""The LightningModule that trains an :class:`ALNet` on the labeled set of one AL cycle."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from al_bench.errors import ALBenchError, TrainingDivergedError
from al_bench.models.base import ALNet

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]
CLIP_ALGORITHMS = ("norm", "value")


class ALModule(pl.LightningModule):
    """Cross-entropy training of ``net`` (+ an optional auxiliary module, e.g. LL4AL's loss predictor).

    ``training_step`` returns per-sample outputs (``per_sample_loss``, ``logits``, ``index``) so that
    callbacks can record learning dynamics from ``on_train_batch_end``. Batches are ``(x, y, global index)``.
    Nothing is logged per step (logging costs more than an MLP step); ``epoch_loss`` / ``epoch_acc`` give the
    mean loss and accuracy of the epoch's batches (see :attr:`epoch_acc`) for callbacks.

    ``gradient_clip_algorithm``: ``"norm"`` rescales all gradients to a total 2-norm of at most
    ``gradient_clip_val``; ``"value"`` clamps every gradient element to [-v, v] (BADGE's training).
    ``l2`` / ``l2_params``: see :func:`l2_param_groups`.
    """

    def __init__(
        self,
        net: ALNet,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        aux: nn.Module | None = None,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        l2: float | None = None,
        l2_params: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if gradient_clip_algorithm not in CLIP_ALGORITHMS:
            raise ValueError(
                f"gradient_clip_algorithm must be one of {CLIP_ALGORITHMS}: {gradient_clip_algorithm!r}"
            )
        # Manual optimization: one zero_grad/backward/step per batch, as the hand-written loop does; it skips
        # Lightning's closure machinery, which costs as much as a small model's whole step.
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.l2 = l2
        self.l2_params = None if l2_params is None else list(l2_params)
        self.net = net
        self.aux = aux
        self._optimizer_factory = optimizer
        self._scheduler_factory = scheduler
        # Running sums over the current epoch's batches (reset in on_train_epoch_start, kept after the fit).
        self._loss_sum: torch.Tensor | None = None
        self._correct: torch.Tensor | None = None
        self._seen = 0
        # Set when :func:`al_bench.plain_fit.plain_fit` drives the fit instead of a Lightning Trainer.
        self._plain_trainer: Any = None
        self._plain_scheduler: Any = None

    def attach_plain_trainer(self, trainer: Any, scheduler: Any) -> None:
        """Let :func:`al_bench.plain_fit.plain_fit` drive this module: ``current_epoch`` and the epoch-end
        scheduler step then read ``trainer`` (a :class:`~al_bench.plain_fit.PlainTrainer`), ``scheduler``."""
        self._plain_trainer, self._plain_scheduler = trainer, scheduler

    @property
    def current_epoch(self) -> int:
        """The epoch being trained; after a fit, the number of epochs run (either engine)."""
        if self._plain_trainer is not None:
            return int(self._plain_trainer.current_epoch)
        return super().current_epoch

    # ---- epoch statistics ------------------------------------------------------------------------------
    @property
    def epoch_loss(self) -> float:
        """Mean training loss over the current epoch's batches so far (NaN before its first step)."""
        return float(self._loss_sum) / self._seen if self._seen else float("nan")

    @property
    def epoch_acc(self) -> float:
        """Training accuracy over the current epoch's batches so far (NaN before its first step).

        Computed when read from sums that every training step updates, so every ``on_train_epoch_end`` hook
        sees the whole epoch, whatever the order in which Lightning calls callbacks and the module (callbacks
        first); after the fit it is the last epoch's.
        """
        return float(self._correct) / self._seen if self._seen else float("nan")

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._correct, self._seen = None, None, 0

    def _accumulate(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        detached = loss.detach() * len(y)
        correct = (logits.detach().argmax(1) == y).sum()
        if self._loss_sum is None or self._correct is None:
            self._loss_sum, self._correct = detached, correct
        else:
            self._loss_sum += detached
            self._correct += correct
        self._seen += len(y)

    # ---- training --------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss_and_logits(
        self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], epoch: int, max_epochs: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss [], per-sample cross-entropy [B], logits [B, C]) of one batch; the auxiliary module's
        loss (which may depend on ``epoch`` of ``max_epochs``) is added to the mean."""
        x, y, _ = batch
        if self.aux is not None:
            inter = self.net.intermediate_features(x)
            logits = self.net.head(inter[-1])
        else:
            logits = self.net(x)
        per_sample = F.cross_entropy(logits, y, reduction="none")
        loss = per_sample.mean()
        if self.aux is not None:
            loss = loss + self.aux.training_loss(inter, logits, per_sample, y, epoch, max_epochs)
        return loss, per_sample, logits

    def finish_step(
        self,
        batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        loss: torch.Tensor,
        per_sample: torch.Tensor,
        logits: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """After the optimizer step: add the batch to the epoch's sums and return what
        ``on_train_batch_end`` callbacks receive as ``outputs``."""
        self._accumulate(loss, logits, batch[1])
        return {
            "loss": loss,
            "per_sample_loss": per_sample.detach(),
            "logits": logits.detach(),
            "index": batch[2],
        }

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        loss, per_sample, logits = self.loss_and_logits(batch, self.current_epoch, self.trainer.max_epochs)
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.gradient_clip_val,
                gradient_clip_algorithm=self.gradient_clip_algorithm,
            )
        optimizer.step()
        return self.finish_step(batch, loss, per_sample, logits)

    def on_train_epoch_end(self) -> None:
        if self._scheduler_factory is not None:
            scheduler = self._plain_scheduler if self._plain_trainer is not None else self.lr_schedulers()
            scheduler.step()
        if self._seen:
            epoch_loss = self.epoch_loss
            if not math.isfinite(epoch_loss):
                raise TrainingDivergedError(
                    f"training loss became {epoch_loss} at epoch {self.current_epoch}: "
                    "lower the learning rate (trainer.optimizer.lr) or check the data"
                )

    def optimizer_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """(name, parameter) of the net (its own names: ``dense.1.weight``) and of ``aux`` (``aux.*``)."""
        named = list(self.net.named_parameters())
        if self.aux is not None:
            named += [(f"aux.{n}", p) for n, p in self.aux.named_parameters()]
        return named

    def configure_optimizers(self) -> Any:
        named = self.optimizer_named_parameters()
        if self.l2 is None:
            optimizer = self._optimizer_factory([p for _, p in named])
        else:
            optimizer = self._optimizer_factory(l2_param_groups(named, self.l2, self.l2_params))
        if self._scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self._scheduler_factory(optimizer)}}


def l2_param_groups(
    named: Iterable[tuple[str, nn.Parameter]], l2: float, prefixes: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Optimizer parameter groups that add Keras's ``l2(l2)`` penalty ``l2 * sum(w ** 2)`` to the mean loss.

    Parameters whose name starts with one of ``prefixes`` (None: every parameter) form a group with
    ``weight_decay = 2 * l2`` (the gradient of the penalty is ``2 * l2 * w``), which replaces the optimizer's
    ``weight_decay`` for them; the others form a group without the key, so they keep the optimizer's own.
    DBAL's Keras code regularises its dense layer's weight matrix with ``l2 = 3.5 / N``:
    ``prefixes=["dense.1.weight"]``.

    This equals the loss term for optimizers whose ``weight_decay`` is *coupled* (added to the gradient
    before anything else): torch's SGD (with or without momentum), Adam, RMSprop, Adagrad. It does NOT for
    decoupled decay (AdamW, ``Adam(decoupled_weight_decay=True)``), which shrinks weights outside the
    gradient; :func:`al_bench.training.check_trainer_config` refuses that combination.
    """
    named = list(named)
    if prefixes is None:
        decayed, rest = named, []
    else:
        prefixes = tuple(prefixes)
        unused = [p for p in prefixes if not any(n.startswith(p) for n, _ in named)]
        if unused:
            raise ALBenchError(
                f"trainer.l2_params {unused} match no parameter of the model; "
                f"its parameters are: {', '.join(n for n, _ in named)}"
            )
        decayed = [(n, p) for n, p in named if n.startswith(prefixes)]
        rest = [(n, p) for n, p in named if not n.startswith(prefixes)]
    groups: list[dict[str, Any]] = []
    if rest:
        groups.append({"params": [p for _, p in rest]})
    groups.append({"params": [p for _, p in decayed], "weight_decay": 2 * l2})
    return groups


class StopAtTrainAccuracy(pl.Callback):
    """Stop training once an epoch's training accuracy reaches ``threshold`` (BADGE trains to 99%).

    A run whose accuracy first reaches the threshold in epoch k (0-based) runs exactly k + 1 epochs.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: ALModule) -> None:
        if pl_module.epoch_acc >= self.threshold:
            trainer.should_stop = True
