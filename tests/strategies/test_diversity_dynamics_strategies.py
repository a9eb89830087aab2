"""CoreSet, BADGE, LabelDispersion, Forgetting and the pool-prediction recorder on a tiny data module."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.models.mlp import MLP
from al_bench.module import ALModule
from al_bench.ops.diversity import badge_factors, badge_kmeanspp, kcenter_greedy
from al_bench.ops.dynamics import label_dispersion
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.diversity import BADGE, CoreSet
from al_bench.strategies.dynamics import Forgetting, LabelDispersion
from tests.conftest import quiet_trainer

N_TRAIN, N_CLASSES = 120, 3


def _data(augment: str = "none") -> ALDataModule:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN, 1, 4, 4, generator=g)
    y = torch.randint(0, N_CLASSES, (N_TRAIN,), generator=g)
    ds = ArrayDataset("tiny", x, y, x[:20].clone(), y[:20].clone(), num_classes=N_CLASSES, augment=augment)
    return ALDataModule(ds, batch_size=16, eval_batch_size=32)


def _net() -> MLP:
    torch.manual_seed(0)
    return MLP((1, 4, 4), N_CLASSES, hidden=(16, 8), dropout=0.1)


def _ctx(data: ALDataModule, labeled: np.ndarray, budget: int, dynamics: dict | None = None, candidates=None):
    pool = ActivePool(data.pool_indices, size=N_TRAIN)
    pool.label(labeled, cycle=0)
    return SelectionContext(
        _net(), data, pool, budget, 0, np.random.default_rng(1), candidates=candidates, dynamics=dynamics
    )


def _check_selection(picked: np.ndarray, ctx: SelectionContext) -> None:
    assert picked.dtype == np.int64 and len(picked) == ctx.budget
    assert len(np.unique(picked)) == ctx.budget
    assert np.isin(picked, ctx.candidates).all()


# ---- CoreSet / BADGE ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n_labeled", [0, 10])
def test_coreset_maps_rows_back_to_global_indices(n_labeled):
    data = _data()
    ctx = _ctx(data, np.arange(n_labeled) * 3, budget=7)
    picked = CoreSet().select(ctx)
    _check_selection(picked, ctx)
    feats = torch.cat([ctx.labeled_features(), ctx.features()])
    rows = kcenter_greedy(feats, torch.arange(n_labeled), 7)
    np.testing.assert_array_equal(picked, ctx.candidates[rows.numpy() - n_labeled])
    chunked = CoreSet(chunk_size=2).select(_ctx(data, np.arange(n_labeled) * 3, budget=7))
    assert chunked.tolist() == picked.tolist()


def test_badge_selection_and_seeding():
    data = _data()
    candidates = np.arange(1, N_TRAIN, 2)  # a pool subset: global indices are not positions
    ctx = _ctx(data, np.array([0, 2, 4]), budget=9, candidates=candidates)
    picked = BADGE().select(ctx)
    _check_selection(picked, ctx)
    # same as the kernel run on the context's outputs with the generator the context hands out
    ref_ctx = _ctx(data, np.array([0, 2, 4]), budget=9, candidates=candidates)
    a, h = badge_factors(ref_ctx.probs(), ref_ctx.features())
    rows = badge_kmeanspp(a, h, 9, ref_ctx.torch_generator())
    np.testing.assert_array_equal(picked, candidates[rows.numpy()])
    assert picked[0] == candidates[int((a.norm(dim=1) * h.norm(dim=1)).argmax())]


# ---- recorder ------------------------------------------------------------------------------------------
def _fit(data: ALDataModule, callbacks: list, epochs: int = 3) -> ALModule:
    module = ALModule(_net(), partial(torch.optim.SGD, lr=0.5))
    trainer = quiet_trainer(epochs, callbacks)
    trainer.fit(module, train_dataloaders=data.train_batches(np.arange(40), torch.Generator().manual_seed(0)))
    return module


def test_recorder_through_trainer_fit():
    data = _data()
    candidates = np.arange(40, N_TRAIN)
    every = PoolPredictionRecorder(data, candidates)
    second = PoolPredictionRecorder(data, candidates, every_n_epochs=2, key="other")
    module = _fit(data, [every, second], epochs=3)
    assert every._buffer.dtype == torch.uint8 and every._buffer.shape == (3, len(candidates))
    assert second._buffer.shape == (2, len(candidates))  # ceil(3 / 2) preallocated
    out = every.result()
    np.testing.assert_array_equal(out["indices"], candidates)
    hist = out["history"]
    assert hist.shape == (len(candidates), 3) and hist.dtype == torch.int64 and hist.device.type == "cpu"
    assert hist.min() >= 0 and hist.max() < N_CLASSES
    assert second.result()["history"].shape == (len(candidates), 1)  # only epoch 2 of 1..3
    # the last column is the trained model's prediction; the model is back in train mode
    module.net.eval()
    with torch.no_grad():
        final = module.net(data.get_batch(torch.as_tensor(candidates))[0]).argmax(1)
    assert torch.equal(hist[:, -1], final)


def test_recorder_leaves_training_mode_and_grows_without_epoch_limit():
    data = _data()
    rec = PoolPredictionRecorder(data, np.arange(10))
    net = _net().train()
    rec.reset(None)
    for epoch in range(20):  # more than the 16 rows preallocated without a limit
        rec.record(net, epoch)
    assert net.training
    assert rec.result()["history"].shape == (10, 20)
    empty = PoolPredictionRecorder(data, np.zeros(0, dtype=np.int64))
    empty.reset(3)
    empty.record(net, 0)
    assert empty.result()["history"].shape == (0, 1)


def test_recorder_augmented_predictions_are_seeded():
    data = _data(augment="flip")
    net = _net()
    one, two = (PoolPredictionRecorder(data, np.arange(60), augment=True, seed=5) for _ in range(2))
    for rec in (one, two):
        rec.reset(2)
        rec.record(net, 0)
    assert torch.equal(one.result()["history"], two.result()["history"])


def test_recorder_int16_for_many_classes():
    g = torch.Generator().manual_seed(0)
    ds = ArrayDataset("many", torch.randn(30, 4), torch.randint(0, 300, (30,), generator=g),
                      torch.randn(5, 4), torch.zeros(5, dtype=torch.long), num_classes=300)  # fmt: skip
    rec = PoolPredictionRecorder(ALDataModule(ds), np.arange(30))
    rec.reset(2)
    rec.record(MLP((4,), 300, hidden=(8,)), 0)
    assert rec._buffer.dtype == torch.int16
    assert rec.result()["history"].max() < 300


# ---- dynamics strategies -----------------------------------------------------------------------------------
def test_label_dispersion_and_forgetting_select_from_recorded_history():
    data = _data()
    candidates = np.arange(1, N_TRAIN, 2)
    n = len(candidates)
    history = torch.zeros(n, 4, dtype=torch.long)
    history[5] = torch.tensor([0, 1, 2, 0])  # dispersion 0.5, 3 flips
    history[9] = torch.tensor([0, 1, 0, 1])  # dispersion 0.5, 3 flips
    history[11] = torch.tensor([0, 0, 1, 1])  # dispersion 0.5, 1 flip
    history[20] = torch.tensor([2, 2, 2, 1])  # dispersion 0.25, 1 flip
    dyn = {"pool_predictions": {"indices": candidates.copy(), "history": history}}
    ctx = _ctx(data, np.array([0]), budget=3, dynamics=dyn, candidates=candidates)
    assert sorted(LabelDispersion().select(ctx).tolist()) == sorted(candidates[[5, 9, 11]].tolist())
    ctx = _ctx(data, np.array([0]), budget=2, dynamics=dyn, candidates=candidates)
    assert sorted(Forgetting().select(ctx).tolist()) == sorted(candidates[[5, 9]].tolist())
    torch.testing.assert_close(
        LabelDispersion(mode_window=1, denominator="epochs_plus_one").score(ctx),
        label_dispersion(history, 1, "epochs_plus_one"),
    )


def test_dynamics_strategies_check_recorded_indices():
    data = _data()
    ctx = _ctx(data, np.array([0]), budget=2)
    with pytest.raises(RuntimeError, match="no pool predictions"):
        LabelDispersion().select(ctx)
    shorter = ctx.candidates[1:]
    wrong = {"pool_predictions": {"indices": shorter, "history": torch.zeros(len(shorter), 3)}}
    with pytest.raises(RuntimeError, match="other indices"):
        Forgetting().select(_ctx(data, np.array([0]), budget=2, dynamics=wrong))
    none = {"pool_predictions": {"indices": ctx.candidates, "history": torch.zeros(len(ctx.candidates), 0)}}
    with pytest.raises(ALBenchError, match="every_n_epochs"):
        LabelDispersion().select(_ctx(data, np.array([0]), budget=2, dynamics=none))


def test_dynamics_strategy_options_are_validated():
    with pytest.raises(ALBenchError):
        LabelDispersion(denominator="T+1")
    with pytest.raises(ALBenchError):
        LabelDispersion(mode_window=0)
    with pytest.raises(ALBenchError):
        Forgetting(every_n_epochs=0)


def test_label_dispersion_callbacks_record_the_candidates():
    data = _data()
    candidates = np.arange(50, 90)
    strategy = LabelDispersion(every_n_epochs=1)
    (callback,) = strategy.training_callbacks(data, candidates, cycle=0)
    _fit(data, [callback], epochs=2)
    dyn = {callback.key: callback.result()}
    ctx = _ctx(data, np.arange(40), budget=5, dynamics=dyn, candidates=candidates)
    picked = strategy.select(ctx)
    _check_selection(picked, ctx)
    assert dyn["pool_predictions"]["history"].shape == (40, 2)
