"""Torchvision-backed loaders read tiny files written in each dataset's real on-disk format."""

from __future__ import annotations

import gzip
import hashlib
import struct
from collections.abc import Callable
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

from al_bench.build import build_dataset
from al_bench.data import torchvision_sets
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.data.fixtures import idx_bytes as _idx_bytes  # writers shared with table.py --smoke
from al_bench.data.fixtures import write_cifar10, write_cifar100, write_mnist_like, write_svhn
from al_bench.data.fixtures import write_pickle as _pickle
from al_bench.data.torchvision_sets import LOADERS
from al_bench.errors import MissingDatasetError
from tests.conftest import compose_config

# ---- expected layouts --------------------------------------------------------------------------------------


def _cifar_images(rows: np.ndarray) -> np.ndarray:
    """CIFAR rows [N, 3072] (R plane, G plane, B plane; each 32x32 row-major) -> [N, 3, 32, 32]."""
    return rows.reshape(-1, 3, 32, 32)


def _check_common(ds: ArrayDataset, name: str, shape: tuple[int, ...], classes: int) -> None:
    assert ds.name == name
    assert ds.in_shape == shape
    assert ds.x_train.dtype == torch.uint8 and ds.x_test.dtype == torch.uint8
    assert ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    assert ds.x_train.is_contiguous() and ds.x_test.is_contiguous()
    assert ds.num_classes == classes
    assert len(ds.mean) == len(ds.std) == shape[0]
    assert all(0 < m < 1 for m in ds.mean) and all(0 < s < 1 for s in ds.std)


def test_cifar10_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train_rows, train_labels, test_rows, test_labels = write_cifar10(tmp_path, rng)
    train_rows[4, 1 * 1024 + 2 * 32 + 3] = 201  # image 4 (2nd of data_batch_2), green, row 2, column 3
    _pickle(
        tmp_path / "cifar-10-batches-py" / "data_batch_2",
        {"labels": train_labels[3:6], "data": train_rows[3:6], "batch_label": "batch 2"},
    )
    ds = LOADERS["cifar10"](tmp_path, verify=False)
    _check_common(ds, "cifar10", (3, 32, 32), 10)
    assert ds.x_train.shape == (15, 3, 32, 32) and ds.x_test.shape == (2, 3, 32, 32)
    assert int(ds.x_train[4, 1, 2, 3]) == 201
    assert torch.equal(ds.x_train, torch.from_numpy(_cifar_images(train_rows)))
    assert torch.equal(ds.x_test, torch.from_numpy(_cifar_images(test_rows)))
    assert ds.y_train.tolist() == train_labels and ds.y_test.tolist() == test_labels
    assert ds.classes[0] == "airplane" and len(ds.classes) == 10
    assert ds.augment == "crop_flip" and ds.crop_padding == 4


def test_cifar100_round_trip(tmp_path: Path) -> None:
    train_rows, train_labels, test_rows, test_labels = write_cifar100(tmp_path, np.random.default_rng(1))
    ds = LOADERS["cifar100"](tmp_path, verify=False)
    _check_common(ds, "cifar100", (3, 32, 32), 100)
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert int(ds.x_test[2, 2, 31, 0]) == int(test_rows[2, 2 * 1024 + 31 * 32 + 0])
    assert torch.equal(ds.x_train, torch.from_numpy(_cifar_images(train_rows)))
    assert ds.y_train.tolist() == train_labels and ds.y_test.tolist() == test_labels  # fine labels
    assert len(ds.classes) == 100 and ds.augment == "crop_flip"


