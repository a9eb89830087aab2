"""Repeated datasets (Repeated-MNIST of Kirsch et al. 2019, BatchBALD): the training split ``times`` times
over, each copy with its own fixed Gaussian noise added after normalisation; the test split untouched.

Global index ``k * N + i`` is copy ``k`` of training sample ``i`` (N = the original number of training rows);
copies keep their labels. The noise is drawn once, from a seeded ``torch.Generator``, so it is the same every
epoch and every cycle (batchbald_redux adds one fixed noise tensor the same way): a copy is a distinct but
redundant sample, the trap that BatchBALD avoids and BALD falls into.

How the noise is stored: :class:`ArrayDataset` has one ``mean``/``std`` for both splits, and the data
module serves every batch as ``(x01 - mean) / std`` where ``x01`` is a uint8 image scaled to [0, 1] or a float
input taken as already scaled (:func:`al_bench.data.transforms.to_float_normalized`). The repeated training
images are therefore stored as float32 ``x01 + std * eps`` (eps ~ N(0, noise_std^2) per pixel, per copy),
which the data module turns into exactly ``(x01 - mean) / std + eps``: noise of std ``noise_std`` in
normalised units, added after Normalize, normalised once; the uint8 test split keeps the same mean/std.
Without ``std`` (data already standardised, e.g. digits) ``eps`` is added as it is.
"""

from __future__ import annotations

import dataclasses

import torch

from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError

NOISE_SEED = 0
"""Seed of the noise on the config path: the noise belongs to the dataset, the same for every run seed."""


def check_repeat_options(times: object, noise_std: object) -> tuple[int, float]:
    """``(times, noise_std)`` as (int >= 1, float >= 0), or one ALBenchError line naming the bad option."""
    if isinstance(times, bool) or not isinstance(times, int | float) or times != int(times) or times < 1:
        raise ALBenchError(f"dataset.repeat must be an integer >= 1 (1: no repetition), got {times!r}")
    if isinstance(noise_std, bool) or not isinstance(noise_std, int | float) or not noise_std >= 0:
        raise ALBenchError(f"dataset.repeat_noise_std must be a number >= 0 (0: no noise), got {noise_std!r}")
    return int(times), float(noise_std)


def repeat_dataset(ds: ArrayDataset, times: int, noise_std: float, seed: int) -> ArrayDataset:
    """``ds`` with its training split repeated ``times`` times ([times * N, C, H, W]) plus fixed noise.

    ``noise_std`` is the std of the per-pixel Gaussian noise in normalised units (BatchBALD: 0.1 after
    Normalize(0.1307, 0.3081)); every copy, the first included, gets its own draw from
    ``torch.Generator().manual_seed(seed)``. ``times == 1`` and ``noise_std == 0`` returns ``ds`` itself.
    Otherwise the training images become float32 (see the module docstring); labels [times * N] repeat.
    """
    times, noise_std = check_repeat_options(times, noise_std)
    if times == 1 and noise_std == 0:
        return ds
    x = ds.x_train
    n = len(x)
    x01 = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    out = x01.repeat(times, *([1] * (x.ndim - 1)))  # row k * n + i = copy k of sample i
    if noise_std > 0:
        scale = torch.full((), noise_std)
        if ds.std is not None:  # noise in normalised units: times std in the stored [0, 1] units
            scale = noise_std * torch.tensor(ds.std, dtype=torch.float32).view(1, -1, *([1] * (x.ndim - 2)))
        gen = torch.Generator().manual_seed(int(seed))
        for k in range(times):  # one copy at a time: peak memory of one noise block, not of all of them
            noise = torch.randn(x01.shape, generator=gen, dtype=torch.float32)
            out[k * n : (k + 1) * n].add_(noise.mul_(scale))
    return dataclasses.replace(ds, x_train=out, y_train=ds.y_train.repeat(times))
