"""Records the model's predicted label on a fixed set of pool samples after every k-th training epoch."""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import pytorch_lightning as pl
import torch

from al_bench.data.base import ALDataModule
from al_bench.inference import predicted_labels
from al_bench.seeding import derive_seed


def label_dtype(num_classes: int) -> torch.dtype:
    """Smallest integer dtype that holds labels 0..num_classes-1 (uint8 up to 255 classes)."""
    if num_classes <= 255:
        return torch.uint8
    return torch.int16 if num_classes <= 32767 else torch.int32


class PoolPredictionRecorder(pl.Callback):
    """After every ``every_n_epochs``-th training epoch, record ``pl_module.net``'s labels for ``indices``.

    Predictions run in eval mode under ``torch.inference_mode`` (train mode is restored) and go into a
    preallocated buffer [T_max, N] of small integers (uint8 when classes <= 255, else int16) kept on
    ``data.device``; ``T_max = ceil(max_epochs / every_n_epochs)`` is fixed at ``on_train_start`` (the
    buffer grows if the trainer has no epoch limit).
    ``augment=True`` predicts on augmented inputs (the data module's training augmentation, drawn from a
    generator seeded with ``seed`` and the epoch), as the label-dispersion authors' later code does.
    ``result()`` -> {"indices": np.ndarray [N] global, "history": LongTensor [N, T_recorded] on CPU}.
    """

    def __init__(
        self,
        data: ALDataModule,
        indices: np.ndarray,
        every_n_epochs: int = 1,
        augment: bool = False,
        key: str = "pool_predictions",
        bf16: bool = False,
        seed: int = 0,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)
        self.every_n_epochs = int(every_n_epochs)
        self.augment = bool(augment)
        self.key = key
        self.bf16 = bool(bf16)
        self.seed = int(seed)
        self._dtype = label_dtype(data.num_classes)
        self._buffer = torch.zeros(0, len(self.indices), dtype=self._dtype, device=data.device)
        self._n_recorded = 0

    # ---- Lightning hooks -------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reset(trainer.max_epochs)

    def reset(self, max_epochs: int | None) -> None:
        """Forget what was recorded and preallocate for ``max_epochs`` (None or -1: no limit, grow)."""
        capacity = math.ceil(max_epochs / self.every_n_epochs) if max_epochs and max_epochs > 0 else 16
        self._buffer = torch.zeros(capacity, len(self.indices), dtype=self._dtype, device=self.data.device)
        self._n_recorded = 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.record(pl_module.net, trainer.current_epoch)

    # ---- recording -------------------------------------------------------------------------------------
    def record(self, net: torch.nn.Module, epoch: int) -> None:
        """Predict the labels of ``indices`` with ``net`` and append them as the next recorded epoch."""
        if self._n_recorded == len(self._buffer):
            grow = self._buffer.new_zeros(max(len(self._buffer), 1), len(self.indices))
            self._buffer = torch.cat([self._buffer, grow])
        if len(self.indices):
            labels = self._augmented_labels(net, epoch) if self.augment else self._labels(net)
            self._buffer[self._n_recorded] = labels.to(self._dtype)
        self._n_recorded += 1

    def _labels(self, net: torch.nn.Module) -> torch.Tensor:
        return predicted_labels(net, self.data, self.indices, bf16=self.bf16)

    @torch.inference_mode()
    def _augmented_labels(self, net: torch.nn.Module, epoch: int) -> torch.Tensor:
        generator = torch.Generator(device=self.data.device)
        generator.manual_seed(derive_seed(self.seed, "pool_predictions_augment", epoch))
        use_bf16 = self.bf16 and self.data.device.type == "cuda"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
        idx = torch.as_tensor(self.indices, dtype=torch.long)
        was_training = net.training
        net.eval()
        out = []
        try:
            with autocast:
                for s in range(0, len(idx), self.data.eval_batch_size):
                    x, _, _ = self.data.get_batch(
                        idx[s : s + self.data.eval_batch_size], augment=self.data.augment, generator=generator
                    )
                    out.append(net(x).argmax(1))
        finally:
            net.train(was_training)
        return torch.cat(out)

    # ---- output ----------------------------------------------------------------------------------------
    @property
    def n_recorded(self) -> int:
        return self._n_recorded

    def result(self) -> dict:
        """{"indices": global indices [N], "history": predicted labels LongTensor [N, T_recorded] on CPU}."""
        history = self._buffer[: self._n_recorded].T.to(device="cpu", dtype=torch.int64)
        return {"indices": self.indices.copy(), "history": history}
