"""Clustering kernels: seeded weighted k-means, typicality, and the TypiClust / diverse mini-batch selections.

All inputs are float tensors ``x [N, D]``; positions returned are row numbers of the given tensors.
Distances are Euclidean, computed in row chunks so that no [N, N] matrix is ever held at once.
"""

from __future__ import annotations

import math

import torch

#: elements of one chunk of a distance matrix (rows x columns) held at once, ~64 MiB in float32.
_CHUNK_ELEMENTS = 1 << 24


def squared_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [N, K] between rows of ``x [N, D]`` and ``c [K, D]``, clamped at 0."""
    d2 = (x * x).sum(1, keepdim=True) - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]
    return d2.clamp_min_(0.0)


def _row_chunk(n_cols: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, n_cols))


def _nearest(
    x: torch.Tensor, c: torch.Tensor, x_sq: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared distance [N], index [N]) of the nearest row of ``c`` for each row of ``x`` (first on ties).

    ``x_sq [N]`` are the squared norms of ``x`` when already known; ||x||^2 is added after the argmin.
    """
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    c_sq = (c * c).sum(1)
    step = _row_chunk(len(c))
    d_out, i_out = [], []
    for s in range(0, len(x), step):
        d, i = torch.addmm(c_sq[None, :], x[s : s + step], c.T, alpha=-2.0).min(1)
        d_out.append(d)
        i_out.append(i)
    return (torch.cat(d_out) + x_sq).clamp_min_(0.0), torch.cat(i_out)


def _sample(probs: torch.Tensor, generator: torch.Generator) -> int:
    """One index drawn with probability proportional to ``probs [N]`` (non-negative, positive sum)."""
    return int(torch.multinomial(probs.to(generator.device, torch.float64), 1, generator=generator))


def kmeans_pp_init(
    x: torch.Tensor, k: int, generator: torch.Generator, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007), weighted: positions [k] of the chosen rows of ``x``.

    The first centre is drawn with probability ∝ w_i, each next one ∝ w_i * D(x_i)^2 where D is the
    distance to the nearest centre chosen so far. When every remaining weighted distance is 0 (fewer
    distinct points than ``k``) the next centre is drawn uniformly among the rows not chosen yet.
    """
    n = len(x)
    w = torch.ones(n, dtype=x.dtype, device=x.device) if weights is None else weights.to(x)
    chosen = torch.zeros(n, dtype=torch.bool, device=x.device)
    x_sq = (x * x).sum(1)

    def d2_to(j: int) -> torch.Tensor:
        return torch.addmv(x_sq + x_sq[j], x, x[j], alpha=-2.0).clamp_min_(0.0)

    picks = [_sample(w, generator)]
    chosen[picks[0]] = True
    min_d2 = d2_to(picks[0])
    for _ in range(1, k):
        p = w * min_d2
        if not bool((p > 0).any()):
            p = (~chosen).to(x.dtype)
        j = _sample(p, generator)
        picks.append(j)
        chosen[j] = True
        torch.minimum(min_d2, d2_to(j), out=min_d2)
    return torch.tensor(picks, dtype=torch.long, device=x.device)


def kmeans(
    x: torch.Tensor,
    k: int,
    generator: torch.Generator,
    weights: torch.Tensor | None = None,
    iters: int = 100,
    tol: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted Lloyd k-means from a k-means++ start: (centres [k, D], assignment [N] in [0, k)).

    Args:
        x: points [N, D] (N >= k).
        k: number of clusters.
        generator: seeds the k-means++ start (the only random step): same seed -> same result.
        weights: non-negative sample weights [N] (None = 1); a centre is the weighted mean of its points.
            All-zero weights are treated as uniform.
        iters: maximum Lloyd iterations.
        tol: stop once the summed squared centre shift is <= ``tol`` * mean per-feature variance of ``x``
            (scikit-learn's criterion).

    A cluster left empty (or with zero total weight) is re-seeded deterministically at the point farthest
    from its current centre that no other re-seeded cluster took in the same iteration (scikit-learn's rule).
    """
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters of {n} points")
    w = torch.ones(n, dtype=x.dtype, device=x.device) if weights is None else weights.to(x).clone()
    if bool((w < 0).any()):
        raise ValueError("k-means weights must be non-negative")
    if float(w.sum()) <= 0:
        w = torch.ones_like(w)
    centres = x[kmeans_pp_init(x, k, generator, w)].clone()
    tol_abs = tol * float(x.var(0, unbiased=False).mean()) if n > 1 else 0.0
    x_sq = (x * x).sum(1)
    wx = x * w[:, None]
    for _ in range(iters):
        min_d2, assign = _nearest(x, centres, x_sq)
        wsum = torch.zeros(k, dtype=x.dtype, device=x.device).scatter_add_(0, assign, w)
        sums = torch.zeros_like(centres).scatter_add_(0, assign[:, None].expand_as(wx), wx)
        new = sums / wsum.clamp_min(torch.finfo(x.dtype).tiny)[:, None]
        empty = torch.nonzero(wsum <= 0).flatten()
        if len(empty):
            far = min_d2.clone()
            for c in empty.tolist():
                j = int(far.argmax())
                new[c] = x[j]
                far[j] = -1.0
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= tol_abs:
            break
    _, assign = _nearest(x, centres, x_sq)
    return centres, assign


