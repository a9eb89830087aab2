"""Scenario pools without training: the imbalanced profile exactly, noisy labels stable per seed with the
stated flip rate (binomial bound) and a clean test set, the open-set pool's share and class renumbering, the
validation split, the curve's bookkeeping columns, the pool's out-of-distribution accounting and the
config group."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.pool import ActivePool
from al_bench.scenarios import (
    OOD,
    Clean,
    Imbalanced,
    LabelNoise,
    OpenSet,
    ScenarioPool,
    build_scenario,
    scenario_name,
)
from al_bench.scenarios.imbalanced import long_tail_counts
from al_bench.scenarios.label_noise import noise_targets, noisy_labels
from al_bench.scenarios.open_set import class_map
from tests.conftest import config_names


def labelled(n_per_class: list[int], n_test: int = 40, seed: int = 0) -> ArrayDataset:
    """Features [N, 2] that are irrelevant here; class c has n_per_class[c] train rows, shuffled."""
    g = torch.Generator().manual_seed(seed)
    y = torch.repeat_interleave(torch.arange(len(n_per_class)), torch.tensor(n_per_class))
    y = y[torch.randperm(len(y), generator=g)]
    y_test = torch.arange(n_test) % len(n_per_class)
    return ArrayDataset(
        "t", torch.randn(len(y), 2, generator=g), y, torch.randn(n_test, 2), y_test, len(n_per_class)
    )


def five_sigma(n: int, p: float) -> float:
    return 5 * np.sqrt(n * p * (1 - p))


# ---- imbalanced ----------------------------------------------------------------------------------------
def test_long_tail_counts_are_cui_et_al_cifar10_lt():
    assert long_tail_counts(5000, 10, 100).tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert long_tail_counts(5000, 10, 10).tolist() == [
        5000,
        3871,
        2997,
        2320,
        1796,
        1391,
        1077,
        834,
        645,
        500,
    ]
    assert long_tail_counts(5000, 10, 100, "step").tolist() == [5000] * 5 + [50] * 5
    assert long_tail_counts(7, 3, 1).tolist() == [7, 7, 7]


@pytest.mark.parametrize(
    ("rho", "profile", "expected"),
    [
        (100, "exponential", [200, 43, 9, 2]),
        (10, "exponential", [200, 92, 43, 20]),
        (4, "step", [200, 200, 50, 50]),
    ],
)
def test_imbalanced_pool_follows_the_profile_exactly(rho, profile, expected):
    ds = labelled([230, 200, 260, 210])  # n_max = the smallest class count, 200
    pool = Imbalanced(rho=rho, profile=profile).build(ds, seed=3)
    labels = ds.y_train.numpy()
    assert np.bincount(labels[pool.rows], minlength=4).tolist() == expected
    assert np.all(np.diff(pool.rows) > 0), "unique, ascending rows"
    assert pool.dataset is ds and np.array_equal(pool.truth, labels), "labels and test split untouched"
    val, rest = pool.split(0, 0)
    assert len(val) == 0 and np.array_equal(rest, pool.rows)


def test_imbalanced_rows_depend_on_the_seed_only():
    ds = labelled([100] * 4)
    a, b = Imbalanced(rho=10).build(ds, 0), Imbalanced(rho=10).build(ds, 0)
    c, fixed = Imbalanced(rho=10).build(ds, 1), Imbalanced(rho=10, seed=0).build(ds, 1)
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.rows, fixed.rows)
    assert not np.array_equal(a.rows, c.rows)
    assert np.array_equal(np.bincount(ds.y_train.numpy()[c.rows]), np.bincount(ds.y_train.numpy()[a.rows]))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rho": 500}, "scenario.rho<=100"),
        ({"rho": 0.5}, "scenario.rho must be a number >= 1"),
        ({"profile": "linear"}, "valid: exponential, step"),
        ({"n_max": 150}, "smaller scenario.n_max"),
    ],
)
def test_imbalanced_refuses_impossible_settings(kwargs, needle):
    with pytest.raises(ALBenchError, match=needle.replace(".", r"\.")):
        Imbalanced(**kwargs).build(labelled([100, 120, 140]), seed=0)


# ---- label noise ---------------------------------------------------------------------------------------
def test_symmetric_noise_is_stable_flips_eta_and_never_touches_the_test_set():
    n, c, eta = 20_000, 5, 0.2
    ds = labelled([n // c] * c)
    pool = LabelNoise(eta=eta).build(ds, seed=7)
    again = LabelNoise(eta=eta).build(ds, seed=7)
    other = LabelNoise(eta=eta).build(ds, seed=8)
    answers, truth = pool.answers, pool.truth
    assert np.array_equal(truth, ds.y_train.numpy()) and np.array_equal(answers, again.answers)
    assert not np.array_equal(answers, other.answers)
    wrong = answers != truth
    assert abs(wrong.sum() - n * eta) < five_sigma(n, eta), "flips ~ Binomial(n, eta)"
    for k in range(1, c):  # a flip goes to each other class alike: (answer - truth) mod C uniform on 1..C-1
        assert abs(((answers - truth) % c == k).sum() - n * eta / (c - 1)) < five_sigma(n, eta / (c - 1))
    assert pool.dataset.x_test is ds.x_test and torch.equal(pool.dataset.y_test, ds.y_test)
    assert pool.dataset.x_train is ds.x_train and pool.dataset.num_classes == c
    assert np.array_equal(pool.rows, np.arange(n))


def test_asymmetric_pairs_flip_only_their_sources_to_their_targets():
    n, eta = 16_000, 0.3
    ds = labelled([n // 4] * 4)
    pool = LabelNoise(eta=eta, kind="asymmetric", pairs=[[0, 2], [1, 0]]).build(ds, seed=0)
    answers, truth = pool.answers, pool.truth
    wrong = answers != truth
    assert not wrong[truth >= 2].any(), "classes without a pair never flip"
    for src, dst in ((0, 2), (1, 0)):
        rows = truth == src
        assert set(answers[rows & wrong]) == {dst}
        assert abs(wrong[rows].sum() - rows.sum() * eta) < five_sigma(int(rows.sum()), eta)


def test_noise_table_is_per_row_and_grows_with_eta():
    rng = lambda: np.random.default_rng(1)  # noqa: E731
    labels = np.arange(1000) % 3
    low, high = noisy_labels(labels, 3, 0.1, rng()), noisy_labels(labels, 3, 0.3, rng())
    assert np.all((low != labels) <= (high != labels)), "one seed: a larger eta only adds flips"
    assert noise_targets(4, None).tolist() == [1, 2, 3, 0], "pair flip c -> c+1 mod C"
    assert noise_targets(4, [[2, 3]]).tolist() == [-1, -1, 3, -1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"eta": 1.5}, r"scenario\.eta must be a number in \[0\.0, 1\.0\]"),
        ({"kind": "pairflip"}, "valid: symmetric, asymmetric"),
        ({"pairs": [[0, 1]]}, "needs scenario.kind=asymmetric"),
        ({"kind": "asymmetric", "pairs": [[0, 9]]}, "each pair is"),
        ({"kind": "asymmetric", "pairs": [0, 1]}, "each pair is"),
        ({"kind": "asymmetric", "pairs": [[0, 1], [0, 2]]}, "list each src once"),
    ],
)
def test_label_noise_refuses_bad_settings(kwargs, needle):
    with pytest.raises(ALBenchError, match=needle):
        LabelNoise(**kwargs).build(labelled([10, 10, 10]), seed=0)


# ---- open set ------------------------------------------------------------------------------------------
def test_open_set_pool_share_renumbering_and_test_split():
    ds = labelled([100, 100, 100, 100, 100], n_test=50)
    pool = OpenSet(known_classes=[3, 1], ood_fraction=0.2).build(ds, seed=0)
    y = ds.y_train.numpy()
    in_rows = pool.rows[np.isin(y[pool.rows], [3, 1])]
    ood_rows = pool.rows[~np.isin(y[pool.rows], [3, 1])]
    assert len(in_rows) == 200 and len(ood_rows) == 50, "every known row + 50: 20% of 250"
    assert (pool.answers[ood_rows] == OOD).all() and pool.ood[ood_rows].all() and not pool.ood[in_rows].any()
    assert np.array_equal(pool.answers[in_rows], np.where(y[in_rows] == 3, 0, 1)), (
        "class 3 -> 0, class 1 -> 1"
    )
    view = pool.dataset
    assert view.num_classes == 2 and len(view.y_test) == 20 and set(view.y_test.tolist()) == {0, 1}
    keep = np.isin(ds.y_test.numpy(), [3, 1])
    assert torch.equal(view.x_test, ds.x_test[torch.as_tensor(keep)])
    assert class_map(5, [3, 1]).tolist() == [OOD, 1, OOD, 0, OOD]
    default = OpenSet().build(ds, seed=0)  # round(0.6 * 5) = 3 known: classes 0, 1, 2
    assert default.dataset.num_classes == 3 and (default.answers[y <= 2] == y[y <= 2]).all()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"ood_fraction": 0.9}, "scenario.ood_fraction<="),
        ({"known_classes": [0, 0]}, "must be distinct classes"),
        ({"known_classes": [0, 1, 2]}, "needs 1 to 2 known classes"),
        ({"ood_fraction": 1.0}, "in [0.0, 1.0)"),
    ],
)
def test_open_set_refuses_impossible_settings(kwargs, needle):
    with pytest.raises(ALBenchError) as info:
        OpenSet(**kwargs).build(labelled([50, 50, 50]), seed=0)
    assert needle in str(info.value)


# ---- the validation split and the bookkeeping ------------------------------------------------------------
def test_clean_split_is_the_data_modules_own():
    ds = labelled([30, 50, 20])
    for val_size, val_seed in ((0, 0), (12, 0), (12, 5)):
        data = ALDataModule(ds, val_size=val_size, seed=val_seed)
        val, pool = Clean().build(ds, seed=0).split(val_size, val_seed)
        assert np.array_equal(val, data.val_indices) and np.array_equal(pool, data.pool_indices)


def test_validation_holds_no_out_of_distribution_rows_and_noisy_labels():
    ds = labelled([60, 60, 60, 60])
    open_pool = OpenSet(known_fraction=0.5, ood_fraction=0.4).build(ds, seed=0)
    val, pool = open_pool.split(20, 0)
    assert not open_pool.ood[val].any() and len(val) == 20
    assert np.array_equal(np.sort(np.concatenate([val, pool])), open_pool.rows)
    noisy = LabelNoise(eta=0.5).build(ds, seed=0)
    val, _ = noisy.split(40, 0)
    assert (noisy.answers[val] != noisy.truth[val]).any(), "validation labels are bought: noisy"
    stratified = ALDataModule(noisy.dataset, val_size=40, seed=0).val_indices
    assert np.array_equal(val, stratified), "stratified by the oracle's labels"
    with pytest.raises(ALBenchError, match="exceeds the 120 in-distribution"):
        open_pool.split(121, 0)


def test_record_counts_ood_noisy_and_the_true_class_histogram():
    ds = ArrayDataset("t", torch.zeros(6, 1), torch.tensor([0, 1, OOD, 1, 1, OOD]), torch.zeros(1, 1),
                      torch.zeros(1, dtype=torch.long), 2)  # fmt: skip
    truth = np.array([0, 1, OOD, 0, 1, OOD])  # row 3: true class 0, bought as 1
    pool = ScenarioPool("demo", ds, np.arange(6), truth)
    assert pool.record(np.array([0, 2, 3, 4])) == {
        "scenario": "demo", "n_ood": 1, "n_noisy": 1, "labeled_hist": "2|1",
    }  # fmt: skip
    assert pool.record(np.array([], dtype=np.int64))["labeled_hist"] == "0|0"


def test_pool_charges_ood_answers_but_never_trains_on_them():
    ood = np.zeros(10, dtype=bool)
    ood[[2, 5]] = True
    pool = ActivePool(np.arange(1, 9), size=10, ood=ood)
    pool.label(np.array([1, 2]), cycle=0)
    pool.label(np.array([5, 6, 7]), cycle=1)
    assert pool.n_labeled == 5 and pool.n_ood == 2, "every bought label is spent"
    assert pool.labeled_indices.tolist() == [1, 6, 7] and pool.ood_indices.tolist() == [2, 5]
    assert pool.unlabeled_indices.tolist() == [3, 4, 8], "never offered again"
    assert pool.bought_through(0).tolist() == [1, 2] and pool.is_labeled(np.array([2, 3])).tolist() == [
        True,
        False,
    ]
    restored = ActivePool(np.arange(1, 9), size=10, ood=ood)
    restored.load_state_dict(pool.state_dict())
    assert restored.labeled_indices.tolist() == [1, 6, 7] and restored.n_ood == 2
    with pytest.raises(ValueError, match="ood mask"):
        ActivePool(np.arange(3), size=4, ood=np.zeros(3, dtype=bool))


def test_dataset_view_shares_images():
    ds = labelled([10, 10])
    view = LabelNoise(eta=0.5).build(ds, 0).dataset
    assert dataclasses.is_dataclass(view) and view.x_train is ds.x_train and view.y_train is not ds.y_train


# ---- the config group ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", config_names("scenario"))
def test_every_scenario_yaml_builds_its_scenario(make_cfg, name):
    cfg = make_cfg(f"scenario={name}")
    scenario = build_scenario(cfg)
    assert scenario.name == name == scenario_name(cfg)
    assert build_scenario(cfg).build(labelled([40] * 4), seed=0).name == name


def test_scenario_options_from_the_command_line(make_cfg):
    cfg = make_cfg("scenario=label_noise", "scenario.kind=asymmetric", "scenario.pairs=[[2,7],[3,8],[5,6]]")
    assert build_scenario(cfg).pairs == [[2, 7], [3, 8], [5, 6]]
    with pytest.raises(ALBenchError, match=r"^scenario\.eta must be a number in \[0\.0, 1\.0\], got 2$"):
        build_scenario(make_cfg("scenario=label_noise", "scenario.eta=2"))
    older = make_cfg()
    with open_dict(older):
        del older["scenario"]
    assert isinstance(build_scenario(older), Clean) and scenario_name(older) == "clean"
