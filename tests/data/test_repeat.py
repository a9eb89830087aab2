"""Repeated datasets (Repeated-MNIST): copies, fixed noise after normalisation, test split untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from al_bench.build import build_dataset
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.data.repeat import repeat_dataset
from al_bench.errors import ALBenchError
from al_bench.loop import run
from tests.conftest import TINY, compose_config
from tests.data.test_torchvision_sets import write_mnist_like

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


def _images(n: int, channels: int = 1, size: int = 28, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    return ArrayDataset(
        name="tiny",
        x_train=torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8),
        y_train=torch.arange(n) % 10,
        x_test=torch.randint(0, 256, (4, channels, size, size), generator=g, dtype=torch.uint8),
        y_test=torch.tensor([3, 1, 4, 1]),
        num_classes=10,
        mean=MNIST_MEAN * channels if channels == 1 else (0.4914, 0.4822, 0.4465),
        std=MNIST_STD * channels if channels == 1 else (0.2470, 0.1, 0.5),
    )


def _served(ds: ArrayDataset, indices: list[int] | torch.Tensor, split: str = "train") -> torch.Tensor:
    """What the model sees: the data module's normalised float batch [B, C, H, W]."""
    return ALDataModule(ds).get_batch(torch.as_tensor(indices), split=split)[0]


def test_copies_have_the_shapes_labels_and_global_indices() -> None:
    ds = _images(5, size=4)
    rep = repeat_dataset(ds, times=3, noise_std=0.0, seed=0)
    assert rep.x_train.shape == (15, 1, 4, 4) and rep.x_train.dtype == torch.float32
    assert rep.y_train.tolist() == ds.y_train.tolist() * 3 and rep.n_train == 15
    assert (rep.name, rep.num_classes, rep.mean, rep.std) == (ds.name, ds.num_classes, ds.mean, ds.std)
    for k in range(3):  # copy k of sample i is global index k * N + i, served exactly as the original
        torch.testing.assert_close(_served(rep, [k * 5 + i for i in range(5)]), _served(ds, list(range(5))))


def test_test_split_is_untouched() -> None:
    ds = _images(6, size=4)
    rep = repeat_dataset(ds, times=2, noise_std=0.3, seed=1)
    assert rep.x_test is ds.x_test and rep.y_test is ds.y_test and rep.x_test.dtype == torch.uint8
    assert torch.equal(_served(rep, [0, 1, 2, 3], "test"), _served(ds, [0, 1, 2, 3], "test"))


def test_repeat_one_without_noise_is_the_dataset_itself() -> None:
    ds = _images(4, size=4)
    assert repeat_dataset(ds, times=1, noise_std=0.0, seed=0) is ds
    assert ds.x_train.dtype == torch.uint8
    noisy = repeat_dataset(ds, times=1, noise_std=0.1, seed=0)  # noise alone: same rows, float
    assert noisy.x_train.shape == ds.x_train.shape and noisy.x_train.dtype == torch.float32


def test_noise_is_fixed_per_seed_and_differs_across_copies() -> None:
    ds = _images(8, size=6)
    a = repeat_dataset(ds, times=3, noise_std=0.1, seed=7)
    assert torch.equal(a.x_train, repeat_dataset(ds, times=3, noise_std=0.1, seed=7).x_train)
    assert not torch.equal(a.x_train, repeat_dataset(ds, times=3, noise_std=0.1, seed=8).x_train)
    copies = a.x_train.view(3, 8, 1, 6, 6)
    assert not torch.equal(copies[0], copies[1]) and not torch.equal(copies[1], copies[2])
    served = _served(a, list(range(24)))  # the same every time it is served: fixed, not per epoch
    assert torch.equal(served, _served(a, list(range(24))))


