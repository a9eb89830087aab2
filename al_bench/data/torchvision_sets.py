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
fashion_mnist   root/FashionMNIST/raw/ or root/ itself (flat, as Debian's    md5 of the decompressed
                dataset-fashion-mnist), same names as MNIST, idx or .gz      idx content (pinned here)
=============== ============================================================ =========================

Every loader takes ``(data_dir, download=False, verify=True)``; other keys of the dataset config
(``val_size``, ``val_seed``: used by the data module) are accepted and ignored, as by the other loaders.
``verify=True`` keeps torchvision's md5 checks; ``verify=False`` replaces them by an existence check, so that
a private subset or a re-packed copy in the same format loads too. torchvision checks no checksum on the MNIST
idx files; for them ``verify`` applies to the ``.gz`` archives: when only the archives are present they are
md5-checked (if ``verify``) and decompressed in place. Fashion-MNIST is read by this module, not by
torchvision: each file as idx or ``.gz`` (decompressed in memory, nothing is written); ``verify`` compares the
md5 of the decompressed content with :data:`FASHION_MNIST_MD5`, so a recompressed official copy (Debian's)
passes; when ``data_dir`` lacks the files it falls back to ``fallback_dir`` (the config: Debian's folder).
Downloads (``download=True``) go through torchvision's official classes, which md5-check what they fetch; with
``verify`` they also replace files that fail their md5, without it they fetch only when files are missing (a
private subset in place is left alone; MNIST-likes are fetched only when files are missing).

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

import gzip
import hashlib
import http.client
import logging
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


# ---- Fashion-MNIST: idx or .gz, torchvision's layout or flat, content-verified -----------------------------

FASHION_MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
"""md5 of the DECOMPRESSED official Fashion-MNIST idx files (not of the .gz archives, whose bytes depend on
the compressor: Debian recompresses them, so torchvision's archive md5s fail on its copy). Computed once from
Debian's dataset-fashion-mnist; equal to the md5s other public loaders pin for the decompressed files."""

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` puts the four .gz files (flat): the config's ``fallback_dir``."""

_log = logging.getLogger(__name__)


def _idx_path(folder: Path, name: str) -> Path | None:
    """``folder/name`` if it is a file, else ``folder/name.gz`` if that is, else None."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _holds_fashion(folder: Path) -> bool:
    return all(_idx_path(folder, name) is not None for name in FASHION_MNIST_MD5)


#: idx files this process already decompressed and checked, by (sha256 of the file's bytes, suffix, name,
#: expected md5 or None): a sweep worker runs many runs on the same files, and decompressing and hashing
#: Fashion-MNIST took ~0.35 s per run (reading and hashing the compressed bytes: ~0.06 s). Entries are
#: read-only arrays (callers copy them); beyond :data:`_IDX_CACHE_SIZE` the oldest goes.
_IDX_CACHE: dict[tuple[str, str, str, str | None], np.ndarray] = {}
_IDX_CACHE_SIZE = 8


def _read_idx(path: Path, name: str, verify: bool) -> np.ndarray:
    """One idx file (plain or .gz, decompressed in memory) as a read-only uint8 array of the shape in its
    header; the same bytes already decoded by this process are not decoded again.

    With ``verify`` the md5 of the decompressed bytes must equal ``FASHION_MNIST_MD5[name]``.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise _unreadable(path, err) from None
    key = (hashlib.sha256(raw).hexdigest(), path.suffix, name, FASHION_MNIST_MD5[name] if verify else None)
    if key not in _IDX_CACHE:
        while len(_IDX_CACHE) >= _IDX_CACHE_SIZE:
            del _IDX_CACHE[next(iter(_IDX_CACHE))]
        _IDX_CACHE[key] = _decode_idx(raw, path, name, verify)
    return _IDX_CACHE[key]


def _unreadable(path: Path, err: BaseException) -> MissingDatasetError:
    return MissingDatasetError(
        f"Fashion-MNIST file {path} could not be read ({type(err).__name__}: {_one_line(err, 120)}); "
        f"replace it with the official file"
    )


def _decode_idx(raw: bytes, path: Path, name: str, verify: bool) -> np.ndarray:
    """:func:`_read_idx` of the file's bytes ``raw`` (``path`` for its suffix and the messages)."""
    try:
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise _unreadable(path, err) from None
    if verify:
        digest = hashlib.md5(raw).hexdigest()
        if digest != FASHION_MNIST_MD5[name]:
            raise MissingDatasetError(
                f"Fashion-MNIST file {path} failed the md5 check of its decompressed content ({digest}, "
                f"official {FASHION_MNIST_MD5[name]}): not the official file; replace it, or set "
                f"dataset.verify=false to load it as it is"
            )
    # header: 0, 0, 0x08 (uint8), ndim; then ndim big-endian uint32 dims; then the data
    ndim = raw[3] if len(raw) >= 4 else 0
    ok = raw[:3] == b"\x00\x00\x08" and 1 <= ndim <= 3 and len(raw) >= 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)) if ok else ()
    if not ok or len(raw) != 4 + 4 * ndim + int(np.prod(shape)):
        raise MissingDatasetError(
            f"Fashion-MNIST file {path} is not a uint8 idx file of the size its header gives; replace it "
            f"with the official file"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_missing_message(root: Path, places: list[Path], fallback: Path | None) -> str:
    debian = (
        f"or on Debian/Ubuntu run `apt-get install dataset-fashion-mnist` (read from {DEBIAN_FASHION_MNIST})"
        if fallback is not None and str(fallback) == DEBIAN_FASHION_MNIST
        else f"or on Debian/Ubuntu run `apt-get install dataset-fashion-mnist` and set "
        f"dataset.data_dir={DEBIAN_FASHION_MNIST}"
    )
    return (
        f"Fashion-MNIST not found in {' nor '.join(str(p) for p in places)} (each place needs the four "
        f"files {{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte, plain or .gz): set dataset.download=true "
        f"where the internet is reachable, place them (https://github.com/zalandoresearch/fashion-mnist) in "
        f"{root}, {debian}"
    )


def load_fashion_mnist(
    data_dir: str | os.PathLike,
    download: bool = False,
    verify: bool = True,
    fallback_dir: str | os.PathLike | None = None,
    **_: object,
) -> ArrayDataset:
    """Fashion-MNIST: 60,000 train / 10,000 test uint8 images [N, 1, 28, 28], no augmentation by default.

    The four files ({train,t10k}-{images-idx3,labels-idx1}-ubyte, each plain or ``.gz``) are looked for in
    ``data_dir/FashionMNIST/raw`` (torchvision's layout), then in ``data_dir`` itself (flat, as Debian ships
    them), then, when ``data_dir`` holds neither, in ``fallback_dir`` (configs/dataset/fashion_mnist.yaml sets
    it to Debian's /usr/share/datasets/fashion-mnist, so ``apt-get install dataset-fashion-mnist`` is enough;
    ``null`` turns the fallback off). Only when all of these lack the files does ``download`` fetch them with
    torchvision into ``data_dir/FashionMNIST/raw``. ``.gz`` files are decompressed in memory, never on disk.
    ``verify``: the md5 of every decompressed file must be in :data:`FASHION_MNIST_MD5`.
    """
    root = Path(data_dir).expanduser()
    places = [root / _FASHION.subdir, root]
    fallback = Path(fallback_dir).expanduser() if fallback_dir else None
    folder = next((p for p in places if _holds_fashion(p)), None)
    if folder is None and fallback is not None and _holds_fashion(fallback):
        _log.info("Fashion-MNIST: %s lacks the files; reading %s", root, fallback)
        folder = fallback
    if folder is None and download:
        _download(_FASHION, root, lambda: tvd.FashionMNIST(str(root), train=True, download=True))
        folder = next((p for p in places if _holds_fashion(p)), None)
    if folder is None:
        looked = places + ([fallback] if fallback is not None else [])
        raise MissingDatasetError(_fashion_missing_message(root, looked, fallback))
    arrays = {}
    for name in FASHION_MNIST_MD5:
        path = _idx_path(folder, name)
        assert path is not None
        arrays[name] = _read_idx(path, name, verify)
    x_train, y_train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise MissingDatasetError(
                f"Fashion-MNIST {split} files in {folder} do not match (images {x.shape}, labels {y.shape}); "
                f"replace them with the official files"
            )
    # frombuffer gives read-only views of the decompressed bytes: one copy into writable tensors.
    return _dataset(
        _FASHION,
        torch.from_numpy(x_train.copy()).unsqueeze(1),
        y_train.astype(np.int64),
        torch.from_numpy(x_test.copy()).unsqueeze(1),
        y_test.astype(np.int64),
        list(tvd.FashionMNIST.classes),
    )


LOADERS: dict[str, Callable[..., ArrayDataset]] = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
}
