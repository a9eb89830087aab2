"""The LightningModule: the scheduler steps once per epoch (manual optimization); BADGE's accuracy stop."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from al_bench.data.base import ALDataModule
from al_bench.data.synthetic import make_synthetic
from al_bench.models.mlp import MLP
from al_bench.module import ALModule, StopAtTrainAccuracy


def fit(module: ALModule, epochs: int, callbacks=()) -> pl.Trainer:
    data = ALDataModule(make_synthetic(n_train=64, n_test=8, num_classes=2, separation=5.0), batch_size=16)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
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


def test_drop_last_drops_the_final_partial_batch_but_never_the_only_one():
    data = ALDataModule(make_synthetic(n_train=64, n_test=8), batch_size=16)
    gen = torch.Generator().manual_seed(0)
    assert [len(b[1]) for b in data.train_batches(np.arange(34), gen)] == [16, 16, 2]
    assert [len(b[1]) for b in data.train_batches(np.arange(34), gen, drop_last=True)] == [16, 16]
    assert [len(b[1]) for b in data.train_batches(np.arange(10), gen, drop_last=True)] == [10]
