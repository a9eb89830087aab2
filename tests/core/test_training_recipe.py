"""Training-recipe options of train_model: fixed-length epochs drawn with replacement, early stopping on
validation accuracy with the best weights restored, gradient clipping by norm or value, per-layer L2."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf, open_dict

from al_bench.build import build_dataset, build_model
from al_bench.callbacks.early_stopping import ValidationEarlyStopping
from al_bench.data.base import ALDataModule
from al_bench.data.sampled_batches import SampledBatches
from al_bench.data.synthetic import make_synthetic
from al_bench.errors import ALBenchError
from al_bench.inference import evaluate
from al_bench.models.dbal_cnn import DBALCNN
from al_bench.models.mlp import MLP
from al_bench.module import ALModule, l2_param_groups
from al_bench.training import check_trainer_config, train_model
from tests.conftest import quiet_trainer


def fit(module: ALModule, data: ALDataModule, batches, epochs: int, callbacks=()) -> pl.Trainer:
    trainer = quiet_trainer(epochs, callbacks)
    trainer.fit(module, train_dataloaders=batches)
    return trainer


def tiny_data(n_train: int = 64, batch_size: int = 16, val_size: int = 0) -> ALDataModule:
    dataset = make_synthetic(n_train=n_train, n_test=8, num_classes=2, separation=2.0)
    return ALDataModule(dataset, batch_size=batch_size, val_size=val_size)


def setup(make_cfg, *overrides: str) -> tuple:
    """(cfg, data, net) of the composed tiny config, as the loop builds them."""
    cfg = make_cfg(*overrides)
    data = ALDataModule(
        build_dataset(cfg),
        batch_size=cfg.trainer.batch_size,
        val_size=int(cfg.dataset.get("val_size") or 0),
    )
    torch.manual_seed(0)
    return cfg, data, build_model(cfg, data.in_shape, data.num_classes)


class BatchCounter(pl.Callback):
    def __init__(self) -> None:
        self.sizes: list[list[int]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.sizes.append([])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.sizes[-1].append(len(batch[1]))


class Snapshots(pl.Callback):
    """``pl_module.net``'s weights (CPU copies) at every epoch end."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.states.append({k: v.detach().clone() for k, v in pl_module.net.state_dict().items()})


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- check_trainer_config --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "n_val", "needle"),
    [
        ({"early_stopping_patience": 3}, 0, "needs a validation split: set dataset.val_size"),
        ({"early_stopping_patience": -1}, 100, "early_stopping_patience must be null or an integer >= 1"),
        ({"early_stopping_patience": 0}, 100, "early_stopping_patience must be null or an integer >= 1"),
        ({"early_stopping_patience": 2.5}, 100, "early_stopping_patience must be null or an integer >= 1"),
        ({"samples_per_epoch": 0}, 0, "samples_per_epoch must be null or an integer >= 1"),
        ({"samples_per_epoch": True}, 0, "samples_per_epoch must be null or an integer >= 1"),
        ({"gradient_clip_algorithm": "l2"}, 0, "unknown trainer.gradient_clip_algorithm 'l2'"),
        ({"gradient_clip_val": -1.0}, 0, "gradient_clip_val must be null or a number >= 0"),
        ({"l2_over_n": -3.5}, 0, "l2_over_n must be null or a number >= 0"),
        ({"l2_params": ["dense.1."]}, 0, "l2_params has no effect without trainer.l2_over_n"),
        ({"l2_over_n": 3.5, "l2_params": "dense.1."}, 0, "l2_params must be null or a list"),
        ({"l2_over_n": 3.5, "l2_params": 5}, 0, "l2_params must be null or a list"),
        (
            {"l2_over_n": 3.5, "optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True}},
            0,
            "decoupled weight decay",
        ),
    ],
)
def test_check_trainer_config_refuses_with_one_line(make_cfg, option, n_val, needle):
    cfg = make_cfg()
    with open_dict(cfg):
        cfg.trainer.merge_with(option)
    with pytest.raises(ALBenchError) as info:
        check_trainer_config(cfg.trainer, n_val)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_check_trainer_config_accepts_the_defaults_and_the_batchbald_recipe(make_cfg):
    check_trainer_config(make_cfg().trainer, 0)
    cfg = make_cfg("dataset=mnist", "model=batchbald_cnn", tiny=False)
    assert cfg.model.name == "batchbald_cnn"
    t = cfg.trainer
    assert (t.max_epochs, t.batch_size, t.samples_per_epoch, t.early_stopping_patience) == (30, 64, 5056, 3)
    assert t.optimizer._target_ == "torch.optim.Adam" and t.optimizer.lr == 1e-3
    check_trainer_config(t, 1024)
    with pytest.raises(ALBenchError, match="dataset.val_size"):
        check_trainer_config(t, 0)
    plain = OmegaConf.to_container(make_cfg().trainer)
    check_trainer_config(plain, 0)  # a plain dict works too