def test_svhn_round_trip_and_label_ten_is_zero(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = write_svhn(tmp_path, np.random.default_rng(2))
    ds = LOADERS["svhn"](tmp_path, verify=False)
    _check_common(ds, "svhn", (3, 32, 32), 10)
    assert ds.x_train.shape == (5, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.y_train.tolist() == [0, 1, 2, 9, 0] and ds.y_test.tolist() == [3, 0, 7]
    # .mat X[h, w, c, n] -> x[n, c, h, w]
    assert int(ds.x_train[3, 2, 5, 17]) == int(x_train[5, 17, 2, 3])
    assert torch.equal(ds.x_test, torch.from_numpy(x_test.transpose(3, 2, 0, 1).copy()))
    assert ds.augment == "crop", "no horizontal flip for digits"


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_round_trip(tmp_path: Path, name: str, folder: str) -> None:
    arrays = write_mnist_like(tmp_path, folder, np.random.default_rng(3))
    ds = LOADERS[name](tmp_path, verify=False)
    _check_common(ds, name, (1, 28, 28), 10)
    assert ds.x_train.shape == (7, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    assert int(ds.x_train[6, 0, 27, 1]) == int(arrays["train-images-idx3-ubyte"][6, 27, 1])
    assert torch.equal(ds.x_test[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert ds.y_train.tolist() == [0, 1, 2, 3, 4, 9, 5] and ds.y_test.tolist() == [8, 6, 7, 0]
    assert ds.augment == "none"
    if name == "mnist":  # verify=True changes nothing for the idx files (torchvision has no md5 for them)
        assert torch.equal(LOADERS[name](tmp_path, verify=True).x_train, ds.x_train)
    else:  # Fashion-MNIST's decompressed content is md5-checked: random images are not the official ones
        with pytest.raises(MissingDatasetError, match="md5") as info:
            LOADERS[name](tmp_path, verify=True)
        assert "\n" not in str(info.value)


def test_mnist_gz_archives_are_decompressed_when_unverified(tmp_path: Path) -> None:
    arrays = write_mnist_like(tmp_path, "FashionMNIST", np.random.default_rng(4), gz=True)
    with pytest.raises(MissingDatasetError, match="md5") as info:
        LOADERS["fashion_mnist"](tmp_path, verify=True)  # home-made archives fail the official md5
    assert "\n" not in str(info.value)
    ds = LOADERS["fashion_mnist"](tmp_path, verify=False)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    # Fashion-MNIST archives are decompressed in memory: the data folder may be read-only (/usr/share)
    assert not (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()


# ---- Fashion-MNIST: flat layout (Debian), content md5, fallback folder -------------------------------------


def _pin_md5_of(arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the tiny written files 'official': pin the md5 of their decompressed content."""
    pinned = {name: hashlib.md5(_idx_bytes(a)).hexdigest() for name, a in arrays.items()}
    monkeypatch.setattr(torchvision_sets, "FASHION_MNIST_MD5", pinned)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "idx"])
def test_fashion_mnist_flat_layout(tmp_path: Path, gz: bool) -> None:
    """The four files directly in data_dir, as Debian's dataset-fashion-mnist ships them; nothing written."""
    arrays = write_mnist_like(tmp_path, "", np.random.default_rng(6), gz=gz, flat=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    ds = LOADERS["fashion_mnist"](tmp_path, verify=False)
    _check_common(ds, "fashion_mnist", (1, 28, 28), 10)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(ds.x_test[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert ds.y_train.tolist() == [0, 1, 2, 3, 4, 9, 5] and ds.y_test.tolist() == [8, 6, 7, 0]
    assert ds.classes[0] == "T-shirt/top" and ds.x_train.is_contiguous()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_fashion_mnist_verify_checks_the_decompressed_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = write_mnist_like(tmp_path, "", np.random.default_rng(7), gz=True, flat=True)
    _pin_md5_of(arrays, monkeypatch)
    ds = LOADERS["fashion_mnist"](tmp_path, verify=True)  # same content, any compression: passes
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    altered = arrays["t10k-images-idx3-ubyte"].copy()
    altered[2, 13, 13] ^= 1  # one bit of one pixel
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(_idx_bytes(altered))
    with pytest.raises(MissingDatasetError, match="md5") as info:
        LOADERS["fashion_mnist"](tmp_path, verify=True)
    message = str(info.value)
    assert str(tmp_path / "t10k-images-idx3-ubyte.gz") in message and "\n" not in message
    assert "dataset.verify=false" in message
    unverified = LOADERS["fashion_mnist"](tmp_path, verify=False)
    assert torch.equal(unverified.x_test[:, 0], torch.from_numpy(altered))


@pytest.mark.parametrize("damage", ["truncated_gz", "bad_header"])
def test_fashion_mnist_unreadable_file_is_one_line(tmp_path: Path, damage: str) -> None:
    write_mnist_like(tmp_path, "", np.random.default_rng(8), gz=True, flat=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    if damage == "truncated_gz":
        path.write_bytes(path.read_bytes()[:20])
    else:
        with gzip.open(path, "wb") as f:
            f.write(b"\x00\x00\x0d\x01" + struct.pack(">I", 7) + bytes(28))  # float idx, wrong size
    with pytest.raises(MissingDatasetError) as info:
        LOADERS["fashion_mnist"](tmp_path, verify=False)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_fashion_mnist_fallback_dir(tmp_path: Path) -> None:
    """data_dir first (either layout), fallback_dir only when data_dir lacks the files."""
    fallback, data_dir = tmp_path / "debian", tmp_path / "data"
    from_fallback = write_mnist_like(fallback, "", np.random.default_rng(9), gz=True, flat=True)
    ds = LOADERS["fashion_mnist"](data_dir, verify=False, fallback_dir=fallback)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(from_fallback["train-images-idx3-ubyte"]))
    assert not data_dir.exists()
    own = write_mnist_like(data_dir, "FashionMNIST", np.random.default_rng(10))
    ds = LOADERS["fashion_mnist"](data_dir, verify=False, fallback_dir=fallback)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(own["train-images-idx3-ubyte"]))


def test_fashion_mnist_missing_names_every_place_and_debian(tmp_path: Path) -> None:
    root, fallback = tmp_path / "nowhere", tmp_path / "no_debian"
    with pytest.raises(MissingDatasetError) as info:
        LOADERS["fashion_mnist"](root, fallback_dir=fallback)
    message = str(info.value)
    for place in (root / "FashionMNIST" / "raw", root, fallback):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message and "dataset.download=true" in message
    assert "\n" not in message


def test_fashion_mnist_config_falls_back_to_debian(tmp_path: Path) -> None:
    cfg = compose_config(["dataset=fashion_mnist"], tmp_path)
    debian = "/usr/share/datasets/fashion-mnist"
    assert cfg.dataset.fallback_dir == torchvision_sets.DEBIAN_FASHION_MNIST == debian
    cfg.dataset.fallback_dir = str(tmp_path / "no_debian")
    with pytest.raises(MissingDatasetError) as info:
        build_dataset(cfg)
    message = str(info.value)
    assert str(Path(cfg.paths.data_dir) / "fashion_mnist") in message
    assert str(tmp_path / "no_debian") in message and "apt-get install dataset-fashion-mnist" in message


# ---- errors ------------------------------------------------------------------------------------------------

WRITERS: dict[str, Callable[[Path], object]] = {
    "cifar10": lambda p: write_cifar10(p, np.random.default_rng(0)),
    "cifar100": lambda p: write_cifar100(p, np.random.default_rng(0)),
    "svhn": lambda p: write_svhn(p, np.random.default_rng(0)),
    "mnist": lambda p: write_mnist_like(p, "MNIST", np.random.default_rng(0)),
    "fashion_mnist": lambda p: write_mnist_like(p, "FashionMNIST", np.random.default_rng(0)),
}
TORCHVISION_CLASS = {
    "cifar10": tvd.CIFAR10,
    "cifar100": tvd.CIFAR100,
    "svhn": tvd.SVHN,
    "mnist": tvd.MNIST,
    "fashion_mnist": tvd.FashionMNIST,
}


def test_every_loader_has_a_writer() -> None:
    assert set(LOADERS) == set(WRITERS) == set(TORCHVISION_CLASS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_missing_files_give_one_line_with_the_path(tmp_path: Path, name: str) -> None:
    root = tmp_path / "nowhere" / name
    with pytest.raises(MissingDatasetError) as info:
        LOADERS[name](root)
    message = str(info.value)
    assert str(root) in message and "\n" not in message
    assert "dataset.download=true" in message


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_verify_rejects_files_that_fail_the_md5(tmp_path: Path, name: str) -> None:
    WRITERS[name](tmp_path)
    with pytest.raises(MissingDatasetError, match="verify=false") as info:
        LOADERS[name](tmp_path, verify=True)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_download_failure_is_one_line(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(self: object) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution\nsecond line")

    monkeypatch.setattr(TORCHVISION_CLASS[name], "download", offline)
    with pytest.raises(MissingDatasetError, match="could not download") as info:
        LOADERS[name](tmp_path / name, download=True)
    message = str(info.value)
    assert "name resolution" in message and str(tmp_path / name) in message and "\n" not in message


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_download_leaves_unverified_files_in_place(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """download=True, verify=False and every file present (a private subset): nothing is fetched."""
    WRITERS[name](tmp_path)

    def must_not_fetch(self: object) -> None:
        raise AssertionError("download() was called although every file is present")

    monkeypatch.setattr(TORCHVISION_CLASS[name], "download", must_not_fetch)
    ds = LOADERS[name](tmp_path, download=True, verify=False)
    assert ds.n_train > 0


# ---- configs and the data module ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_config_targets_the_loader_and_builds(tmp_path: Path, name: str) -> None:
    cfg = compose_config([f"dataset={name}"], tmp_path)
    node = cfg.dataset
    assert node.name == name
    assert node._target_ == f"{LOADERS[name].__module__}.{LOADERS[name].__name__}"
    assert node.download is False and node.verify is True
    assert Path(node.data_dir) == Path(cfg.paths.data_dir) / name
    node.verify = False  # the tiny files written here cannot match the official md5
    WRITERS[name](Path(cfg.paths.data_dir) / name)
    ds = build_dataset(cfg)
    assert ds.name == name and ds.n_train > 0


def test_data_module_serves_normalised_batches(tmp_path: Path) -> None:
    train_rows, train_labels, _, _ = write_cifar10(tmp_path, np.random.default_rng(5))
    ds = LOADERS["cifar10"](tmp_path, verify=False)
    dm = ALDataModule(ds, batch_size=4)
    x, y, idx = dm.get_batch(torch.tensor([2, 7, 11]))
    raw = torch.from_numpy(_cifar_images(train_rows)[[2, 7, 11]]).float() / 255
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.std).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (raw - mean) / std)
    assert y.tolist() == [train_labels[i] for i in (2, 7, 11)] and idx.tolist() == [2, 7, 11]
    batches = list(dm.train_batches(np.arange(15), torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [4, 4, 4, 3]
    assert all(b[0].dtype == torch.float32 and b[0].shape[1:] == (3, 32, 32) for b in batches)
    assert sorted(torch.cat([b[2] for b in batches]).tolist()) == list(range(15))


def test_fashion_mnist_files_are_decoded_once_per_process_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep worker loads the same files run after run: the second load decodes nothing, and a file whose
    bytes change (same size, same second) is decoded again."""
    arrays = write_mnist_like(tmp_path, "", np.random.default_rng(9), gz=True, flat=True)
    monkeypatch.setattr(torchvision_sets, "_IDX_CACHE", {})
    decoded = []
    real = torchvision_sets._decode_idx
    monkeypatch.setattr(torchvision_sets, "_decode_idx", lambda *a: decoded.append(a[2]) or real(*a))
    first = LOADERS["fashion_mnist"](tmp_path, verify=False)
    second = LOADERS["fashion_mnist"](tmp_path, verify=False)
    assert len(decoded) == 4 and torch.equal(first.x_train, second.x_train)
    second.x_train[0, 0, 0, 0] += 1  # datasets get their own copies: the cache is not touched
    assert torch.equal(LOADERS["fashion_mnist"](tmp_path, verify=False).x_train, first.x_train)
    altered = arrays["t10k-images-idx3-ubyte"].copy()
    altered[1, 5, 5] ^= 1
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(_idx_bytes(altered))
    third = LOADERS["fashion_mnist"](tmp_path, verify=False)
    assert decoded[4:] == ["t10k-images-idx3-ubyte"]
    assert torch.equal(third.x_test[:, 0], torch.from_numpy(altered))
