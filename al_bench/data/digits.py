"""sklearn's bundled handwritten digits (1797 images, 8x8, 10 classes): the embedded default dataset."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from al_bench.data.base import ArrayDataset


def load_digits_dataset(test_fraction: float = 0.25, split_seed: int = 0, **_: object) -> ArrayDataset:
    """Digits as float images [N, 1, 8, 8], scaled to [0, 1] and standardised, with a fixed stratified test
    split. The split depends only on ``split_seed`` (not the run's seed): every run tests on the same images.
    Extra keys (data_dir, download, verify) are accepted for a uniform dataset interface: the data is bundled.
    """
    bunch = load_digits()
    x = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=split_seed
    )
    mean, std = float(x[idx_train].mean()), float(x[idx_train].std())
    x = (x - mean) / std
    xt = torch.from_numpy(x).unsqueeze(1)
    yt = torch.from_numpy(y)
    return ArrayDataset(
        name="digits",
        x_train=xt[idx_train],
        y_train=yt[idx_train],
        x_test=xt[idx_test],
        y_test=yt[idx_test],
        num_classes=10,
        classes=[str(c) for c in range(10)],
    )
