"""BAIT (Ash, Goel, Krishnamurthy & Kakade, NeurIPS 2021): forward-backward greedy selection minimising
``tr[M_S^{-1} I_U]`` on last-layer Fisher information, see :mod:`al_bench.ops.bait` for the objective and its
factorisation.

What the strategy feeds the kernel, as in the authors' ``bait_sampling.py`` (JordanAsh/badge):
- candidates: softmax and penultimate features of ``ctx.candidates`` (or of a random subset of
  ``max_candidates`` of them, drawn with ``ctx.rng``: the only randomness);
- labeled: softmax of ``ctx.labeled_logits()`` and ``ctx.labeled_features()``, which enter ``M`` (weight
  ``1 / (L + b)`` each) and, with the candidates, the mean Fisher ``I_U``. The authors average ``I_U`` over
  their whole training pool (labeled + unlabeled); here it is the labeled set plus the candidates scored,
  which is the same thing unless ``budget.pool_subset`` or ``max_candidates`` restricts the candidates.
"""

from __future__ import annotations

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.ops.bait import WEIGHTINGS, bait_select
from al_bench.strategies.base import SelectionContext, Strategy


class BAIT(Strategy):
    """BAIT: greedily add ``oversample * budget`` candidates, then greedily remove all but ``budget``.

    Args:
        lam: the ridge lambda of ``M = lam I + ...`` (the authors' default 1; they use 1e-2 for CIFAR-10).
        oversample: forward picks per budget slot before the backward pass (the authors' 2).
        max_candidates: score a random subset of this many candidates (at least the budget), drawn with
            ``ctx.rng``; None: every candidate. BAIT's cost grows with N * (oversample * budget).
        weighting: ``"authors"`` (a selected point's Fisher weighs ``b / (L + b)`` in M, as in their code) or
            ``"mean"`` (``1 / (L + b)``, a plain mean over the final labeled set).
        float64: compute in float64 (the authors compute in float32); about twice as slow on CPU.
        chunk: candidate rows per block of the set-up products (memory only; the result is the same).
    """

    def __init__(
        self,
        lam: float = 1.0,
        oversample: float = 2.0,
        max_candidates: int | None = None,
        weighting: str = "authors",
        float64: bool = False,
        chunk: int = 1024,
    ) -> None:
        if float(lam) <= 0:
            raise ALBenchError(f"BAIT: lam must be > 0, got {lam}")
        if float(oversample) < 1:
            raise ALBenchError(f"BAIT: oversample must be >= 1, got {oversample}")
        if max_candidates is not None and int(max_candidates) < 1:
            raise ALBenchError(f"BAIT: max_candidates must be None or >= 1, got {max_candidates}")
        if weighting not in WEIGHTINGS:
            raise ALBenchError(f"BAIT: weighting must be one of {list(WEIGHTINGS)}, got {weighting!r}")
        self.lam = float(lam)
        self.oversample = float(oversample)
        self.max_candidates = None if max_candidates is None else int(max_candidates)
        self.weighting = weighting
        self.float64 = bool(float64)
        self.chunk = int(chunk)

    def candidate_rows(self, ctx: SelectionContext) -> np.ndarray:
        """Rows of ``ctx.candidates`` to score [M], ascending: all, or a ctx.rng draw of max_candidates."""
        n = len(ctx.candidates)
        if self.max_candidates is None or self.max_candidates >= n:
            return np.arange(n)
        m = max(self.max_candidates, ctx.budget)
        return np.sort(ctx.rng.choice(n, size=min(m, n), replace=False))

    def select(self, ctx: SelectionContext) -> np.ndarray:
        rows = self.candidate_rows(ctx)
        dtype = torch.float64 if self.float64 else torch.float32
        idx = torch.from_numpy(rows)
        probs = ctx.probs()[idx].to(ctx.device, dtype)
        feats = ctx.features()[idx].to(ctx.device, dtype)
        labeled_probs = ctx.labeled_logits().to(ctx.device, dtype).softmax(-1)
        labeled_feats = ctx.labeled_features().to(ctx.device, dtype)
        picks = bait_select(
            probs,
            feats,
            labeled_probs,
            labeled_feats,
            ctx.budget,
            lam=self.lam,
            oversample=self.oversample,
            weighting=self.weighting,
            chunk=self.chunk,
        )
        return ctx.candidates[rows[picks.cpu().numpy()]]
