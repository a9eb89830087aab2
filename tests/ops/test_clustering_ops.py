"""k-means, typicality, TypiClust and diverse mini-batch selection on tiny blobs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_bench.ops.clustering import (
    diverse_minibatch_select,
    kmeans,
    kmeans_pp_init,
    knn_distances,
    squared_distances,
    typicality,
    typiclust_select,
)


def blobs(n_per: int, centres: list[list[float]], spread: float = 0.3, seed: int = 0):
    """(x [B * n_per, D], blob id [B * n_per]) of Gaussian blobs, rows grouped by blob."""
    g = torch.Generator().manual_seed(seed)
    c = torch.tensor(centres, dtype=torch.float32)
    x = torch.cat([ci + spread * torch.randn(n_per, c.shape[1], generator=g) for ci in c])
    return x, torch.arange(len(c)).repeat_interleave(n_per)


SQUARE = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]
SIX = [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [0.0, 10.0], [10.0, 10.0], [20.0, 10.0]]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when the two labelings define the same partition (equal up to renaming)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# ---- distances ---------------------------------------------------------------------------------------------
def test_squared_distances_match_brute_force():
    g = gen(0)
    x, c = (
        torch.randn(7, 3, generator=g, dtype=torch.float64),
        torch.randn(4, 3, generator=g, dtype=torch.float64),
    )
    brute = torch.tensor([[float(((xi - cj) ** 2).sum()) for cj in c] for xi in x], dtype=torch.float64)
    assert torch.allclose(squared_distances(x, c), brute)


def test_knn_distances_exclude_self_and_are_sorted():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    d = knn_distances(x, 2)
    assert torch.allclose(d, torch.tensor([[1.0, 3.0], [1.0, 2.0], [2.0, 3.0], [4.0, 6.0]]))


# ---- k-means -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_recovers_separated_blobs(seed):
    x, blob = blobs(30, SQUARE, seed=seed)
    centres, assign = kmeans(x, 4, gen(seed))
    assert same_partition(assign, blob)
    true_centres = torch.tensor(SQUARE)
    matched = centres[assign[torch.arange(4) * 30]]  # the centre of each blob, by its first point
    assert torch.allclose(matched, true_centres, atol=0.3)


def test_kmeans_is_deterministic_for_a_seed():
    x = torch.randn(200, 5, generator=gen(3))
    c1, a1 = kmeans(x, 7, gen(11))
    c2, a2 = kmeans(x, 7, gen(11))
    assert torch.equal(c1, c2) and torch.equal(a1, a2)


def test_kmeans_centres_are_weighted_means_of_their_points():
    x, _ = blobs(20, SQUARE, spread=1.0, seed=4)
    w = torch.rand(len(x), generator=gen(5)) + 0.1
    centres, assign = kmeans(x, 4, gen(6), weights=w)
    for c in range(4):
        m = assign == c
        expected = (x[m] * w[m, None]).sum(0) / w[m].sum()
        assert torch.allclose(centres[c], expected, atol=1e-4)


def test_kmeans_weights_pull_a_single_centre():
    x = torch.tensor([[0.0], [10.0]])
    centres, _ = kmeans(x, 1, gen(0), weights=torch.tensor([3.0, 1.0]))
    assert torch.allclose(centres, torch.tensor([[2.5]]))


def test_kmeans_with_fewer_distinct_points_than_clusters_is_deterministic_and_finite():
    x = torch.tensor([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]]).repeat(4, 1)  # 3 distinct points, 12 rows
    c1, a1 = kmeans(x, 5, gen(2))
    c2, a2 = kmeans(x, 5, gen(2))
    assert torch.isfinite(c1).all() and torch.equal(c1, c2) and torch.equal(a1, a2)
    assert a1.min() >= 0 and a1.max() < 5
    assert same_partition(a1, torch.tensor([0, 1, 2]).repeat(4))  # identical rows never split


def test_kmeans_pp_init_picks_distinct_rows_and_one_per_blob():
    x, blob = blobs(25, SQUARE, spread=0.1, seed=7)
    picks = kmeans_pp_init(x, 4, gen(8))
    assert len(set(picks.tolist())) == 4
    assert sorted(blob[picks].tolist()) == [0, 1, 2, 3]


def test_kmeans_rejects_more_clusters_than_points():
    with pytest.raises(ValueError):
        kmeans(torch.zeros(3, 2), 4, gen(0))


# ---- typicality --------------------------------------------------------------------------------------------
def test_typicality_matches_brute_force():
    x = torch.randn(30, 4, generator=gen(9), dtype=torch.float64)
    k = 5
    brute = []
    for i in range(len(x)):
        d = sorted(float(((x[i] - x[j]) ** 2).sum().sqrt()) for j in range(len(x)) if j != i)
        brute.append(1.0 / (np.mean(d[:k]) + 1e-5))
    assert torch.allclose(typicality(x, k), torch.tensor(brute, dtype=torch.float64))


def test_typicality_ranks_the_dense_core_above_an_outlier():
    x = torch.cat([torch.randn(20, 2, generator=gen(1)) * 0.1, torch.tensor([[5.0, 5.0]])])
    t = typicality(x, 5)
    assert int(t.argmin()) == 20
    assert t[:20].min() > t[20]


def test_typicality_of_a_single_point_is_infinite():
    assert torch.isinf(typicality(torch.zeros(1, 3), 20)).all()


# ---- TypiClust ---------------------------------------------------------------------------------------------
def test_typiclust_never_picks_a_labeled_cluster_while_an_empty_one_exists():
    x, blob = blobs(20, SIX, seed=1)
    is_labeled = torch.zeros(len(x), dtype=torch.bool)
    is_labeled[[0, 20, 40]] = True  # one label in blobs 0, 1, 2
    picks = typiclust_select(x, is_labeled, 3, gen(0))
    assert sorted(blob[picks].tolist()) == [3, 4, 5]
    assert not is_labeled[picks].any()


def test_typiclust_takes_the_most_typical_point_of_each_cluster():
    x, blob = blobs(20, SIX, seed=2)
    is_labeled = torch.zeros(len(x), dtype=torch.bool)
    picks = typiclust_select(x, is_labeled, 6, gen(1), k_neighbors=20)
    for p in picks.tolist():
        members = torch.nonzero(blob == blob[p]).flatten()
        t = typicality(x[members], min(20, len(members) // 2))  # the authors' K on a 20-point cluster
        assert members[int(t.argmax())] == p


def test_typiclust_round_robins_past_the_number_of_clusters():
    x, blob = blobs(12, SQUARE, seed=3)
    is_labeled = torch.zeros(len(x), dtype=torch.bool)
    is_labeled[0] = True
    picks = typiclust_select(x, is_labeled, 10, gen(2), max_clusters=4)
    assert len(set(picks.tolist())) == 10 and not is_labeled[picks].any()
    counts = np.bincount(blob[picks].numpy(), minlength=4)
    assert counts.max() - counts.min() <= 1  # 4 clusters visited in turn: 3, 3, 2, 2


def test_typiclust_skips_small_clusters_first_as_the_authors():
    x_big, _ = blobs(20, [[0.0, 0.0], [10.0, 0.0]], seed=4)
    x_small = torch.tensor([[50.0, 50.0], [50.1, 50.0], [50.0, 50.1]])  # 3 points: size <= 5
    x = torch.cat([x_big, x_small])
    is_labeled = torch.zeros(len(x), dtype=torch.bool)
    is_labeled[0] = True  # the blob at the origin holds a label; the far small cluster holds none
    picks = typiclust_select(x, is_labeled, 2, gen(3))
    assert (picks < 40).all()  # the big unlabeled blob, then the labeled big blob; never the small one
    assert sorted((picks >= 20).tolist()) == [False, True]
    # once the big clusters are exhausted, the small one is used
    picks = typiclust_select(x, is_labeled, 42, gen(3))
    assert len(set(picks.tolist())) == 42 and not is_labeled[picks].any()


def test_typiclust_is_deterministic_for_a_seed():
    x = torch.randn(80, 3, generator=gen(5))
    is_labeled = torch.zeros(80, dtype=torch.bool)
    is_labeled[:5] = True
    assert torch.equal(typiclust_select(x, is_labeled, 7, gen(4)), typiclust_select(x, is_labeled, 7, gen(4)))


def test_typiclust_rejects_a_budget_beyond_the_unlabeled_points():
    with pytest.raises(ValueError):
        typiclust_select(torch.randn(4, 2), torch.tensor([True, True, False, False]), 3, gen(0))


# ---- diverse mini-batch ------------------------------------------------------------------------------------
def test_diverse_minibatch_picks_one_per_blob_among_informative_ones():
    x, blob = blobs(25, SQUARE, seed=6)
    g = gen(7)
    # in every blob, 12 informative points and 13 uninformative ones
    informative = torch.zeros(len(x), dtype=torch.bool)
    for b in range(4):
        informative[b * 25 : b * 25 + 12] = True
    score = torch.where(
        informative, 0.5 + 0.5 * torch.rand(len(x), generator=g), 0.05 * torch.rand(len(x), generator=g)
    )
    picks = diverse_minibatch_select(x, score, 4, gen(8), beta=10)  # pre-filter 40 of the 48 informative
    assert sorted(blob[picks].tolist()) == [0, 1, 2, 3]
    assert informative[picks].all()


def test_diverse_minibatch_takes_the_point_nearest_each_weighted_centre():
    x, _ = blobs(10, SQUARE, seed=9)
    score = torch.rand(len(x), generator=gen(10))
    picks = diverse_minibatch_select(x, score, 4, gen(11), beta=100)  # no pre-filter: all 40 points
    order = torch.argsort(-score, stable=True)  # the rows k-means sees, in its order
    centres, _ = kmeans(x[order], 4, gen(11), weights=score[order])
    nearest = order[squared_distances(centres, x[order]).argmin(1)]
    assert sorted(picks.tolist()) == sorted(nearest.tolist())


def test_diverse_minibatch_returns_unique_positions_even_with_duplicate_points():
    x = torch.tensor([[0.0, 0.0]] * 6 + [[1.0, 1.0]] * 6)
    picks = diverse_minibatch_select(x, torch.ones(12), 5, gen(0), beta=10)
    assert len(set(picks.tolist())) == 5


@pytest.mark.parametrize("seed", [0, 1])
def test_diverse_minibatch_is_deterministic_and_within_the_prefilter(seed):
    x = torch.randn(300, 4, generator=gen(seed))
    score = torch.rand(300, generator=gen(seed + 10))
    a = diverse_minibatch_select(x, score, 6, gen(seed), beta=3)
    b = diverse_minibatch_select(x, score, 6, gen(seed), beta=3)
    assert torch.equal(a, b)
    top18 = set(torch.argsort(-score)[:18].tolist())
    assert set(a.tolist()) <= top18


def test_same_partition_helper_detects_a_difference():
    assert same_partition(torch.tensor([0, 0, 1]), torch.tensor([5, 5, 2]))
    assert not same_partition(torch.tensor([0, 0, 1]), torch.tensor([5, 2, 2]))
