"""Diversity over a flagged candidate set: k-means, the member nearest each centroid, a random fill.

The last step of ALFA-Mix (Parvaneh et al. 2022) and DropQuery (Gupte et al. 2024): an uncertainty test
flags candidates; when more are flagged than the budget they are clustered into ``budget`` groups and the
member nearest each centroid is taken; otherwise every flagged one is taken; the batch is then filled
uniformly at random from the rest. k-means is :func:`al_bench.ops.clustering.kmeans`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from al_bench.ops.clustering import _nearest, kmeans


def nearest_members(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Positions [K'] of the row of ``x [N, D]`` nearest each centre of ``centres [K, D]`` among the rows
    assigned to it (nearest centre, first on ties); clusters in centre order, empty ones skipped (K' <= K).

    Distinct clusters have disjoint members, so the positions are unique.
    """
    d2, assign = _nearest(x, centres)
    big = torch.finfo(d2.dtype).max
    per_cluster = torch.full((len(centres),), big, dtype=d2.dtype, device=x.device)
    per_cluster.scatter_reduce_(0, assign, d2, reduce="amin")
    nonempty = torch.bincount(assign, minlength=len(centres)) > 0
    # first row (lowest position) of each cluster that attains its minimum
    hit = d2 == per_cluster[assign]
    pos = torch.arange(len(x), device=x.device)
    first = torch.full((len(centres),), len(x), dtype=torch.long, device=x.device)
    first.scatter_reduce_(0, assign[hit], pos[hit], reduce="amin")
    return first[nonempty]


def kmeans_representatives(
    x: torch.Tensor, k: int, generator: torch.Generator, iters: int = 100
) -> torch.Tensor:
    """k-means of ``x [N, D]`` into ``k`` clusters (seeded by ``generator``), then :func:`nearest_members`:
    positions [K'] (K' <= k, unique) of one representative per non-empty cluster."""
    centres, _ = kmeans(x, k, generator, iters=iters)
    return nearest_members(x, centres)


def select_flagged(
    features: torch.Tensor,
    flagged: torch.Tensor,
    budget: int,
    generator: torch.Generator,
    rng: np.random.Generator,
    normalize: bool = True,
) -> np.ndarray:
    """Positions [budget] (unique) of rows of ``features [N, D]``: the flagged rows' k-means representatives,
    then a uniform random fill.

    Args:
        features: candidate features [N, D].
        flagged: bool [N], the candidates an uncertainty test flagged.
        budget: how many positions to return (<= N).
        generator: seeds the k-means++ start.
        rng: draws the fill, uniformly without replacement among the rows not picked yet.
        normalize: L2-normalise the rows before k-means (both authors' codes cluster normalised features).

    More flagged rows than ``budget``: :func:`kmeans_representatives` with k = ``budget``; at most ``budget``
    flagged: all of them (what k-means with one cluster per point gives). Empty clusters leave room for the
    fill. Returns positions in pick order: representatives (cluster order), then the fill.
    """
    n = len(features)
    if not 0 <= budget <= n:
        raise ValueError(f"cannot select {budget} of {n} candidates")
    flagged = flagged.to(device=features.device, dtype=torch.bool)
    rows = torch.nonzero(flagged).flatten()
    if len(rows) > budget:
        x = features[rows].float()
        if normalize:
            x = F.normalize(x, dim=1)
        picks = rows[kmeans_representatives(x, budget, generator)]
    else:
        picks = rows
    picks_np = picks.cpu().numpy().astype(np.int64)
    missing = budget - len(picks_np)
    if missing > 0:
        rest = np.setdiff1d(np.arange(n, dtype=np.int64), picks_np)
        picks_np = np.concatenate([picks_np, rng.choice(rest, size=missing, replace=False)])
    return picks_np
