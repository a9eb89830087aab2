"""The plain fit loop (trainer.engine=plain) reproduces Lightning's fit bit for bit: the same weights, epochs,
callback records and whole learning curves, with schedulers, clipping, L2 groups, fixed-length epochs, early
stopping, an auxiliary loss, snapshot learning rates and pool-prediction dynamics; auto picks it for frozen
heads only, and it refuses settings it cannot reproduce."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from al_bench.build import build_dataset, build_model
from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.callbacks.snapshot import SnapshotEnsemble
from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.models.feature_head import FeatureHead
from al_bench.models.mlp import MLP
from al_bench.training import fit_engine, train_model
from tests.conftest import assert_same_runs_with_engines


class BatchRecorder(pl.Callback):
    """Every step's outputs and the epoch each hook saw, in hook order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.events.append(("start", trainer.max_epochs, trainer.num_training_batches))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.events.append(("epoch_start", trainer.current_epoch))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.events.append(
            (
                "batch",
                trainer.current_epoch,
                batch_idx,
                outputs["index"].tolist(),
                outputs["per_sample_loss"].clone(),
            )
        )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.events.append(("epoch_end", trainer.current_epoch, pl_module.epoch_acc, pl_module.epoch_loss))

    def on_train_end(self, trainer, pl_module) -> None:
        self.events.append(("end", trainer.current_epoch))


def _fit_both(make_cfg, overrides: list[str], n_train: int = 40, extra_callbacks=None):
    """Train the same initial net with each engine; returns {engine: (net, module, [callbacks])}."""
    out = {}
    for engine in ("lightning", "plain"):
        cfg = make_cfg(*overrides, f"trainer.engine={engine}")
        data = ALDataModule(
            build_dataset(cfg),
            batch_size=cfg.trainer.batch_size,
            val_size=int(cfg.dataset.get("val_size") or 0),
        )
        torch.manual_seed(0)
        net = build_model(cfg, data.in_shape, data.num_classes)
        callbacks = [BatchRecorder()] + (extra_callbacks(data) if extra_callbacks else [])
        module = train_model(
            cfg, net, data, data.pool_indices[:n_train], seed=3, cycle=1, callbacks=callbacks
        )
        out[engine] = (net, module, callbacks)
    return out


