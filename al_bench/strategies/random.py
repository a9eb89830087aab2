"""Random sampling: the baseline every strategy is compared against."""

from __future__ import annotations

import numpy as np

from al_bench.strategies.base import SelectionContext, Strategy


class RandomSampling(Strategy):
    """Uniformly random candidates without replacement, from the context's seeded generator."""

    def select(self, ctx: SelectionContext) -> np.ndarray:
        return ctx.rng.choice(ctx.candidates, size=ctx.budget, replace=False)
