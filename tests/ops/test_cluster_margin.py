"""Cluster-Margin kernels on tiny hand-made cases, and against literal re-implementations of the paper's
Algorithm 1 (average-linkage HAC at threshold epsilon) and Algorithm 2 (round-robin over the clusters of the
k_m lowest-margin candidates, smallest cluster first)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from al_bench.ops.cluster_margin import (
    average_linkage,
    cluster_margin_select,
    cluster_pool,
    cut_tree,
    epsilon_for_mean_size,
    hac,
    nearest_labels,
    round_robin,
)

#: 1-D points whose linkage distances are known: {0,1} and {10,11} merge at 1; the two pairs at average
#: distance 10 (single linkage: 9, complete: 11); {30} joins at (30 + 29 + 20 + 19) / 4 = 24.5.
LINE = np.array([[0.0], [1.0], [10.0], [11.0], [30.0]])


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}


def brute_force_hac(x: np.ndarray, epsilon: float) -> set[frozenset[int]]:
    """Algorithm 1 as written: merge the pair of clusters with the smallest average pairwise distance while
    it is <= epsilon."""
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    clusters = [[i] for i in range(len(x))]
    while len(clusters) > 1:
        best, pair = np.inf, None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            dist = d[np.ix_(clusters[a], clusters[b])].mean()
            if dist < best:
                best, pair = dist, (a, b)
        if best > epsilon:
            break
        a, b = pair
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    return {frozenset(c) for c in clusters}


def brute_force_algorithm_2(
    margins: np.ndarray, cluster_ids: np.ndarray, budget: int, k_m: int, rng: np.random.Generator
) -> list[int]:
    """The paper's selection step written as a loop, with the kernel's documented draws: random order among
    equal margins, random keys for ties among equal-size clusters and for the order within each cluster."""
    n = len(margins)
    perm = rng.permutation(n)
    low = sorted(perm.tolist(), key=lambda i: margins[i])[:k_m]  # sorted() is stable: ties keep perm order
    ids = sorted(set(cluster_ids[low].tolist()))
    tie = dict(zip(ids, rng.random(len(ids)), strict=True))
    key = dict(zip(low, rng.random(len(low)), strict=True))
    members = {c: sorted((i for i in low if cluster_ids[i] == c), key=key.get) for c in ids}
    order = sorted(ids, key=lambda c: (len(members[c]), tie[c]))
    picked: list[int] = []
    i = 0
    while len(picked) < budget:
        group = members[order[i % len(order)]]
        if group:
            picked.append(group.pop(0))
        i += 1
    return picked


# ---- Algorithm 1: HAC ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "epsilon, expected",
    [
        (0.5, [{0}, {1}, {2}, {3}, {4}]),
        (1.0, [{0, 1}, {2, 3}, {4}]),  # a merge at exactly epsilon happens ("d <= epsilon")
        (9.5, [{0, 1}, {2, 3}, {4}]),  # single linkage would merge the pairs here (9 <= 9.5)
        (10.0, [{0, 1, 2, 3}, {4}]),
        (10.5, [{0, 1, 2, 3}, {4}]),  # complete linkage would not (11 > 10.5)
        (24.4, [{0, 1, 2, 3}, {4}]),
        (24.5, [{0, 1, 2, 3, 4}]),
    ],
)
def test_hac_threshold_gives_the_average_linkage_partition(epsilon, expected):
    labels, eps = hac(LINE, epsilon)
    assert eps == epsilon
    assert partition(labels) == {frozenset(e) for e in expected}
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(len(expected)))


def test_linkage_heights_are_the_average_distances():
    np.testing.assert_allclose(average_linkage(LINE)[:, 2], [1.0, 1.0, 10.0, 24.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hac_equals_algorithm_1_run_literally(seed):
    x = np.random.default_rng(seed).normal(size=(12, 3))
    heights = np.unique(average_linkage(x)[:, 2])
    for eps in [0.0, *((heights[:-1] + heights[1:]) / 2), heights[-1] + 1]:  # between merge heights
        assert partition(hac(x, eps)[0]) == brute_force_hac(x, eps), f"epsilon {eps}"


def test_hac_of_a_torch_tensor_equals_numpy_and_handles_one_point():
    x = np.random.default_rng(0).normal(size=(9, 2))
    np.testing.assert_array_equal(hac(torch.from_numpy(x).float(), 0.8)[0], hac(x.astype(np.float32), 0.8)[0])
    labels, _ = hac(np.zeros((1, 4)), None)
    np.testing.assert_array_equal(labels, [0])


@pytest.mark.parametrize(
    "target, epsilon, sizes",
    [
        (1.0, 0.0, [1, 1, 1, 1, 1]),  # K = 5: no merge
        (2.0, 1.0, [1, 2, 2]),  # 5 / 2: K = 3 (mean 1.67) is closer to 2 than K = 2 (mean 2.5)
        (2.5, 10.0, [1, 4]),  # K = 2: epsilon = the height of merge 3
        (5.0, 24.5, [5]),
        (100.0, 24.5, [5]),  # at least one cluster
    ],
)
def test_epsilon_for_a_target_mean_cluster_size(target, epsilon, sizes):
    assert epsilon_for_mean_size(average_linkage(LINE), 5, target) == epsilon
    labels, eps = hac(LINE, None, target)
    assert eps == epsilon
    assert sorted(np.bincount(labels).tolist()) == sizes


def test_epsilon_cut_is_exact_for_tied_heights():
    """Two merges at height 1: a target of 4 / 3 points per cluster cannot be met; both merge together."""
    tree = average_linkage(LINE)
    eps = epsilon_for_mean_size(tree, 5, 5 / 4)  # K = 4 clusters asked: the cut at height 1 gives 3
    assert eps == 1.0
    assert len(np.unique(cut_tree(tree, 5, eps))) == 3


def test_bad_epsilon_or_target_raise():
    tree = average_linkage(LINE)
    with pytest.raises(ValueError, match="epsilon"):
        cut_tree(tree, 5, -1.0)
    with pytest.raises(ValueError, match="target_size"):
        epsilon_for_mean_size(tree, 5, 0.5)


# ---- beyond max_points: a subset, the rest to the nearest clustered point -------------------------------
def test_nearest_labels_known_case():
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    query = torch.tensor([[1.0, 1.0], [9.0, -1.0], [-1.0, 8.0], [4.0, 0.0], [6.0, 0.0]])
    np.testing.assert_array_equal(nearest_labels(query, ref, np.array([7, 3, 5])), [7, 3, 5, 7, 3])


def test_cluster_pool_exact_below_max_points():
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    labels, eps = cluster_pool(x, None, 3.0, 30, rng)
    ref, ref_eps = hac(x, None, 3.0)
    np.testing.assert_array_equal(labels, ref)
    assert eps == ref_eps
    assert rng.random() == np.random.default_rng(0).random(), "no draw when the pool is clustered exactly"


def test_cluster_pool_clusters_a_seeded_subset_and_assigns_the_rest():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    blob = torch.arange(200) % 4
    x = centres[blob] + torch.randn(200, 2, generator=g)
    labels, eps = cluster_pool(x, 8.0, 10.0, 40, np.random.default_rng(5))
    assert eps == 8.0
    sub = np.sort(np.random.default_rng(5).choice(200, size=40, replace=False))
    np.testing.assert_array_equal(labels[sub], hac(x[torch.as_tensor(sub)], 8.0)[0])
    assert partition(labels) == partition(blob.numpy()), "every point joins its blob's cluster"
    again, _ = cluster_pool(x, 8.0, 10.0, 40, np.random.default_rng(5))
    np.testing.assert_array_equal(labels, again)


# ---- Algorithm 2: round-robin -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_round_robin_starts_from_the_smallest_cluster(seed):
    ids = np.array([9, 7, 9, 5, 9, 7])  # sizes: 5 -> 1, 7 -> 2, 9 -> 3
    pos = round_robin(ids, 6, np.random.default_rng(seed))
    assert ids[pos].tolist() == [5, 7, 9, 7, 9, 9]
    assert sorted(pos.tolist()) == list(range(6)) and pos.dtype == np.int64
    assert ids[round_robin(ids, 4, np.random.default_rng(seed))].tolist() == [5, 7, 9, 7]


@pytest.mark.parametrize("seed", range(4))
def test_fewer_clusters_than_budget_cycles_through_them_again(seed):
    ids = np.array([1, 1, 1, 1, 0, 0, 0])  # cluster 0 has 3 members, cluster 1 has 4
    pos = round_robin(ids, 7, np.random.default_rng(seed))
    assert ids[pos].tolist() == [0, 1, 0, 1, 0, 1, 1]
    assert len(set(pos.tolist())) == 7


def test_equal_size_clusters_in_random_order_and_members_uniformly_drawn():
    ids = np.array([4, 4, 4, 2, 2, 2])
    firsts = [tuple(ids[round_robin(ids, 2, np.random.default_rng(s))]) for s in range(20)]
    assert set(firsts) == {(2, 4), (4, 2)}, "ties between equal sizes are broken at random, both ways"
    picked = {int(round_robin(np.array([3, 3, 3]), 1, np.random.default_rng(s))[0]) for s in range(20)}
    assert picked == {0, 1, 2}


def test_round_robin_refuses_more_than_it_holds():
    with pytest.raises(ValueError, match="cannot take"):
        round_robin(np.array([0, 1]), 3, np.random.default_rng(0))


# ---- Algorithm 2: the whole selection step ---------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k_m", [7, 13, 40])
def test_selection_equals_algorithm_2_run_literally(seed, k_m):
    data = np.random.default_rng(100 + seed)
    n = 40
    margins = np.round(data.random(n), 1)  # many equal margins: the tie order matters
    ids = data.integers(0, 6, n)
    got = cluster_margin_select(margins, ids, 7, k_m, np.random.default_rng(seed))
    want = brute_force_algorithm_2(margins, ids, 7, k_m, np.random.default_rng(seed))
    assert got.tolist() == want


def test_picks_only_among_the_k_m_lowest_margins():
    margins = np.arange(20) / 20.0
    ids = np.arange(20) % 3
    for seed in range(5):
        pos = cluster_margin_select(margins, ids, 4, 6, np.random.default_rng(seed))
        assert len(set(pos.tolist())) == 4 and set(pos.tolist()) <= set(range(6))


def test_k_m_below_budget_is_margin_sampling_and_above_n_is_cut():
    margins = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2])
    ids = np.array([0, 0, 0, 0, 1, 1])
    pos = cluster_margin_select(margins, ids, 3, 1, np.random.default_rng(0))
    assert sorted(pos.tolist()) == [1, 3, 5], "k_m < budget: raised to budget = the lowest margins"
    pos = cluster_margin_select(margins, ids, 6, 100, np.random.default_rng(0))
    assert sorted(pos.tolist()) == list(range(6))


def test_k_m_equal_budget_takes_the_budget_lowest_margins():
    margins = np.array([0.4, 0.05, 0.3, 0.2, 0.6, 0.1])
    pos = cluster_margin_select(margins, np.zeros(6, np.int64), 3, 3, np.random.default_rng(0))
    assert sorted(pos.tolist()) == [1, 3, 5]


def test_deterministic_per_seed_and_seed_dependent():
    data = np.random.default_rng(0)
    margins, ids = data.random(50), data.integers(0, 8, 50)
    picks = [cluster_margin_select(margins, ids, 10, 25, np.random.default_rng(s)) for s in (3, 3, 4)]
    np.testing.assert_array_equal(picks[0], picks[1])
    assert not np.array_equal(np.sort(picks[0]), np.sort(picks[2]))
    assert all(len(np.unique(p)) == 10 for p in picks)


def test_selection_input_checks():
    with pytest.raises(ValueError, match="same length"):
        cluster_margin_select(np.zeros(3), np.zeros(2, np.int64), 1, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot select"):
        cluster_margin_select(np.zeros(3), np.zeros(3, np.int64), 4, 4, np.random.default_rng(0))