@pytest.mark.parametrize("channels", [1, 3])
def test_noise_std_is_in_normalised_units(channels: int) -> None:
    ds = _images(100, channels=channels, seed=2)
    noise_std = 0.1
    rep = repeat_dataset(ds, times=3, noise_std=noise_std, seed=0)
    clean = _served(ds, list(range(100)))
    for k in range(3):
        diff = _served(rep, [k * 100 + i for i in range(100)]) - clean  # [100, C, 28, 28]
        per_channel = diff.transpose(0, 1).reshape(channels, -1)
        assert per_channel.std(1).sub(noise_std).abs().max() < 0.002, per_channel.std(1)
        assert per_channel.mean(1).abs().max() < 0.002
    independent = _served(rep, list(range(100))) - _served(rep, list(range(100, 200)))
    assert abs(float(independent.std()) - noise_std * 2**0.5) < 0.003  # copies' noises are independent


def test_float_dataset_without_statistics_gets_the_noise_as_is() -> None:
    """Already standardised float data (digits): no mean/std, the noise is added directly."""
    ds = _images(50, size=8)
    ds = ArrayDataset("std", ds.x_train.float() / 255, ds.y_train, ds.x_test.float() / 255, ds.y_test, 10)
    rep = repeat_dataset(ds, times=2, noise_std=0.2, seed=0)
    diff = rep.x_train.view(2, 50, 1, 8, 8) - ds.x_train
    assert abs(float(diff.std()) - 0.2) < 0.01


@pytest.mark.parametrize(("times", "noise"), [(0, 0.0), (1.5, 0.0), (True, 0.0), ("3", 0.0), (2, -0.1)])
def test_bad_options_are_one_line(times: object, noise: object) -> None:
    with pytest.raises(ALBenchError, match="dataset.repeat") as info:
        repeat_dataset(_images(2, size=4), times=times, noise_std=noise, seed=0)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_build_dataset_takes_the_keys_for_any_dataset(tmp_path: Path) -> None:
    """synthetic.yaml has neither key: absent means 1 / 0.0; given with +, they repeat its train split."""
    plain = build_dataset(compose_config(TINY, tmp_path))
    rep = build_dataset(
        compose_config([*TINY, "+dataset.repeat=2", "+dataset.repeat_noise_std=0.05"], tmp_path)
    )
    assert rep.n_train == 2 * plain.n_train and torch.equal(rep.x_test, plain.x_test)
    assert rep.y_train.tolist() == plain.y_train.tolist() * 2
    with pytest.raises(ALBenchError, match="dataset.repeat must be"):
        build_dataset(compose_config([*TINY, "+dataset.repeat=0"], tmp_path))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_yaml_defaults_leave_the_dataset_alone(tmp_path: Path, name: str) -> None:
    cfg = compose_config([f"dataset={name}"], tmp_path)
    assert cfg.dataset.repeat == 1 and cfg.dataset.repeat_noise_std == 0.0


def test_repeated_mnist_end_to_end(tmp_path: Path) -> None:
    """Tiny MNIST-format files, repeated 3 times with noise 0.1: two AL cycles over the 21-row pool."""
    arrays = write_mnist_like(tmp_path / "mnist", "MNIST", np.random.default_rng(0))
    overrides = [
        "dataset=mnist",
        f"dataset.data_dir={tmp_path / 'mnist'}",
        "dataset.verify=false",
        "dataset.repeat=3",
        "dataset.repeat_noise_std=0.1",
        "strategy=entropy",
        "budget.init_size=4",
        "budget.init_balanced=false",
        "budget.query_size=2",
        "budget.cycles=1",
        "budget.pool_subset=null",
        "trainer.max_epochs=1",
        "trainer.batch_size=4",
        "verbose=false",
    ]
    cfg = compose_config(overrides, tmp_path)
    ds = build_dataset(cfg)
    assert ds.n_train == 21 and ds.x_train.dtype == torch.float32 and ds.x_test.dtype == torch.uint8
    assert ds.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist() * 3
    result = run(cfg)
    curve = pd.read_csv(result.run_dir / "curve.csv")
    assert result.status == "finished" and curve["n_labeled"].tolist() == [4, 6]
    assert (curve["dataset"] == "mnist").all()
