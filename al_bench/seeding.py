"""Seed derivation: every random choice gets its own generator derived from (seed, purpose, cycle)."""

from __future__ import annotations

import zlib

import numpy as np
import torch

_PURPOSES: dict[str, int] = {}


def _purpose_key(purpose: str) -> int:
    if purpose not in _PURPOSES:
        _PURPOSES[purpose] = zlib.crc32(purpose.encode())
    return _PURPOSES[purpose]


def derive_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 63-bit seed that depends only on (seed, purpose, keys): stable across runs and resumes."""
    ss = np.random.SeedSequence([int(seed), _purpose_key(purpose), *[int(k) for k in keys]])
    return int(ss.generate_state(1, dtype=np.uint64)[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF))


def numpy_rng(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """np.random.Generator for one purpose (e.g. ``numpy_rng(seed, "select", cycle)``)."""
    return np.random.default_rng(derive_seed(seed, purpose, *keys))


def torch_generator(
    seed: int, purpose: str, *keys: int, device: str | torch.device = "cpu"
) -> torch.Generator:
    """torch.Generator for one purpose, on ``device``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, purpose, *keys))
    return g


def torch_generator_from(rng: np.random.Generator, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded by drawing from ``rng`` (advances ``rng``)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(rng.integers(0, 2**62)))
    return g