# ---- samples_per_epoch -------------------------------------------------------------------------------------
def test_sampled_batches_repeat_the_labeled_set_to_a_fixed_length():
    data = tiny_data()
    indices = np.arange(10, 20)
    batches = SampledBatches(data, indices, 50, 16, torch.Generator().manual_seed(0))
    epoch1, epoch2 = list(batches), list(batches)
    assert len(batches) == 4 and [len(b[1]) for b in epoch1] == [16, 16, 16, 2]
    drawn = torch.cat([b[2] for b in epoch1]).cpu().numpy()
    assert np.isin(drawn, indices).all()
    assert sorted(np.bincount(drawn - 10, minlength=10)) == [5] * 10  # randperm(50) % 10: 5 copies of each
    assert not torch.equal(torch.cat([b[2] for b in epoch2]), torch.cat([b[2] for b in epoch1]))
    again = list(SampledBatches(data, indices, 50, 16, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[2], b[2]) for a, b in zip(again, epoch1))  # the generator alone decides
    x, y, idx = epoch1[0]
    torch.testing.assert_close(y, data.labels(idx))
    torch.testing.assert_close(x, data.get_batch(idx)[0])
    dropped = SampledBatches(data, indices, 50, 16, torch.Generator(), drop_last=True)
    assert [len(b[1]) for b in dropped] == [16, 16, 16]
    # a labeled set larger than the target: one plain pass over it (10 samples, never cut to 5)
    assert [len(b[1]) for b in SampledBatches(data, indices, 5, 16, torch.Generator(), drop_last=True)] == [
        10
    ]
    labels = torch.full((data.dataset.n_train,), 1)
    assert all(
        (b[1] == 1).all() for b in SampledBatches(data, indices, 20, 8, torch.Generator(), labels=labels)
    )


def test_sampled_batches_under_ddp_give_each_rank_its_strided_share(monkeypatch):
    from al_bench import distributed

    data = tiny_data()
    full = SampledBatches(data, np.arange(10), 21, 4, torch.Generator().manual_seed(3)).draw()
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        batches = SampledBatches(data, np.arange(10), 21, 4, torch.Generator().manual_seed(3))
        assert len(batches) == 3  # 11 draws per rank (padded by wrapping around), batch 4
        shares.append(torch.cat([b[2].cpu() for b in batches]))
    assert torch.equal(shares[0], full[0::2]) and torch.equal(shares[1], torch.cat([full[1::2], full[:1]]))


