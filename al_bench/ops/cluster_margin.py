"""Cluster-Margin kernels (Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh, Kumar,
NeurIPS 2021: "Batch Active Learning at Scale").

Algorithm 1 of the paper: hierarchical agglomerative clustering (HAC) with average linkage, merging the two
closest clusters while their average pairwise Euclidean distance is <= epsilon. Here it is scipy's exact
average linkage (``scipy.cluster.hierarchy.linkage(method="average")``, a monotone tree: merge heights never
decrease) cut with ``fcluster(criterion="distance")``, which keeps exactly the merges of height <= epsilon.

Algorithm 2's selection step: the k_m candidates of smallest margin, grouped by cluster, the groups sorted by
size ascending, then round-robin from the smallest: one uniformly random member of each group in that order,
cycling through the groups that still have members until ``budget`` points are taken.

Embeddings are rows of ``z [N, D]``; cluster ids are int64 in 0 .. K-1; positions are row numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage

from al_bench.ops.clustering import squared_distances

#: elements of one chunk of a distance matrix (rows x columns) held at once, ~64 MiB in float32.
_CHUNK_ELEMENTS = 1 << 24


def _as_float64(z: torch.Tensor | np.ndarray) -> np.ndarray:
    x = z.detach().cpu().double().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [N, D], got shape {x.shape}")
    return x


def average_linkage(z: torch.Tensor | np.ndarray) -> np.ndarray:
    """The average-linkage (UPGMA) merge tree of the rows of ``z [N, D]`` under Euclidean distance.

    Returns scipy's linkage matrix [N - 1, 4] (float64): row i merges clusters ``Z[i, 0]`` and ``Z[i, 1]`` at
    height ``Z[i, 2]`` (their average pairwise distance) into a cluster of ``Z[i, 3]`` points; heights are
    non-decreasing. Needs O(N^2) memory (the condensed distance matrix, 4 N^2 bytes).
    """
    x = _as_float64(z)
    if len(x) < 2:
        return np.zeros((0, 4), np.float64)
    return linkage(x, method="average", metric="euclidean")


def cut_tree(tree: np.ndarray, n: int, epsilon: float) -> np.ndarray:
    """Flat clusters [n] (int64, 0 .. K-1) of an :func:`average_linkage` tree of ``n`` points: the merges of
    height <= ``epsilon`` (the paper's Algorithm 1 stops at the first merge with distance > epsilon)."""
    if not float(epsilon) >= 0.0:
        raise ValueError(f"epsilon must be a non-negative distance, got {epsilon}")
    if n < 2:
        return np.zeros(n, np.int64)
    flat = fcluster(tree, t=float(epsilon), criterion="distance")
    return np.unique(flat, return_inverse=True)[1].astype(np.int64).reshape(-1)


def epsilon_for_mean_size(tree: np.ndarray, n: int, target_size: float) -> float:
    """The threshold epsilon whose cut of ``tree`` (``n`` points) gives a mean cluster size closest to
    ``target_size``: K = floor or ceil of n / target_size clusters (whichever mean n / K is closer; ties to
    the larger K), i.e. epsilon = the height of merge n - K (0 when K = n). Tied merge heights at the cut
    merge together, so the cut may hold fewer than K clusters."""
    if not float(target_size) >= 1.0:
        raise ValueError(f"target_size must be >= 1, got {target_size}")
    if n < 2:
        return 0.0
    ratio = n / float(target_size)
    ks = {min(n, max(1, math.floor(ratio))), min(n, max(1, math.ceil(ratio)))}
    k = min(ks, key=lambda k: (abs(n / k - target_size), -k))
    merges = n - k
    return 0.0 if merges == 0 else float(tree[merges - 1, 2])


def hac(
    z: torch.Tensor | np.ndarray, epsilon: float | None = None, target_size: float = 10.0
) -> tuple[np.ndarray, float]:
    """Average-linkage HAC of ``z [N, D]`` at threshold ``epsilon``: (cluster ids [N] int64, epsilon).

    ``epsilon`` None: :func:`epsilon_for_mean_size` with ``target_size`` (the paper tunes epsilon to a
    target average cluster size).
    """
    n = len(z)
    tree = average_linkage(z)
    eps = epsilon_for_mean_size(tree, n, target_size) if epsilon is None else float(epsilon)
    return cut_tree(tree, n, eps), eps


def nearest_labels(
    z_query: torch.Tensor, z_ref: torch.Tensor, labels_ref: np.ndarray | torch.Tensor
) -> np.ndarray:
    """The label [M] (int64) of the nearest row of ``z_ref [N, D]`` (Euclidean, first on ties) for each row
    of ``z_query [M, D]``; ``labels_ref [N]``. Computed in row chunks, never an [M, N] matrix at once."""
    labels = np.asarray(labels_ref, np.int64).reshape(-1)
    if len(labels) != len(z_ref) or len(z_ref) == 0:
        raise ValueError("z_ref must be non-empty with one label per row")
    step = max(1, _CHUNK_ELEMENTS // len(z_ref))
    ref = z_ref.float()
    nearest = [
        squared_distances(z_query[s : s + step].float().to(ref.device), ref).argmin(1).cpu()
        for s in range(0, len(z_query), step)
    ]
    if not nearest:
        return np.zeros(0, np.int64)
    return labels[torch.cat(nearest).numpy()]


def cluster_pool(
    z: torch.Tensor,
    epsilon: float | None,
    target_size: float,
    max_points: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Cluster ids [N] (int64) of every row of ``z [N, D]`` and the epsilon used.

    N <= ``max_points``: exact :func:`hac` of all rows. Above it (exact HAC needs O(N^2) memory): :func:`hac`
    of ``max_points`` rows drawn uniformly without replacement (``rng.choice(N, max_points, replace=False)``),
    every other row joining the cluster of its nearest clustered row (:func:`nearest_labels`); epsilon from
    ``target_size`` is then the mean size on the clustered rows (the whole pool's clusters are N /
    ``max_points`` times larger on average). The paper clusters millions of points with a distributed
    approximate HAC instead.
    """
    n = len(z)
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if n <= max_points:
        return hac(z, epsilon, target_size)
    sub = np.sort(rng.choice(n, size=int(max_points), replace=False))
    sub_labels, eps = hac(z[torch.as_tensor(sub)], epsilon, target_size)
    labels = np.empty(n, np.int64)
    labels[sub] = sub_labels
    rest = np.setdiff1d(np.arange(n), sub)
    labels[rest] = nearest_labels(z[torch.as_tensor(rest)], z[torch.as_tensor(sub)], sub_labels)
    return labels, eps


def round_robin(cluster_ids: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Positions [budget] into ``cluster_ids [K]`` (the cluster of each of the k_m low-margin candidates), in
    pick order: the paper's round-robin over the clusters sorted by size ascending.

    Draws, in this order: ``rng.random(G)`` (G = distinct ids, ascending) breaks ties between groups of equal
    size; ``rng.random(K)``: each group's members are taken in ascending key order, i.e. a uniformly random
    order (sampling without replacement). Then pass r = 0, 1, ... takes the r-th member of every group that
    has more than r members, smallest group first, until ``budget`` positions are taken: a group that runs out
    is skipped and the others are cycled through again.
    """
    ids = np.asarray(cluster_ids, np.int64).reshape(-1)
    k = len(ids)
    if not 0 <= int(budget) <= k:
        raise ValueError(f"cannot take {budget} of {k} points")
    groups, group_of, sizes = np.unique(ids, return_inverse=True, return_counts=True)
    tie = rng.random(len(groups))
    rank = np.empty(len(groups), np.int64)
    rank[np.lexsort((tie, sizes))] = np.arange(len(groups))  # rank 0 = the smallest group
    key = rng.random(k)
    g_rank = rank[group_of.reshape(-1)]
    by_group = np.lexsort((key, g_rank))  # members grouped by rank, each group in key order
    starts = np.concatenate([[0], np.cumsum(sizes[np.argsort(rank)])[:-1]])
    within = np.empty(k, np.int64)
    within[by_group] = np.arange(k) - starts[g_rank[by_group]]
    return np.lexsort((g_rank, within))[: int(budget)].astype(np.int64)


def cluster_margin_select(
    margins: torch.Tensor | np.ndarray,
    cluster_ids: np.ndarray,
    budget: int,
    k_m: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Positions [budget] (int64, unique) into the N candidates picked by Cluster-Margin (Algorithm 2).

    Args:
        margins: p_(1) - p_(2) per candidate [N] (smaller = more uncertain).
        cluster_ids: the HAC cluster of each candidate [N] (computed once over the pool).
        budget: k_t, the points to pick.
        k_m: how many lowest-margin candidates enter the round-robin (paper: k_m = 1.25 k_t at scale). The
            paper needs k_m >= k_t; a smaller k_m is raised to ``budget`` (then it is margin sampling), a
            larger one than N is cut to N (then it is a cluster-balanced random sample of the candidates).
        rng: the selection generator; draws ``rng.permutation(N)`` (random order among equal margins), then
            :func:`round_robin`'s draws.
    """
    m = margins.detach().cpu().double().numpy() if isinstance(margins, torch.Tensor) else np.asarray(margins)
    m = np.asarray(m, np.float64).reshape(-1)
    ids = np.asarray(cluster_ids, np.int64).reshape(-1)
    n = len(m)
    if len(ids) != n:
        raise ValueError(f"margins [{n}] and cluster_ids [{len(ids)}] must have the same length")
    if not 0 <= int(budget) <= n:
        raise ValueError(f"cannot select {budget} of {n} candidates")
    k_m = min(max(int(k_m), int(budget)), n)
    perm = rng.permutation(n)
    low = perm[np.argsort(m[perm], kind="stable")[:k_m]]
    return low[round_robin(ids[low], budget, rng)]
