"""Inverted dropout whose CPU training masks come from NumPy's PCG64 instead of torch's CPU Bernoulli.

torch draws CPU dropout masks element by element from MT19937: for the frozen protocol's [128, 1280] feature
batches that is most of a head step (``scripts/bench_head_step.py`` measures the step with both, side by side:
results/bench/head_step.md). PCG64's raw 64-bit words are several times cheaper. :class:`FastDropout` keeps
every semantic of ``nn.Dropout`` that the rest of al_bench relies on:

- it IS an ``nn.Dropout`` (same ``p``, identity in eval mode), so MC dropout's consistent masks,
  ``has_dropout`` and ``enable_dropout_only`` treat it exactly as before;
- each training forward takes one 62-bit seed from torch's default generator and draws its mask from a fresh
  PCG64 stream of that seed (:func:`keep_mask`): the masks are fixed by ``torch.manual_seed`` / the loop's
  per-cycle seeding, and resume, warm start and every fit engine behave as with ``nn.Dropout`` (the state
  lives in torch's RNG);
- mask = 1[u >= p] / (1 - p) with u ~ U[0, 1) in float32 (24-bit resolution: NumPy's
  ``random(dtype=float32)`` of the same stream, u = (32-bit word >> 8) * 2^-24, compared on the integer
  words): P(keep) = 1 - p to 2^-24;
- on other devices (CUDA's Philox is already fast) and dtypes other than float32 / float64 it is
  ``nn.Dropout``'s own forward.
The masks differ from ``nn.Dropout``'s for the same seed (another generator): results with a FastDropout head
are not bit-comparable with results of an ``nn.Dropout`` head.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

_SEED_BOUND = 2**62
_FLOATS = (torch.float32, torch.float64)


def draw_seed() -> int:
    """One 62-bit mask seed from torch's default generator (advances it by one draw)."""
    return int(torch.randint(0, _SEED_BOUND, (), dtype=torch.int64))


def keep_threshold(p: float) -> int:
    """The smallest 32-bit word w kept by 1[u >= p], u = (w >> 8) * 2^-24 in float32 (p compared in float32,
    as torch compares a float32 tensor with a Python scalar): ceil(float32(p) * 2^24) << 8."""
    return math.ceil(float(np.float32(p)) * 2**24) << 8


def keep_mask(shape: tuple[int, ...], p: float, seed: int, dtype: type = np.float32) -> np.ndarray:
    """[*shape] of ``dtype``: 1 where dropout with rate ``p`` keeps an element, 0 where it drops it, from
    PCG64(``seed``).

    Equal, element for element, to ``Generator(PCG64(seed)).random(shape, dtype=float32) >= p``: NumPy builds
    each float32 from the next 32-bit half of a raw 64-bit word (low half first), so comparing the raw words
    with :func:`keep_threshold` gives the same booleans without the float conversion (written straight into
    ``dtype``, which costs less than converting a bool tensor afterwards).
    """
    n = math.prod(shape)
    out = np.empty(shape, dtype=dtype)
    if n:
        words = np.random.PCG64(seed).random_raw((n + 1) // 2).view("<u4")[:n].reshape(shape)
        np.greater_equal(words, np.uint32(keep_threshold(p)), out=out, casting="unsafe")
    return out


def inverse_keep(p: float, dtype: torch.dtype) -> torch.Tensor:
    """The kept elements' scale 1 / (1 - p) as ``dtype`` rounds it (what ``mask.div_(1 - p)`` stores)."""
    return torch.ones((), dtype=dtype).div_(1.0 - p)


class FastDropout(nn.Dropout):
    """``nn.Dropout(p)`` with PCG64 masks on CPU (see the module docstring); ``inplace`` is not supported."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=p, inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or x.dtype not in _FLOATS:
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        dtype = np.float32 if x.dtype == torch.float32 else np.float64
        keep = torch.from_numpy(keep_mask(tuple(x.shape), self.p, draw_seed(), dtype))
        return x.mul(keep).mul_(inverse_keep(self.p, x.dtype))  # x * 1[u >= p] / (1 - p)