def _same_events(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert len(x) == len(y) and x[0] == y[0]
        for u, v in zip(x, y):
            if isinstance(u, torch.Tensor):
                assert torch.equal(u, v)
            elif isinstance(u, float) and np.isnan(u):
                assert np.isnan(v)
            else:
                assert u == v


def _assert_identical(fits) -> None:
    (net_l, mod_l, cbs_l), (net_p, mod_p, cbs_p) = fits["lightning"], fits["plain"]
    state_l, state_p = net_l.state_dict(), net_p.state_dict()
    assert state_l.keys() == state_p.keys()
    for k in state_l:
        assert torch.equal(state_l[k], state_p[k]), k
    assert mod_l.current_epoch == mod_p.current_epoch
    assert mod_l.epoch_acc == mod_p.epoch_acc
    _same_events(cbs_l[0].events, cbs_p[0].events)


RECIPES = {
    "adam": ["trainer.max_epochs=3"],
    "sgd_step_scheduler_clip_norm": [
        "trainer.max_epochs=4", "+trainer/optimizer=sgd", "trainer.optimizer.lr=0.1",
        "trainer.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1, "
        "gamma: 0.5}",
        "trainer.gradient_clip_val=0.05",
    ],
    "clip_value_l2": [
        "trainer.max_epochs=3", "trainer.gradient_clip_val=0.001", "trainer.gradient_clip_algorithm=value",
        "trainer.l2_over_n=3.5",
    ],
    "samples_per_epoch_drop_last": [
        "trainer.max_epochs=2", "trainer.samples_per_epoch=50", "trainer.drop_last=true",
    ],
    "early_stopping_min_epochs": [
        "trainer.max_epochs=12", "dataset.val_size=30", "trainer.early_stopping_patience=1",
        "trainer.min_epochs=3", "trainer.optimizer.lr=0.05",
    ],
    "stop_at_train_acc": [
        "trainer.max_epochs=30", "trainer.stop_at_train_acc=0.6", "trainer.optimizer.lr=0.01",
    ],
    "stop_before_min_epochs": [
        "trainer.max_epochs=30", "trainer.stop_at_train_acc=0.1", "trainer.min_epochs=5",
    ],
}  # fmt: skip


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_plain_fit_equals_lightning_fit_bit_for_bit(make_cfg, recipe):
    fits = _fit_both(make_cfg, RECIPES[recipe])
    _assert_identical(fits)
    if recipe in ("early_stopping_min_epochs", "stop_at_train_acc"):
        assert fits["plain"][1].current_epoch < 30  # the case really stopped early
    if recipe == "stop_before_min_epochs":  # asked to stop after epoch 1, runs on to min_epochs
        assert fits["plain"][1].current_epoch == 5


def test_plain_fit_callbacks_record_the_same_dynamics_and_snapshots(make_cfg):
    def callbacks(data):
        return [PoolPredictionRecorder(data, data.pool_indices[40:90]), SnapshotEnsemble(cycles=2)]

    fits = _fit_both(make_cfg, ["trainer.max_epochs=4", "model.dropout=0.3"], extra_callbacks=callbacks)
    _assert_identical(fits)
    rec_l, snap_l = fits["lightning"][2][1:]
    rec_p, snap_p = fits["plain"][2][1:]
    assert torch.equal(rec_l.result()["history"], rec_p.result()["history"])
    assert rec_p.result()["history"].shape == (50, 4)
    assert snap_l.lrs == snap_p.lrs and len(snap_p.snapshots) == 2
    for a, b in zip(snap_l.snapshots, snap_p.snapshots):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "strategy",
    [
        ["strategy=label_dispersion"],  # per-epoch pool predictions
        ["strategy=ll4al"],  # auxiliary loss-prediction module, epoch-dependent loss
        ["strategy=bald", "strategy.posterior=snapshot", "strategy.posterior_options.members=2"],
    ],
    ids=lambda s: s[-1] if len(s) > 1 else s[0],
)
def test_whole_runs_give_the_same_curve_and_selections_with_either_engine(make_cfg, tmp_path, strategy):
    overrides = [*strategy, "trainer.max_epochs=3", "model.dropout=0.2"]
    assert_same_runs_with_engines(make_cfg, tmp_path, ("lightning", "plain"), *overrides)


def test_auto_picks_the_plain_loop_with_fused_steps_for_feature_heads_only():
    head = FeatureHead((12,), 3)
    mlp = MLP([12], 3)
    auto = OmegaConf.create({"engine": "auto", "devices": 1, "strategy": "auto", "precision": "32-true"})
    assert fit_engine(auto, head) == "fused"  # the plain loop, linear-head steps without autograd
    assert fit_engine(auto, mlp) == "lightning"
    assert fit_engine(OmegaConf.merge(auto, {"engine": "plain"}), mlp) == "plain"
    assert fit_engine(OmegaConf.merge(auto, {"engine": "lightning"}), head) == "lightning"
    # what only Lightning does: auto falls back to it, an explicit plain is refused in one line
    for setting in ({"devices": 2}, {"strategy": "ddp"}, {"precision": "bf16-mixed"}):
        assert fit_engine(OmegaConf.merge(auto, setting), head) == "lightning"
        for engine in ("plain", "fused"):
            with pytest.raises(ALBenchError, match="trainer.engine=lightning"):
                fit_engine(OmegaConf.merge(auto, setting, {"engine": engine}), head)


def test_unknown_engine_is_refused_before_training(make_cfg):
    cfg = make_cfg("trainer.engine=fast")
    with pytest.raises(ALBenchError, match="valid: auto, lightning, plain, fused"):
        run(cfg)


def test_plain_fit_leaves_the_inputs_untouched(make_cfg):
    """The fit neither reorders nor copies the caller's net: the module wraps the very object."""
    cfg = make_cfg("trainer.max_epochs=1", "trainer.engine=plain")
    data = ALDataModule(build_dataset(cfg), batch_size=cfg.trainer.batch_size)
    net = build_model(cfg, data.in_shape, data.num_classes)
    before = copy.deepcopy(net.state_dict())
    module = train_model(cfg, net, data, data.pool_indices[:20], seed=0, cycle=0)
    assert module.net is net and module.current_epoch == 1
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