def test_draws_follow_the_authors_fixed_length_sampler():
    """RandomFixedLengthSampler: randperm(target) % L below the target; one plain pass at or above it."""
    data = tiny_data()
    counts = np.bincount(SampledBatches(data, np.arange(7), 5056, 64, torch.Generator()).draw().numpy())
    assert set(counts) == {5056 // 7, 5056 // 7 + 1} and counts.sum() == 5056
    big = SampledBatches(data, np.arange(30), 20, 8, torch.Generator().manual_seed(2))
    assert len(big) == 4 and sorted(big.draw().tolist()) == list(range(30))


def test_train_model_epochs_are_samples_per_epoch_draws(make_cfg):
    cfg, data, net = setup(make_cfg, "trainer.samples_per_epoch=40", "trainer.max_epochs=2")
    counter = BatchCounter()
    train_model(cfg, net, data, data.pool_indices[:8], seed=0, cycle=0, callbacks=[counter])
    assert counter.sizes == [[16, 16, 8], [16, 16, 8]]  # 8 labeled samples, 40 draws per epoch, batch 16


# ---- early stopping ----------------------------------------------------------------------------------------
def scripted(scores: list[float]):
    """A score function that returns ``scores`` in turn, one per epoch."""
    it = iter(scores)
    return lambda net: next(it)


def test_early_stopping_stops_after_patience_epochs_without_improvement_and_restores_the_best():
    data = tiny_data()
    torch.manual_seed(0)
    module = ALModule(MLP([1, 8, 8], 2, hidden=[16]), optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    # best at epoch 1; epochs 2, 3 (a tie does not improve), 4 do not beat it -> stop after epoch 4
    stopper = ValidationEarlyStopping(3, scripted([0.5, 0.7, 0.6, 0.7, 0.65, 0.9, 0.95, 0.99]))
    snaps = Snapshots()
    batches = data.train_batches(np.arange(64), torch.Generator().manual_seed(0))
    trainer = fit(module, data, batches, epochs=8, callbacks=[snaps, stopper])
    assert trainer.current_epoch == 5 and len(snaps.states) == 5
    assert (stopper.best_epoch, stopper.best_score, stopper.stopped_epoch) == (1, 0.7, 4)
    restored = module.net.state_dict()
    assert same_state(restored, snaps.states[1])
    assert not same_state(restored, snaps.states[4])


def test_early_stopping_restores_the_best_weights_when_max_epochs_ends_the_fit():
    data = tiny_data()
    torch.manual_seed(0)
    module = ALModule(MLP([1, 8, 8], 2, hidden=[16]), optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    stopper, snaps = ValidationEarlyStopping(3, scripted([0.2, 0.8, 0.5])), Snapshots()
    batches = data.train_batches(np.arange(64), torch.Generator().manual_seed(0))
    trainer = fit(module, data, batches, epochs=3, callbacks=[snaps, stopper])
    assert trainer.current_epoch == 3 and stopper.stopped_epoch is None
    assert same_state(module.net.state_dict(), snaps.states[1])


def test_early_stopping_state_round_trips():
    stopper = ValidationEarlyStopping(3, scripted([]))
    stopper.best_score, stopper.best_epoch, stopper.wait = 0.9, 4, 2
    stopper.best_state = {"net.w": torch.ones(2)}
    other = ValidationEarlyStopping(5, scripted([]))
    other.load_state_dict(copy.deepcopy(stopper.state_dict()))
    assert (other.patience, other.best_score, other.best_epoch, other.wait) == (3, 0.9, 4, 2)
    assert torch.equal(other.best_state["net.w"], torch.ones(2))


def test_train_model_early_stopping_on_validation_accuracy(make_cfg):
    """The real score: validation accuracy in eval mode; the restored net scores the best epoch's accuracy."""
    patience, max_epochs = 2, 12
    cfg, data, net = setup(
        make_cfg, "dataset.val_size=40", "dataset.separation=0.5",
        f"trainer.early_stopping_patience={patience}", f"trainer.max_epochs={max_epochs}",
        "trainer.optimizer.lr=0.05",
    )  # fmt: skip

    class ValAcc(pl.Callback):
        def __init__(self) -> None:
            self.accs: list[float] = []

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.accs.append(evaluate(pl_module.net, data, split="train", indices=data.val_indices)["acc"])

    recorder = ValAcc()
    train_model(cfg, net, data, data.pool_indices[:60], seed=0, cycle=0, callbacks=[recorder])
    accs = recorder.accs
    best = int(np.argmax(accs))  # the first maximum: ties do not improve
    assert len(accs) == best + patience + 1 < max_epochs, accs  # stopped early
    assert accs[-1] < accs[best]  # so that restoring shows
    assert evaluate(net, data, split="train", indices=data.val_indices)["acc"] == accs[best]


def test_train_model_refuses_early_stopping_without_validation(make_cfg):
    cfg, data, net = setup(make_cfg, "trainer.early_stopping_patience=3")
    with pytest.raises(ALBenchError, match="needs a validation split"):
        train_model(cfg, net, data, data.pool_indices[:8], seed=0, cycle=0)


# ---- gradient clipping -------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["value", "norm"])
def test_gradient_clipping(algorithm):
    """One full-batch SGD step (lr 1): the update is minus the clipped gradient of the mean loss."""
    data = tiny_data(n_train=32, batch_size=32)
    torch.manual_seed(0)
    net = MLP([1, 8, 8], 2, hidden=[16], dropout=0.0)
    x, y, _ = data.get_batch(torch.arange(32))
    torch.nn.functional.cross_entropy(net(x), y).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    clip = 1e-3 if algorithm == "value" else 1e-2
    if algorithm == "value":
        expected = {n: g.clamp(-clip, clip) for n, g in grads.items()}
    else:
        total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()]))
        assert total > clip
        expected = {n: g * (clip / (total + 1e-6)) for n, g in grads.items()}
    module = ALModule(
        net, lambda p: torch.optim.SGD(p, lr=1.0), gradient_clip_val=clip, gradient_clip_algorithm=algorithm
    )
    fit(module, data, data.train_batches(np.arange(32), torch.Generator().manual_seed(0)), epochs=1)
    for n, p in net.named_parameters():
        torch.testing.assert_close(before[n] - p.detach(), expected[n], atol=1e-7, rtol=1e-4)
    steps = torch.cat([(before[n] - p.detach()).flatten() for n, p in net.named_parameters()])
    if algorithm == "value":
        assert steps.abs().max() <= clip + 1e-7 and (steps.abs() > 0.999 * clip).float().mean() > 0.1
    else:
        torch.testing.assert_close(steps.norm(), torch.tensor(clip), rtol=1e-4, atol=0)


