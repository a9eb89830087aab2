"""Tiny files written in each torchvision dataset's real on-disk format: for tests and table smoke runs.

The loaders of :mod:`al_bench.data.torchvision_sets` read these exactly as they read the official files, so a
smoke run (``python scripts/table.py NAME --smoke``) exercises the real parsing path without any download.
Pixels are uniform random bytes (no learnable signal: smoke runs check that runs finish, not accuracies).

Every writer takes ``(root, rng)`` and optional sizes. Without sizes it writes the fixed small layout that the
loader tests assert on; with ``n_train`` / ``n_test`` it writes that many images whose labels cycle through
every class in a random order, so class-balanced initial sets and stratified validation splits are possible.
Load with ``verify=False``: home-made files cannot match the official md5 sums.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_pickle(path: Path, obj: dict) -> None:
    """``obj`` pickled with protocol 2 (as the CIFAR python archives are), parent folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """[n] int64 labels cycling through the C classes (each n // C or n // C + 1 times), shuffled."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def write_cifar10(
    root: Path, rng: np.random.Generator, n_train: int | None = None, n_test: int | None = None
) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    """``root/cifar-10-batches-py/``: data_batch_1..5, test_batch, batches.meta.

    Rows are 3072 bytes R|G|B, each plane 32x32 row-major. Default: five training batches of 3 images with
    random labels and a test batch of 2 (labels 9, 0). ``n_train`` (split over the five batches as evenly as
    possible) / ``n_test``: balanced labels. Returns train rows [N, 3072] uint8, train labels, test rows and
    test labels.
    """
    folder = root / "cifar-10-batches-py"
    if n_train is None:
        batches = [
            (rng.integers(0, 256, (3, 3072), dtype=np.uint8), rng.integers(0, 10, 3)) for _ in range(5)
        ]
    else:
        labels = balanced_labels(n_train, 10, rng)
        rows = rng.integers(0, 256, size=(n_train, 3072), dtype=np.uint8)
        batches = list(zip(np.array_split(rows, 5), np.array_split(labels, 5)))
    train_rows, train_labels = [], []
    for b, (rows, labels) in enumerate(batches, start=1):
        labels = [int(v) for v in labels]
        write_pickle(
            folder / f"data_batch_{b}", {"batch_label": f"batch {b}", "labels": labels, "data": rows}
        )
        train_rows.append(rows)
        train_labels += labels
    n = 2 if n_test is None else n_test
    test_rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    test_labels = [9, 0] if n_test is None else [int(v) for v in balanced_labels(n, 10, rng)]
    write_pickle(folder / "test_batch", {"batch_label": "test", "labels": test_labels, "data": test_rows})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 3, "num_vis": 3072})
    return np.concatenate(train_rows), train_labels, test_rows, test_labels


def write_cifar100(
    root: Path, rng: np.random.Generator, n_train: int | None = None, n_test: int | None = None
) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    """``root/cifar-100-python/``: train, test (fine and coarse labels), meta. Default: 6 train, 3 test."""
    folder = root / "cifar-100-python"
    train_rows = rng.integers(0, 256, size=(6 if n_train is None else n_train, 3072), dtype=np.uint8)
    test_rows = rng.integers(0, 256, size=(3 if n_test is None else n_test, 3072), dtype=np.uint8)
    train_labels = (
        [0, 99, 5, 42, 7, 63] if n_train is None else [int(v) for v in balanced_labels(n_train, 100, rng)]
    )
    test_labels = [1, 98, 50] if n_test is None else [int(v) for v in balanced_labels(n_test, 100, rng)]
    for name, rows, labels in (("train", train_rows, train_labels), ("test", test_rows, test_labels)):
        coarse = [v // 5 for v in labels]
        write_pickle(
            folder / name, {"data": rows, "fine_labels": labels, "coarse_labels": coarse, "filenames": []}
        )
    fine = [f"class_{i}" for i in range(100)]
    write_pickle(
        folder / "meta", {"fine_label_names": fine, "coarse_label_names": [f"super_{i}" for i in range(20)]}
    )
    return train_rows, train_labels, test_rows, test_labels


def write_svhn(
    root: Path, rng: np.random.Generator, n_train: int | None = None, n_test: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``root/{train,test}_32x32.mat`` as published: X [32, 32, 3, N] uint8, y [N, 1] in 1..10 (10 = digit 0).

    Default: 5 train images (labels 10, 1, 2, 9, 10) and 3 test (3, 10, 7). Returns x_train, y_train, x_test,
    y_test in the .mat layout.
    """
    import scipy.io

    root.mkdir(parents=True, exist_ok=True)
    defaults = {"train": [10, 1, 2, 9, 10], "test": [3, 10, 7]}
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        y = defaults[split] if n is None else balanced_labels(n, 10, rng) + 1
        x = rng.integers(0, 256, size=(32, 32, 3, len(y)), dtype=np.uint8)
        y = np.asarray(y, dtype=np.uint8)[:, None]
        scipy.io.savemat(str(root / f"{split}_32x32.mat"), {"X": x, "y": y})
        out += [x, y]
    return tuple(out)


def idx_bytes(array: np.ndarray) -> bytes:
    """The big-endian IDX format of the MNIST files: magic (0, 0, 0x08 = uint8, ndim), dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist_like(
    root: Path,
    folder: str,
    rng: np.random.Generator,
    gz: bool = False,
    flat: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
) -> dict[str, np.ndarray]:
    """``root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or their ``.gz`` archives).

    ``folder`` is ``MNIST`` or ``FashionMNIST`` (torchvision's layout); ``flat``: the files directly in
    ``root`` (Debian's dataset-fashion-mnist layout), ``folder`` unused. Default: 7 train images (labels
    0, 1, 2, 3, 4, 9, 5) and 4 test (8, 6, 7, 0). Returns {file name: array}.
    """
    raw = root if flat else root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    train_y = [0, 1, 2, 3, 4, 9, 5] if n_train is None else balanced_labels(n_train, 10, rng)
    test_y = [8, 6, 7, 0] if n_test is None else balanced_labels(n_test, 10, rng)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(len(train_y), 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.asarray(train_y, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(len(test_y), 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.asarray(test_y, dtype=np.uint8),
    }
    for name, array in arrays.items():
        if gz:
            with gzip.open(raw / f"{name}.gz", "wb") as f:
                f.write(idx_bytes(array))
        else:
            (raw / name).write_bytes(idx_bytes(array))
    return arrays


#: the folder under ``dataset.data_dir`` that torchvision's loader reads, per MNIST-like dataset
MNIST_FOLDERS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def write_dataset(name: str, data_dir: Path, rng: np.random.Generator, n_train: int, n_test: int) -> None:
    """Write ``n_train`` / ``n_test`` balanced images of dataset ``name`` where its config's data_dir points.

    ``name`` is a config name of configs/dataset/ read from files (cifar10, cifar100, svhn, mnist,
    fashion_mnist); ``data_dir`` is the dataset's own folder (``<paths.data_dir>/<name>``).
    """
    if name in MNIST_FOLDERS:
        write_mnist_like(data_dir, MNIST_FOLDERS[name], rng, n_train=n_train, n_test=n_test)
    elif name in WRITERS:
        WRITERS[name](data_dir, rng, n_train=n_train, n_test=n_test)
    else:
        raise ValueError(f"no file writer for dataset {name!r}; known: {sorted([*WRITERS, *MNIST_FOLDERS])}")


WRITERS = {"cifar10": write_cifar10, "cifar100": write_cifar100, "svhn": write_svhn}
