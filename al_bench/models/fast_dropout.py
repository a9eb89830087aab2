"""Inverted dropout whose CPU training masks come from NumPy's PCG64 instead of torch's CPU Bernoulli.

torch draws CPU dropout masks element by element from MT19937: for the frozen protocol's [128, 1280] feature
batches that is most of a head step (``scripts/bench_head_step.py`` measures the step with both, side by side:
results/bench/head_step.md). NumPy's PCG64 fills the float32 uniforms about 3x faster. :class:`FastDropout`
keeps every semantic of ``nn.Dropout`` that the rest of al_bench relies on:

- it IS an ``nn.Dropout`` (same ``p``, identity in eval mode), so MC dropout's consistent masks,
  ``has_dropout`` and ``enable_dropout_only`` treat it exactly as before;
- each training forward takes one 62-bit seed from torch's default generator and draws its mask from a fresh
  PCG64 stream of that seed: the masks are fixed by ``torch.manual_seed`` / the loop's per-cycle seeding, and
  resume, warm start and both fit engines behave as with ``nn.Dropout`` (the state lives in torch's RNG);
- mask = 1[u >= p] / (1 - p) with u ~ U[0, 1) in float32 (24-bit resolution): P(keep) = 1 - p to 2^-24;
- on other devices (CUDA's Philox is already fast) and dtypes other than float32 / float64 it is
  ``nn.Dropout``'s own forward.
The masks differ from ``nn.Dropout``'s for the same seed (another generator): results with a FastDropout head
are not bit-comparable with results of an ``nn.Dropout`` head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

_SEED_BOUND = 2**62
_FLOATS = (torch.float32, torch.float64)


class FastDropout(nn.Dropout):
    """``nn.Dropout(p)`` with PCG64 masks on CPU (see the module docstring); ``inplace`` is not supported."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=p, inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or x.dtype not in _FLOATS:
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        seed = int(torch.randint(0, _SEED_BOUND, (), dtype=torch.int64))
        uniform = np.random.Generator(np.random.PCG64(seed)).random(tuple(x.shape), dtype=np.float32)
        mask = torch.from_numpy(uniform).ge_(self.p).to(x.dtype).div_(1.0 - self.p)  # 1[u >= p] / (1 - p)
        return x * mask