def test_unknown_clip_algorithm_is_refused_by_the_module():
    with pytest.raises(ValueError, match="gradient_clip_algorithm"):
        ALModule(MLP([4], 2, hidden=[4]), lambda p: torch.optim.SGD(p, lr=1.0), gradient_clip_algorithm="l1")


# ---- per-layer L2 ------------------------------------------------------------------------------------------
def test_l2_param_groups_for_the_dbal_cnn_and_100_samples(make_cfg):
    """DBAL's Keras l2(3.5 / N) on the 128-unit dense layer -> weight_decay 2 * 3.5 / 100 on it alone."""
    net = DBALCNN([1, 28, 28], 10)
    module = ALModule(net, lambda p: torch.optim.Adam(p, lr=1e-3), l2=3.5 / 100, l2_params=["dense.1."])
    optimizer = module.configure_optimizers()
    names = {id(p): n for n, p in net.named_parameters()}
    groups = [({names[id(p)] for p in g["params"]}, g["weight_decay"]) for g in optimizer.param_groups]
    rest = {n for n in names.values() if not n.startswith("dense.1.")}
    assert groups == [(rest, 0.0), ({"dense.1.weight", "dense.1.bias"}, pytest.approx(0.07))]

    everything = ALModule(net, lambda p: torch.optim.SGD(p, lr=0.1), l2=0.01).configure_optimizers()
    assert len(everything.param_groups) == 1 and everything.param_groups[0]["weight_decay"] == 0.02

    # through train_model: N = the number of training samples of this fit
    cfg, data, net = setup(
        make_cfg, "model=dbal_cnn", "trainer.l2_over_n=3.5", "trainer.l2_params=[dense.1.weight]",
        "trainer.max_epochs=1",
    )  # fmt: skip
    module = train_model(cfg, net, data, data.pool_indices[:100], seed=0, cycle=0)
    decayed = module.optimizers().param_groups[1]
    assert [names_of(net, decayed["params"])] == [["dense.1.weight"]]
    assert decayed["weight_decay"] == pytest.approx(0.07)


def names_of(net: torch.nn.Module, params: list) -> list[str]:
    ids = {id(p): n for n, p in net.named_parameters()}
    return [ids[id(p)] for p in params]


def test_l2_prefix_that_matches_nothing_is_refused():
    named = list(MLP([4], 2, hidden=[4]).named_parameters())
    with pytest.raises(ALBenchError, match=r"\['dense.1.'\] match no parameter"):
        l2_param_groups(named, 0.1, ["dense.1."])


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda p: torch.optim.Adam(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)],
    ids=["adam", "sgd_momentum"],
)
def test_l2_groups_equal_an_explicit_loss_term(make_optimizer):
    """weight_decay 2 * lam == loss + lam * sum(w ** 2) on the chosen parameters, step by step (float64)."""
    lam, prefixes = 0.3, ["first."]
    torch.manual_seed(0)
    net = MLP([3], 2, hidden=[4], dropout=0.0).double()
    reference, half = copy.deepcopy(net), copy.deepcopy(net)
    x = torch.randn(8, 3, dtype=torch.float64)
    y = torch.tensor([0, 1] * 4)
    grouped = make_optimizer(l2_param_groups(net.named_parameters(), lam, prefixes))
    halved = make_optimizer(l2_param_groups(half.named_parameters(), lam / 2, prefixes))  # a factor-2 slip
    explicit = make_optimizer(list(reference.parameters()))
    decayed = [p for n, p in reference.named_parameters() if n.startswith("first.")]
    assert len(decayed) == 2
    for _ in range(3):
        for model, optimizer in ((net, grouped), (half, halved)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        explicit.zero_grad()
        loss = torch.nn.functional.cross_entropy(reference(x), y) + lam * sum((p**2).sum() for p in decayed)
        loss.backward()
        explicit.step()
        for (n, a), b in zip(net.named_parameters(), reference.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=n)
    gap = max(float((a - b).abs().max()) for a, b in zip(half.parameters(), reference.parameters()))
    assert gap > 1e-4, "the comparison must be able to see a wrong weight decay"


def test_progress_bar_auto_follows_the_terminal(monkeypatch):
    from al_bench.errors import ALBenchError
    from al_bench.training import progress_bar_enabled

    class Tty:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stderr", Tty(True))
    assert progress_bar_enabled("auto") and progress_bar_enabled(True) and not progress_bar_enabled(False)
    monkeypatch.setenv("CI", "true")
    assert not progress_bar_enabled("auto")
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr", Tty(False))
    assert not progress_bar_enabled("auto")
    with pytest.raises(ALBenchError, match="progress_bar"):
        progress_bar_enabled("sometimes")
