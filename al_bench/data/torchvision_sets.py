"""CIFAR-10/100, SVHN, MNIST and Fashion-MNIST, read by torchvision's dataset classes from their real files.

Each loader builds the torchvision dataset once per split, takes its raw arrays (``.data`` with ``.targets``
or ``.labels``; no per-sample PIL conversion) and returns an :class:`ArrayDataset` of uint8 images
[N, C, H, W] (CIFAR/SVHN 3x32x32, MNIST-likes 1x28x28) with int64 labels.

Where the files go (``root`` = the ``data_dir`` argument, torchvision's layout under it):

=============== ============================================================ =========================
dataset         files                                                        torchvision checksum
=============== ============================================================ =========================
cifar10         root/cifar-10-batches-py/{data_batch_1..5,test_batch,        md5 of every file
                batches.meta}  (extracted cifar-10-python.tar.gz)
cifar100        root/cifar-100-python/{train,test,meta}                      md5 of every file
svhn            root/{train_32x32.mat,test_32x32.mat}  (needs scipy)          md5 of both .mat files
mnist           root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte  none on the idx files
fashion_mnist   root/FashionMNIST/raw/ (same names as MNIST)                 none on the idx files
=============== ============================================================ =========================

Every loader takes ``(data_dir, download=False, verify=True)``; other keys of the dataset config
(``val_size``, ``val_seed``: used by the data module) are accepted and ignored, as by the other loaders.
``verify=True`` keeps torchvision's md5 checks; ``verify=False`` replaces them by an existence check, so that
a private subset or a re-packed copy in the same format loads too. torchvision checks no checksum on the MNIST
idx files; for them ``verify`` applies to the ``.gz`` archives: when only the archives are present they are
md5-checked (if ``verify``) and decompressed in place. Downloads (``download=True``) go through torchvision's
official classes, which md5-check what they fetch; with ``verify`` they also replace files that fail their
md5, without it they fetch only when files are missing (a private subset in place is left alone).

Normalisation statistics (per channel, on [0, 1] pixels, training split):

- CIFAR-10 mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616) -- the pixel std over the training set;
  much public AL code (kuangliu's pytorch-cifar, LL4AL) uses std (0.2023, 0.1994, 0.2010), which is not the
  pixel std; the difference is a fixed ~1.25x rescaling of the input, which the batch norm after the
  first convolution of ResNet/VGG cancels.
- CIFAR-100 mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762).
- SVHN (train split) mean (0.4377, 0.4438, 0.4728), std (0.1980, 0.2010, 0.1970).
- MNIST mean 0.1307, std 0.3081 (the values of the PyTorch MNIST example).
- Fashion-MNIST mean 0.2860, std 0.3530.

Default training augmentation: random crop (padding 4) + horizontal flip for CIFAR; crop only for SVHN (a
mirrored digit is no longer a well-formed digit); none for MNIST-likes (the DBAL protocol trains unaugmented).
"""

from __future__ import annotations

import http.client
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import datasets as tvd
from torchvision.datasets.utils import check_integrity, extract_archive

from al_bench.data.base import ArrayDataset
from al_bench.errors import MissingDatasetError

_DOWNLOAD_ERRORS = (OSError, RuntimeError, http.client.HTTPException)
_READ_ERRORS = (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError)


