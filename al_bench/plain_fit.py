"""A Lightning-free fit loop for :class:`~al_bench.module.ALModule`: the same steps in the same order, without
the Trainer's per-step machinery.

Lightning costs a few milliseconds per step (hooks, progress tracking, the optimizer wrapper, the batch
prefetcher). That is noise beside a convolutional network's step, but it is ~90% of a cycle that trains a
linear head on cached features (frozen mode: 200 steps of a 1,280 x 10 layer). ``trainer.engine=plain`` (what
``auto`` picks for a :class:`~al_bench.models.feature_head.FeatureHead`) runs this loop instead; it reproduces
Lightning's fit exactly on one device in full precision (the tests compare weights after a fit, bit for bit,
with callbacks, schedulers, clipping, L2 groups, an auxiliary loss and early stopping):

- the module's own :meth:`~al_bench.module.ALModule.loss_and_logits`, ``zero_grad(set_to_none=True)``,
  ``backward``, clipping over the optimizer's parameters (``torch.nn.utils.clip_grad_norm_`` /
  ``clip_grad_value_``, as Lightning's precision plugin) and ``step``, one per batch;
- callback hooks before the module's, as Lightning calls them: ``on_train_start``, ``on_train_epoch_start``,
  ``on_train_batch_start`` / ``on_train_batch_end`` (with the step's outputs), ``on_train_epoch_end`` (the
  module's epoch end steps the scheduler and checks the loss), ``on_train_end``;
- ``trainer.should_stop`` set in an epoch's end stops after that epoch once ``min_epochs`` epochs ran; after
  the fit ``current_epoch`` is the number of epochs run, as Lightning's.

Callbacks receive a :class:`PlainTrainer`, which has the attributes al_bench's callbacks read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from al_bench.errors import ALBenchError
from al_bench.linear_step import LinearHeadStep, unsupported
from al_bench.module import ALModule


class PlainTrainer:
    """What callbacks read from a Lightning Trainer: ``current_epoch``, ``max_epochs``, ``min_epochs``,
    ``should_stop``, ``optimizers``, ``num_training_batches``, ``global_step``, ``lightning_module``."""

    def __init__(
        self,
        module: ALModule,
        optimizer: torch.optim.Optimizer,
        max_epochs: int,
        min_epochs: int,
        n_batches: int,
    ) -> None:
        self.lightning_module = module
        self.optimizers = [optimizer]
        self.max_epochs = int(max_epochs)
        self.min_epochs = int(min_epochs)
        self.num_training_batches = int(n_batches)
        self.current_epoch = 0
        self.global_step = 0
        self.should_stop = False


def split_optimizer(configured: Any) -> tuple[torch.optim.Optimizer, Any]:
    """(optimizer, scheduler or None) from what ``configure_optimizers`` returned."""
    if isinstance(configured, dict):
        scheduler = configured.get("lr_scheduler")
        if isinstance(scheduler, dict):
            scheduler = scheduler.get("scheduler")
        return configured["optimizer"], scheduler
    return configured, None


def _to_device(batch: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in batch)


def _call(callbacks: Sequence[Any], hook: str, *args: Any) -> None:
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if method is not None:
            method(*args)


def plain_fit(
    module: ALModule,
    batches: Iterable,
    device: torch.device,
    max_epochs: int,
    min_epochs: int = 0,
    callbacks: Sequence[Any] = (),
    progress: bool = False,
    fused: str = "off",
) -> PlainTrainer:
    """Fit ``module`` on ``batches`` (re-iterated every epoch; ``(x [B, ...], y [B], index [B])``) for at most
    ``max_epochs`` epochs; returns the trainer stand-in (its ``current_epoch`` = epochs run).

    ``fused``: ``"off"`` (autograd's steps), ``"auto"`` (the steps of
    :class:`~al_bench.linear_step.LinearHeadStep`, autograd's bit for bit without autograd, for float32
    batches when it reproduces the module, optimizer and device: :func:`~al_bench.linear_step.unsupported`) or
    ``"require"`` (as auto, refused in one line when it does not)."""
    module.to(device)
    optimizer, scheduler = split_optimizer(module.configure_optimizers())
    n_batches = len(batches) if hasattr(batches, "__len__") else 0  # type: ignore[arg-type]
    trainer = PlainTrainer(module, optimizer, max_epochs, min_epochs, n_batches)
    module.attach_plain_trainer(trainer, scheduler)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    clip, algorithm = module.gradient_clip_val, module.gradient_clip_algorithm
    if fused not in ("off", "auto", "require"):
        raise ValueError(f"fused must be off, auto or require, got {fused!r}")
    linear_step = None
    if fused != "off":
        reason = unsupported(module, optimizer, scheduler, torch.device(device))
        if reason and fused == "require":
            raise ALBenchError(
                f"trainer.engine=fused trains a linear head with Adam on the CPU; this fit has {reason}: "
                "use trainer.engine=plain (or auto)"
            )
        linear_step = None if reason else LinearHeadStep(module, optimizer)
    bar = _progress_bar(max_epochs) if progress else None
    module.train()
    try:
        with torch.enable_grad():
            _call(callbacks, "on_train_start", trainer, module)
            for epoch in range(int(max_epochs)):
                trainer.current_epoch = epoch
                _call(callbacks, "on_train_epoch_start", trainer, module)
                module.on_train_epoch_start()
                for batch_idx, batch in enumerate(batches):
                    batch = _to_device(batch, device)
                    _call(callbacks, "on_train_batch_start", trainer, module, batch, batch_idx)
                    if linear_step is not None and batch[0].dtype == torch.float32:
                        loss, per_sample, logits = linear_step(batch)
                    else:
                        loss, per_sample, logits = module.loss_and_logits(batch, epoch, int(max_epochs))
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        if clip:
                            if algorithm == "value":
                                torch.nn.utils.clip_grad_value_(params, clip_value=clip)
                            else:
                                torch.nn.utils.clip_grad_norm_(params, clip)
                        optimizer.step()
                    trainer.global_step += 1
                    outputs = module.finish_step(batch, loss, per_sample, logits)
                    _call(callbacks, "on_train_batch_end", trainer, module, outputs, batch, batch_idx)
                _call(callbacks, "on_train_epoch_end", trainer, module)
                module.on_train_epoch_end()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{module.epoch_loss:.3f}", acc=f"{module.epoch_acc:.3f}")
                if trainer.should_stop and epoch + 1 >= trainer.min_epochs:
                    trainer.current_epoch = epoch + 1
                    break
            else:
                trainer.current_epoch = int(max_epochs)
            _call(callbacks, "on_train_end", trainer, module)
    finally:
        if bar is not None:
            bar.close()
    return trainer


def _progress_bar(max_epochs: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=int(max_epochs), desc="epochs", leave=False, dynamic_ncols=True)
