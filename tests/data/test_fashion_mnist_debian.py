"""The real Fashion-MNIST from Debian's dataset-fashion-mnist (recompressed .gz files, flat folder): its
decompressed content matches the pinned md5s (verify stays on) and two AL cycles run on it."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pandas as pd
import pytest
import torch

from al_bench.data.torchvision_sets import DEBIAN_FASHION_MNIST, FASHION_MNIST_MD5, load_fashion_mnist
from al_bench.loop import run
from tests.conftest import compose_config

DEBIAN = Path(DEBIAN_FASHION_MNIST)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not DEBIAN.is_dir(), reason=f"{DEBIAN} absent (apt-get install dataset-fashion-mnist)"
    ),
]


def test_pinned_md5s_are_those_of_the_decompressed_debian_files() -> None:
    for name, md5 in FASHION_MNIST_MD5.items():
        assert hashlib.md5(gzip.decompress((DEBIAN / f"{name}.gz").read_bytes())).hexdigest() == md5, name


def test_debian_copy_loads_verified() -> None:
    ds = load_fashion_mnist(DEBIAN, verify=True)
    assert ds.name == "fashion_mnist" and ds.num_classes == 10
    assert ds.x_train.shape == (60_000, 1, 28, 28) and ds.x_test.shape == (10_000, 1, 28, 28)
    assert ds.x_train.dtype == torch.uint8 and ds.x_test.dtype == torch.uint8
    assert ds.y_train.bincount(minlength=10).tolist() == [6_000] * 10
    assert ds.y_test.bincount(minlength=10).tolist() == [1_000] * 10
    assert ds.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                          "Bag", "Ankle boot"]  # fmt: skip
    pixels = ds.x_train.float() / 255  # the normalisation statistics the spec states
    assert abs(float(pixels.mean()) - ds.mean[0]) < 1e-3 and abs(float(pixels.std()) - ds.std[0]) < 1e-3


def test_two_al_cycles_on_the_debian_copy(tmp_path: Path) -> None:
    cfg = compose_config(
        [
            "dataset=fashion_mnist",
            f"dataset.data_dir={DEBIAN}",
            "model=dbal_cnn",
            "strategy=entropy",
            "budget.init_size=20",
            "budget.query_size=10",
            "budget.cycles=1",
            "budget.pool_subset=500",
            "trainer.max_epochs=1",
            "verbose=false",
        ],
        tmp_path,
    )
    assert cfg.dataset.verify is True  # compose_config put the results under tmp_path
    result = run(cfg)
    assert result.status == "finished"
    curve = pd.read_csv(result.run_dir / "curve.csv")
    assert curve["n_labeled"].tolist() == [20, 30]
    assert (curve["dataset"] == "fashion_mnist").all() and curve["test_acc"].between(0, 1).all()