def knn_distances(x: torch.Tensor, k: int) -> torch.Tensor:
    """Euclidean distances [N, k] from each row of ``x [N, D]`` to its ``k`` nearest other rows, ascending."""
    n = len(x)
    if not 0 <= k < n:
        raise ValueError(f"cannot take {k} neighbours among {n} points")
    step = _row_chunk(n)
    out = []
    for s in range(0, n, step):
        d2 = squared_distances(x[s : s + step], x)
        rows = torch.arange(len(d2), device=x.device)
        d2[rows, rows + s] = float("inf")  # a point is not its own neighbour
        out.append(d2.topk(k, dim=1, largest=False).values.sqrt())
    return torch.cat(out) if out else x.new_zeros(0, k)


def typicality(x: torch.Tensor, k_neighbors: int = 20) -> torch.Tensor:
    """Typicality [N] (Hacohen et al. 2022, eq. 4): 1 / (mean Euclidean distance to the K nearest neighbours
    within ``x`` + 1e-5). The 1e-5 is the authors' code's. K is clamped to N - 1; with K = 0 (a single point)
    every point gets +inf.

    The authors' code takes faiss ``IndexFlatL2`` distances, which are squared; we follow the paper's
    Euclidean distance.
    """
    k = min(int(k_neighbors), len(x) - 1)
    if k <= 0:
        return torch.full((len(x),), float("inf"), dtype=x.dtype, device=x.device)
    return 1.0 / (knn_distances(x, k).mean(1) + 1e-5)


def typiclust_select(
    features: torch.Tensor,
    is_labeled: torch.Tensor,
    budget: int,
    generator: torch.Generator,
    k_neighbors: int = 20,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
) -> torch.Tensor:
    """TypiClust (Hacohen, Dekel, Weinshall, ICML 2022): positions [budget] of unlabeled rows of ``features``.

    As the authors' code (avihu111/TypiClust, ``pycls/al/typiclust.py``):

    1. k-means of labeled + candidate ``features [N, D]`` into min(|L| + budget, ``max_clusters`` = 500)
       clusters (they use scikit-learn KMeans / MiniBatchKMeans; we use :func:`kmeans`);
    2. clusters of size <= ``min_cluster_size`` (5) are dropped; the others are ordered by number of
       labeled points (ascending), then size (descending);
    3. round-robin over that fixed order: from each cluster take the unlabeled, not yet selected point of
       highest :func:`typicality`, computed among the cluster's remaining unlabeled points with
       K = min(``k_neighbors``, n_remaining // 2).

    A cluster with no unlabeled point left is skipped (the authors' code would fail there); when every kept
    cluster is exhausted the dropped small clusters are used the same way. Ties go to the lowest position.
    """
    n = len(features)
    is_labeled = is_labeled.to(device=features.device, dtype=torch.bool)
    available = ~is_labeled
    if budget > int(available.sum()):
        raise ValueError(f"cannot select {budget} of {int(available.sum())} unlabeled points")
    n_clusters = min(int(is_labeled.sum()) + budget, int(max_clusters), n)
    _, assign = kmeans(features, n_clusters, generator)
    sizes = torch.bincount(assign, minlength=n_clusters)
    labeled_counts = torch.bincount(assign[is_labeled], minlength=n_clusters)

    def ranked(clusters: torch.Tensor) -> list[int]:
        by_size = clusters[torch.argsort(-sizes[clusters], stable=True)]
        return by_size[torch.argsort(labeled_counts[by_size], stable=True)].tolist()

    ids = torch.arange(n_clusters, device=features.device)
    keep = sizes > min_cluster_size
    selected: list[int] = []
    for order in (ranked(ids[keep]), ranked(ids[~keep])):
        progressed = True
        while len(selected) < budget and progressed:
            progressed = False
            for c in order:
                if len(selected) == budget:
                    break
                members = torch.nonzero(available & (assign == c)).flatten()
                if len(members) == 0:
                    continue
                t = typicality(features[members], min(int(k_neighbors), len(members) // 2))
                pick = int(members[int(t.argmax())])
                selected.append(pick)
                available[pick] = False
                progressed = True
    return torch.tensor(selected, dtype=torch.long, device=features.device)


def diverse_minibatch_select(
    features: torch.Tensor,
    informativeness: torch.Tensor,
    budget: int,
    generator: torch.Generator,
    beta: int = 10,
    iters: int = 100,
) -> torch.Tensor:
    """Diverse mini-batch active learning (Zhdanov 2019): positions [budget] of rows of ``features [N, D]``.

    1. pre-filter the min(``beta`` * budget, N) most informative rows (``informativeness [N]``, higher =
       more informative, non-negative: the paper uses margin-based 1 - (p_(1) - p_(2)); ties by position);
    2. weighted k-means (:func:`kmeans`, weights = informativeness) of those rows into ``budget`` clusters;
    3. from each cluster centre take the nearest pre-filtered row. Centres are served in order of their
       nearest distance; a centre whose nearest row is taken gets its nearest free row, so picks are unique.
    """
    n = len(features)
    if budget > n:
        raise ValueError(f"cannot select {budget} of {n} points")
    if beta < 1:
        raise ValueError(f"beta must be >= 1, got {beta}")
    m = min(int(beta) * budget, n)
    top = torch.argsort(-informativeness.to(features.device), stable=True)[:m]
    sub = features[top]
    centres, _ = kmeans(sub, budget, generator, weights=informativeness.to(features)[top], iters=iters)
    d2 = squared_distances(centres, sub)
    nearest = d2.argmin(1)
    if len(torch.unique(nearest)) < budget:
        taken = torch.zeros(m, dtype=torch.bool, device=features.device)
        picks = torch.empty(budget, dtype=torch.long, device=features.device)
        for c in torch.argsort(d2.min(1).values, stable=True).tolist():
            j = int(d2[c].masked_fill(taken, math.inf).argmin())
            picks[c] = j
            taken[j] = True
        nearest = picks
    return top[nearest]
