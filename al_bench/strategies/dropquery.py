"""DropQuery (Gupte, Aklilu, Nirschl, Yeung-Levy, TMLR 2024): dropout on the penultimate features, majority
of flipped predictions, k-means for diversity.

1. The model's linear head re-classifies ``n_draws`` (M = 3) dropped-out copies of each candidate's
   penultimate features (coordinates zeroed with probability ``p_drop`` = 0.75, the rest scaled by
   1 / (1 - p), as ``nn.Dropout``; masks from ``ctx.torch_generator()``); a candidate whose prediction differs
   from the clean one (argmax of ``ctx.logits()``) in more than half of the M copies is flagged
   (:func:`~al_bench.ops.dropquery.dropquery_flags`). As the authors' code (and DAL-Toolbox), while fewer than
   ``candidate_factor`` x budget candidates are flagged the threshold drops one mismatch at a time down to
   one; ``candidate_factor: 0`` keeps the fixed majority rule (scikit-activeml).
2. More flagged candidates than the budget: k-means (k = budget) of their L2-normalised features (authors'
   code; scikit-activeml clusters raw features) and the member nearest each centroid; otherwise all of
   them, and the rest of the batch uniformly at random
   (:func:`~al_bench.ops.candidate_kmeans.select_flagged`).

The authors apply dropout to a frozen foundation model's features, the input of their linear classifier;
here it is the trained network's penultimate features, the input of its linear head. Their k-means
(faiss, k-means++ from the global RNG) is :func:`~al_bench.ops.clustering.kmeans` seeded from ``ctx.rng``;
their random fill uses the global NumPy RNG, ours ``ctx.rng``. scikit-activeml fills from the highest
mismatch rates instead of at random and zeroes without rescaling.
"""

from __future__ import annotations

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.ops.candidate_kmeans import select_flagged
from al_bench.ops.dropquery import dropquery_flags
from al_bench.strategies.base import SelectionContext, Strategy


class DropQuery(Strategy):
    """DropQuery: k-means over the candidates whose prediction flips under most feature-dropout draws."""

    def __init__(
        self, p_drop: float = 0.75, n_draws: int = 3, candidate_factor: float = 25.0, normalize: bool = True
    ) -> None:
        if not 0.0 < float(p_drop) < 1.0:
            raise ALBenchError(f"dropquery p_drop must be in (0, 1), got {p_drop}")
        if int(n_draws) < 1 or int(n_draws) != n_draws:
            raise ALBenchError(f"dropquery n_draws must be a positive integer, got {n_draws}")
        if not float(candidate_factor) >= 0:
            raise ALBenchError(
                f"dropquery candidate_factor must be >= 0 (0 = fixed majority), got {candidate_factor}"
            )
        self.p_drop = float(p_drop)
        self.n_draws = int(n_draws)
        self.candidate_factor = float(candidate_factor)
        self.normalize = bool(normalize)
        #: how many candidates the last selection flagged, and its mismatch threshold (for inspection)
        self.last_n_flagged: int | None = None
        self.last_threshold: int | None = None

    def select(self, ctx: SelectionContext) -> np.ndarray:
        device = ctx.device
        z = ctx.features().to(device)
        reference = ctx.logits().argmax(1).to(device)
        head = ctx.model.head
        weight = head.weight.detach().to(device, torch.float32)
        bias = None if head.bias is None else head.bias.detach().to(device, torch.float32)
        flags, _, threshold = dropquery_flags(
            z, weight, bias, reference, ctx.budget, ctx.torch_generator(device),
            p=self.p_drop, n_draws=self.n_draws, candidate_factor=self.candidate_factor,
        )  # fmt: skip
        self.last_n_flagged, self.last_threshold = int(flags.sum()), threshold
        pos = select_flagged(
            z, flags, ctx.budget, ctx.torch_generator(device), ctx.rng, normalize=self.normalize
        )
        return ctx.candidates[pos]
