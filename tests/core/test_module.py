"""The LightningModule: the scheduler steps once per epoch (manual optimization); BADGE's accuracy stop; the
epoch statistics that callbacks read are the finished epoch's."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from al_bench.data.base import ALDataModule
from al_bench.data.synthetic import make_synthetic
from al_bench.models.mlp import MLP
from al_bench.module import ALModule, StopAtTrainAccuracy
from tests.conftest import quiet_trainer


class EpochAccuracyRecorder(pl.Callback):
    """Counts each epoch's training accuracy from the batch outputs and reads ``epoch_acc`` at epoch end."""

    def __init__(self) -> None:
        self.counted: list[float] = []
        self.read: list[float] = []
        self._correct = self._seen = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: ALModule) -> None:
        self._correct = self._seen = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._correct += int((outputs["logits"].argmax(1) == batch[1]).sum())
        self._seen += len(batch[1])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: ALModule) -> None:
        self.counted.append(self._correct / self._seen)
        self.read.append(pl_module.epoch_acc)


def fit(module: ALModule, epochs: int, callbacks=(), separation: float = 5.0) -> pl.Trainer:
    dataset = make_synthetic(n_train=64, n_test=8, num_classes=2, separation=separation)
    data = ALDataModule(dataset, batch_size=16)
    trainer = quiet_trainer(epochs, callbacks)
    trainer.fit(module, train_dataloaders=data.train_batches(np.arange(64), torch.Generator().manual_seed(0)))
    return trainer


def test_scheduler_steps_once_per_epoch():
    module = ALModule(
        MLP([1, 8, 8], 2, hidden=[16]),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.8),
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
    )
    fit(module, epochs=3)
    assert module.optimizers().param_groups[0]["lr"] == 0.8 * 0.5**3


def test_training_reduces_the_loss_and_tracks_epoch_accuracy():
    torch.manual_seed(0)
    module = ALModule(MLP([1, 8, 8], 2, hidden=[16]), optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    fit(module, epochs=1)
    first = module.epoch_loss
    fit(module, epochs=5)
    assert module.epoch_loss < first
    assert 0.0 <= module.epoch_acc <= 1.0


def test_stop_at_train_accuracy():
    torch.manual_seed(0)
    module = ALModule(MLP([1, 8, 8], 2, hidden=[32]), optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    trainer = fit(module, epochs=200, callbacks=[StopAtTrainAccuracy(0.99)])
    assert module.epoch_acc >= 0.99
    assert trainer.current_epoch < 200


def slow_learner(epochs: int, callbacks=()) -> tuple[pl.Trainer, EpochAccuracyRecorder]:
    """A seeded run whose training accuracy climbs over several epochs (hard classes, small steps)."""
    torch.manual_seed(0)
    module = ALModule(MLP([1, 8, 8], 2, hidden=[16]), optimizer=lambda p: torch.optim.SGD(p, lr=0.01))
    recorder = EpochAccuracyRecorder()
    trainer = fit(module, epochs, [recorder, *callbacks], separation=0.3)
    return trainer, recorder


def test_callbacks_read_the_finished_epochs_accuracy():
    """Lightning calls callbacks' on_train_epoch_end before the module's: epoch_acc must already be final."""
    _, recorder = slow_learner(epochs=6)
    assert len(set(recorder.counted)) > 2, "the accuracy must change between epochs for this test to bite"
    np.testing.assert_allclose(recorder.read, recorder.counted)


def test_stop_at_train_accuracy_stops_in_the_epoch_that_reaches_it():
    """Accuracy first reaching the threshold in epoch k (0-based) stops the run after exactly k + 1 epochs."""
    epochs = 10
    _, free = slow_learner(epochs)
    accs = free.counted
    threshold = max(accs[: epochs - 2])
    k = next(i for i, a in enumerate(accs) if a >= threshold)
    assert 1 <= k <= epochs - 3, f"the free run must reach its threshold mid-run: {accs}"
    trainer, stopped = slow_learner(epochs, [StopAtTrainAccuracy(threshold)])
    assert stopped.counted == accs[: k + 1]  # the same seeded run, cut short
    assert trainer.current_epoch == k + 1


def test_drop_last_drops_the_final_partial_batch_but_never_the_only_one():
    data = ALDataModule(make_synthetic(n_train=64, n_test=8), batch_size=16)
    gen = torch.Generator().manual_seed(0)
    assert [len(b[1]) for b in data.train_batches(np.arange(34), gen)] == [16, 16, 2]
    assert [len(b[1]) for b in data.train_batches(np.arange(34), gen, drop_last=True)] == [16, 16]
    assert [len(b[1]) for b in data.train_batches(np.arange(10), gen, drop_last=True)] == [10]
