"""Cold start: choose the initial labeled set from an embedding of the pool before any label exists.

``budget.init_strategy`` (Hacohen et al. ICML 2022, TypiClust; Yehuda et al. NeurIPS 2022, ProbCover; Chen
et al. 2023, cold-start AL): ``random`` | ``balanced`` (class-balanced by the oracle's labels: the old
``init_balanced: true``, a label-peeking upper reference) | ``typiclust`` | ``probcover`` | ``kmeans``; the
last three read ``budget.init_embedding`` (``pretrained`` | ``ssl``: see :mod:`al_bench.embeddings`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from al_bench.errors import ALBenchError
from al_bench.ops.clustering import kmeans, squared_distances, typiclust_select
from al_bench.ops.probcover import DELTA_GRID, choose_delta, delta_ball_graph, max_coverage
from al_bench.seeding import torch_generator_from

INIT_STRATEGIES = ("random", "balanced", "typiclust", "probcover", "kmeans")
#: the initial-set strategies that need an embedding of the pool
EMBEDDING_INIT = ("typiclust", "probcover", "kmeans")


def init_strategy_of(budget) -> str:
    """``budget.init_strategy``; without it (older configs): balanced or random by ``init_balanced``."""
    name = budget.get("init_strategy")
    if name is None:
        return "balanced" if budget.get("init_balanced", False) else "random"
    if name not in INIT_STRATEGIES:
        raise ALBenchError(
            f"budget.init_strategy={name!r} is unknown: choose one of {', '.join(INIT_STRATEGIES)}"
        )
    return str(name)


def cold_start_positions(
    method: str, z: torch.Tensor, size: int, rng: np.random.Generator, n_clusters: int = 10
) -> np.ndarray:
    """Positions [size] (unique, in pick order) of the rows of the pool embedding ``z [P, D]`` to label first.

    - ``kmeans``: k-means (k = size, k-means++ start) and the point nearest each centre;
    - ``typiclust``: TypiClust with no labeled point (min(size, 500) clusters, most typical point of the
      largest clusters first, :func:`~al_bench.ops.clustering.typiclust_select`);
    - ``probcover``: ProbCover's greedy max coverage of delta-balls on the L2-normalised embedding, delta =
      the largest radius whose ball purity under k-means with ``n_clusters`` (the number of classes) clusters
      is >= 0.95 (the paper's rule), nothing covered yet.
    """
    if size > len(z):
        raise ALBenchError(f"cannot choose {size} initial labels from a pool of {len(z)}")
    generator = torch_generator_from(rng, z.device)
    if method == "kmeans":
        centres, _ = kmeans(z, size, generator)
        d2 = squared_distances(z, centres)  # [P, k]
        picks: list[int] = []
        taken = torch.zeros(len(z), dtype=torch.bool, device=z.device)
        for j in range(size):  # nearest unpicked point to each centre (two centres never share a point)
            col = d2[:, j].masked_fill(taken, float("inf"))
            i = int(col.argmin())
            picks.append(i)
            taken[i] = True
        return np.asarray(picks, dtype=np.int64)
    if method == "typiclust":
        none = torch.zeros(len(z), dtype=torch.bool, device=z.device)
        return typiclust_select(z, none, size, generator).cpu().numpy().astype(np.int64)
    if method == "probcover":
        zn = F.normalize(z.float(), dim=1)
        _, clusters = kmeans(zn, min(n_clusters, len(zn)), generator)
        delta = choose_delta(zn, clusters, 0.95, DELTA_GRID)
        src, dst = delta_ball_graph(zn, delta)
        return max_coverage(src, dst, len(zn), np.zeros(len(zn), bool), size, rng)
    raise ALBenchError(f"cold start {method!r} needs no embedding or is unknown: one of {EMBEDDING_INIT}")