@dataclass(frozen=True)
class _Spec:
    """What a dataset looks like on disk and how it is served."""

    name: str
    title: str
    subdir: str  # the folder under data_dir that holds ``files``
    files: tuple[str, ...]
    archive: str  # what the user should place there
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    crop_padding: int


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _missing_message(spec: _Spec, root: Path, missing: list[str]) -> str:
    where = root / spec.subdir if spec.subdir else root
    shown = ", ".join(missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
    return (
        f"{spec.title} not found in {where} (missing {shown}): set dataset.download=true where the internet "
        f"is reachable, or place {spec.archive} in {where}"
    )


def _missing_files(spec: _Spec, root: Path) -> list[str]:
    return [f for f in spec.files if not (root / spec.subdir / f).is_file()]


def _download(spec: _Spec, root: Path, fetch: Callable[[], Any]) -> None:
    """Run torchvision's download; any network or checksum failure becomes one MissingDatasetError line."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fetch()
    except _DOWNLOAD_ERRORS as err:
        where = root / spec.subdir if spec.subdir else root
        raise MissingDatasetError(
            f"could not download {spec.title} into {root} ({type(err).__name__}: {_one_line(err, 160)}); "
            f"place {spec.archive} in {where} and set dataset.download=false"
        ) from None


def _build(spec: _Spec, root: Path, verify: bool, make: Callable[[], Any]) -> Any:
    """Construct a torchvision dataset, turning its 'not found or corrupted' RuntimeError into one line."""
    try:
        return make()
    except _READ_ERRORS as err:
        if not verify or not isinstance(err, RuntimeError):
            raise MissingDatasetError(
                f"{spec.title} files in {root / spec.subdir} could not be read ({type(err).__name__}: "
                f"{_one_line(err, 160)}); replace them with the official files"
            ) from None
        raise MissingDatasetError(
            f"{spec.title} files in {root / spec.subdir} failed torchvision's md5 check (corrupted, "
            f"truncated or a subset); re-download them, or set dataset.verify=false to load them as they are"
        ) from None


def _dataset(
    spec: _Spec, x_train: torch.Tensor, y_train: Any, x_test: torch.Tensor, y_test: Any, classes: list[str]
) -> ArrayDataset:
    return ArrayDataset(
        name=spec.name,
        x_train=x_train,
        y_train=torch.as_tensor(np.asarray(y_train), dtype=torch.long),
        x_test=x_test,
        y_test=torch.as_tensor(np.asarray(y_test), dtype=torch.long),
        num_classes=spec.num_classes,
        mean=spec.mean,
        std=spec.std,
        augment=spec.augment,
        crop_padding=spec.crop_padding,
        classes=[str(c) for c in classes],
    )


# ---- CIFAR -------------------------------------------------------------------------------------------------


def _without_md5(cls: type) -> type:
    """A subclass of a torchvision CIFAR class whose integrity checks only test that the files exist.

    torchvision's ``check_integrity(path, md5=None)`` is exactly an existence check, so the subclass only
    blanks the md5 entries of the file lists (the archive md5 used by ``download`` is kept).
    """
    return type(
        f"Unverified{cls.__name__}",
        (cls,),
        {
            "train_list": [[name, None] for name, _ in cls.train_list],
            "test_list": [[name, None] for name, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
        },
    )


_CIFAR_CLASSES: dict[type, type] = {
    tvd.CIFAR10: _without_md5(tvd.CIFAR10),
    tvd.CIFAR100: _without_md5(tvd.CIFAR100),
}


def _load_cifar(
    spec: _Spec, cls: type, data_dir: str | os.PathLike, download: bool, verify: bool
) -> ArrayDataset:
    root = Path(data_dir).expanduser()
    klass = cls if verify else _CIFAR_CLASSES[cls]
    if download and (verify or _missing_files(spec, root)):
        _download(spec, root, lambda: cls(str(root), train=True, download=True))
    missing = _missing_files(spec, root)
    if missing:
        raise MissingDatasetError(_missing_message(spec, root, missing))
    splits = [_build(spec, root, verify, lambda t=t: klass(str(root), train=t)) for t in (True, False)]
    # .data is [N, H, W, C] uint8 (a transposed view of the stored [N, C, H, W] rows): permuting back is free.
    x = [torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous() for s in splits]
    return _dataset(spec, x[0], splits[0].targets, x[1], splits[1].targets, list(splits[0].classes))


_CIFAR10 = _Spec(
    name="cifar10",
    title="CIFAR-10",
    subdir=tvd.CIFAR10.base_folder,
    files=(*(n for n, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list), tvd.CIFAR10.meta["filename"]),
    archive="the extracted cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html)",
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    augment="crop_flip",
    crop_padding=4,
)

_CIFAR100 = _Spec(
    name="cifar100",
    title="CIFAR-100",
    subdir=tvd.CIFAR100.base_folder,
    files=(*(n for n, _ in tvd.CIFAR100.train_list + tvd.CIFAR100.test_list), tvd.CIFAR100.meta["filename"]),
    archive="the extracted cifar-100-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html)",
    num_classes=100,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    augment="crop_flip",
    crop_padding=4,
)


def load_cifar10(
    data_dir: str | os.PathLike, download: bool = False, verify: bool = True, **_: object
) -> ArrayDataset:
    """CIFAR-10: 50,000 train / 10,000 test uint8 images [N, 3, 32, 32], 10 classes, crop+flip by default."""
    return _load_cifar(_CIFAR10, tvd.CIFAR10, data_dir, download, verify)


def load_cifar100(
    data_dir: str | os.PathLike, download: bool = False, verify: bool = True, **_: object
) -> ArrayDataset:
    """CIFAR-100 (fine labels): 50,000 train / 10,000 test uint8 images [N, 3, 32, 32], 100 classes."""
    return _load_cifar(_CIFAR100, tvd.CIFAR100, data_dir, download, verify)


# ---- SVHN --------------------------------------------------------------------------------------------------


class _UnverifiedSVHN(tvd.SVHN):
    """torchvision's SVHN with md5 checks replaced by existence checks (``check_integrity(path, None)``)."""

    split_list = {k: [url, name, None] for k, (url, name, _) in tvd.SVHN.split_list.items()}


_SVHN = _Spec(
    name="svhn",
    title="SVHN",
    subdir="",
    files=(tvd.SVHN.split_list["train"][1], tvd.SVHN.split_list["test"][1]),
    archive="train_32x32.mat and test_32x32.mat (http://ufldl.stanford.edu/housenumbers/)",
    num_classes=10,
    mean=(0.4377, 0.4438, 0.4728),
    std=(0.1980, 0.2010, 0.1970),
    augment="crop",
    crop_padding=4,
)


def load_svhn(
    data_dir: str | os.PathLike, download: bool = False, verify: bool = True, **_: object
) -> ArrayDataset:
    """SVHN cropped digits (train 73,257 / test 26,032; 'extra' unused): uint8 [N, 3, 32, 32], labels 0..9.

    The .mat files label the digit 0 as 10; torchvision maps it to 0. Default augmentation: crop, no flip.
    """
    root = Path(data_dir).expanduser()
    klass = tvd.SVHN if verify else _UnverifiedSVHN
    if download and (verify or _missing_files(_SVHN, root)):
        _download(
            _SVHN, root, lambda: [tvd.SVHN(str(root), split=s, download=True) for s in ("train", "test")]
        )
    missing = _missing_files(_SVHN, root)
    if missing:
        raise MissingDatasetError(_missing_message(_SVHN, root, missing))
    train, test = (
        _build(_SVHN, root, verify, lambda s=s: klass(str(root), split=s)) for s in ("train", "test")
    )
    # .data is a transposed view [N, C, H, W] of the .mat array [H, W, C, N]: one contiguous copy here.
    x_train, x_test = (torch.from_numpy(np.ascontiguousarray(s.data)) for s in (train, test))
    return _dataset(_SVHN, x_train, train.labels, x_test, test.labels, [str(d) for d in range(10)])


# ---- MNIST-likes -------------------------------------------------------------------------------------------


def _mnist_spec(cls: type, name: str, title: str, mean: float, std: float, source: str) -> _Spec:
    return _Spec(
        name=name,
        title=title,
        subdir=os.path.join(cls.__name__, "raw"),
        files=tuple(os.path.splitext(f)[0] for f, _ in cls.resources),
        archive=f"the four idx files (-ubyte, or their .gz archives) from {source}",
        num_classes=10,
        mean=(mean,),
        std=(std,),
        augment="none",
        crop_padding=0,
    )


_MNIST = _mnist_spec(
    tvd.MNIST, "mnist", "MNIST", 0.1307, 0.3081, "https://ossci-datasets.s3.amazonaws.com/mnist/"
)
_FASHION = _mnist_spec(
    tvd.FashionMNIST,
    "fashion_mnist",
    "Fashion-MNIST",
    0.2860,
    0.3530,
    "https://github.com/zalandoresearch/fashion-mnist",
)


def _extract_local_archives(spec: _Spec, cls: type, root: Path, verify: bool) -> None:
    """Decompress ``<file>.gz`` next to each missing idx file (no network); md5-checked when ``verify``."""
    raw = root / spec.subdir
    for archive, md5 in cls.resources:
        target, gz = raw / os.path.splitext(archive)[0], raw / archive
        if target.is_file() or not gz.is_file():
            continue
        if verify and not check_integrity(str(gz), md5):
            raise MissingDatasetError(
                f"{gz} failed torchvision's md5 check (corrupted or not the official file); replace it, or "
                f"set dataset.verify=false to load it as it is"
            )
        extract_archive(str(gz), str(raw))


def _load_mnist_like(
    spec: _Spec, cls: type, data_dir: str | os.PathLike, download: bool, verify: bool
) -> ArrayDataset:
    root = Path(data_dir).expanduser()
    if download and _missing_files(spec, root):
        _download(spec, root, lambda: cls(str(root), train=True, download=True))
    _extract_local_archives(spec, cls, root, verify)
    missing = _missing_files(spec, root)
    if missing:
        raise MissingDatasetError(_missing_message(spec, root, missing))
    train, test = (_build(spec, root, verify, lambda t=t: cls(str(root), train=t)) for t in (True, False))
    # .data is a uint8 tensor [N, 28, 28], .targets int64 [N].
    x_train, x_test = train.data.unsqueeze(1), test.data.unsqueeze(1)
    return _dataset(spec, x_train, train.targets, x_test, test.targets, list(cls.classes))


def load_mnist(
    data_dir: str | os.PathLike, download: bool = False, verify: bool = True, **_: object
) -> ArrayDataset:
    """MNIST: 60,000 train / 10,000 test uint8 images [N, 1, 28, 28], no augmentation by default."""
    return _load_mnist_like(_MNIST, tvd.MNIST, data_dir, download, verify)


def load_fashion_mnist(
    data_dir: str | os.PathLike, download: bool = False, verify: bool = True, **_: object
) -> ArrayDataset:
    """Fashion-MNIST: 60,000 train / 10,000 test uint8 images [N, 1, 28, 28], no augmentation by default."""
    return _load_mnist_like(_FASHION, tvd.FashionMNIST, data_dir, download, verify)


LOADERS: dict[str, Callable[..., ArrayDataset]] = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
}
