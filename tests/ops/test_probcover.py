"""ProbCover kernels on tiny known cases: the delta-ball graph, purity, the choice of delta, greedy max
coverage (against brute force with dense matrices), and scikit-activeml's ProbCover as a peer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_bench.ops.clustering import kmeans
from al_bench.ops.probcover import (
    DELTA_GRID,
    choose_delta,
    delta_ball_graph,
    impure_radius_sq,
    max_coverage,
    purity,
)


def blobs(
    sizes: list[int], seed: int = 0, spread: float = 0.15, dim: int = 2
) -> tuple[torch.Tensor, np.ndarray]:
    """Gaussian blobs [sum(sizes), dim] (float64) around well separated centres, and their blob labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(sizes), dim, generator=g, dtype=torch.float64) * 3.0
    z = torch.cat(
        [c + spread * torch.randn(s, dim, generator=g, dtype=torch.float64) for c, s in zip(centres, sizes)]
    )
    return z, np.repeat(np.arange(len(sizes)), sizes)


def dense_adjacency(z: torch.Tensor, delta: float) -> np.ndarray:
    """[N, N] bool, ||z_u - z_v|| < delta, by torch.cdist (the brute force)."""
    return (torch.cdist(z, z) < delta).numpy()


def brute_purity(z: torch.Tensor, labels: np.ndarray, delta: float) -> float:
    adj = dense_adjacency(z, delta)
    return float(1.0 - (adj & (labels[None, :] != labels[:, None])).any(1).mean())


def brute_greedy(
    adj: np.ndarray, covered0: np.ndarray, budget: int, rng: np.random.Generator, selectable: np.ndarray
) -> tuple[list[int], np.ndarray]:
    """The greedy written out on a dense [N, N] adjacency, with the same rng protocol as max_coverage:
    (picks, covered [N] after them)."""
    covered, free, picks = covered0.copy(), selectable.copy(), []
    while len(picks) < budget:
        gain = np.where(free, (adj & ~covered[None, :]).sum(1), -1)
        if gain.max() <= 0:
            break
        ties = np.flatnonzero(gain == gain.max())
        j = int(ties[rng.integers(len(ties))])
        picks.append(j)
        free[j] = False
        covered |= adj[j]
    rest = budget - len(picks)
    if rest:
        picks += rng.choice(np.flatnonzero(free), size=rest, replace=False).tolist()
    return picks, covered


def edges_of(adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    src, dst = np.nonzero(adj)
    return src.astype(np.int64), dst.astype(np.int64)


# ---- the graph ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 3, None])
@pytest.mark.parametrize("delta", [0.3, 0.8, 2.5])
def test_graph_equals_brute_force_pairwise_distances(chunk, delta):
    z = torch.randn(23, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    src, dst = delta_ball_graph(z, delta, chunk=chunk)
    bs, bd = edges_of(dense_adjacency(z, delta))
    np.testing.assert_array_equal(src, bs)
    np.testing.assert_array_equal(dst, bd)
    assert src.dtype == dst.dtype == np.int64


def test_graph_has_self_loops_and_is_symmetric_and_delta_zero_is_empty():
    z = torch.randn(15, 4, generator=torch.Generator().manual_seed(2))
    src, dst = delta_ball_graph(z, 1e-3, chunk=4)
    np.testing.assert_array_equal(src, np.arange(15))  # only self-loops at a tiny radius
    np.testing.assert_array_equal(dst, np.arange(15))
    src, dst = delta_ball_graph(z, 1.5, chunk=4)
    assert set(zip(src.tolist(), dst.tolist())) == set(zip(dst.tolist(), src.tolist()))
    src, dst = delta_ball_graph(z, 0.0)
    assert len(src) == len(dst) == 0
    with pytest.raises(ValueError, match="non-negative"):
        delta_ball_graph(z, -1.0)


def test_graph_ball_is_strict_at_the_radius():
    z = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)  # distances 1, 2, 3 exactly
    src, dst = delta_ball_graph(z, 1.0)
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 0), (1, 1), (2, 2)]
    src, _ = delta_ball_graph(z, 2.0 + 1e-9)
    assert len(src) == 3 + 4


# ---- purity and delta --------------------------------------------------------------------------------------
#: three "blobs" on a line at dyadic coordinates (exact arithmetic): A = {0, 0.25}, B = {1, 1.25}, C = {5}.
LINE = torch.tensor([[0.0, 0.0], [0.25, 0.0], [1.0, 0.0], [1.25, 0.0], [5.0, 0.0]], dtype=torch.float64)
LINE_LABELS = torch.tensor([0, 0, 1, 1, 2])


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (0.5, 1.0),  # every ball inside its blob
        (0.75, 1.0),  # 0.25 -> 1 is exactly 0.75: not in the (strict) ball
        (0.8, 3 / 5),  # 0.25 <-> 1 (0.75): points 1 and 2 impure
        (1.0, 3 / 5),  # 0 <-> 1 and 0.25 <-> 1.25 are exactly 1: still outside
        (1.01, 1 / 5),  # now 0, 0.25, 1, 1.25 all see the other blob; C stays pure
        (10.0, 0.0),
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, None])
def test_purity_by_hand_on_three_blobs(delta, expected, chunk):
    assert purity(LINE, LINE_LABELS, delta, chunk=chunk) == pytest.approx(expected)


def test_impure_radius_is_the_distance_to_the_nearest_other_cluster():
    r2 = impure_radius_sq(LINE, LINE_LABELS, chunk=2)
    np.testing.assert_allclose(r2.numpy(), [1.0, 0.75**2, 0.75**2, 1.0, 3.75**2])
    assert torch.isinf(impure_radius_sq(LINE, torch.zeros(5, dtype=torch.long))).all()


@pytest.mark.parametrize(
    ("alpha", "expected"), [(1.0, 0.75), (0.9, 0.75), (0.6, 1.0), (0.2, 1.01), (0.0, 10.0)]
)
def test_choose_delta_by_hand_on_three_blobs(alpha, expected):
    grid = [0.5, 0.75, 0.8, 1.0, 1.01, 10.0]
    assert choose_delta(LINE, LINE_LABELS, alpha, grid) == expected


@pytest.mark.parametrize("alpha", [0.5, 0.8, 0.95, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choose_delta_is_the_largest_grid_value_with_purity_at_least_alpha(alpha, seed):
    z, labels = blobs([30, 20, 12], seed=seed, spread=0.6)
    grid = np.round(np.arange(1, 61) * 0.05, 2)
    pur = np.array([brute_purity(z, labels, d) for d in grid])
    expected = grid[np.flatnonzero(pur >= alpha)].max()
    assert choose_delta(z, torch.as_tensor(labels), alpha, grid, chunk=7) == expected
    assert purity(z, torch.as_tensor(labels), expected) == pytest.approx(brute_purity(z, labels, expected))
    assert np.all(np.diff(pur) <= 0), "purity never grows with delta"


def test_choose_delta_warns_and_takes_the_smallest_when_no_radius_is_pure_enough():
    with pytest.warns(RuntimeWarning, match="no radius"):
        assert choose_delta(LINE, LINE_LABELS, 0.9, [2.0, 1.01]) == 1.01


def test_default_grid():
    assert DELTA_GRID[0] == 0.05 and DELTA_GRID[-1] == 2.0 and len(DELTA_GRID) == 40
    assert np.allclose(np.diff(DELTA_GRID), 0.05)


# ---- max coverage ------------------------------------------------------------------------------------------
#: a hand-made graph (self-loops included):
#: 0 covers {0,1,2,3}; 1 covers {1,2}; 4 covers {4,5}; 5 covers {5,3}.
HAND = {0: [0, 1, 2, 3], 1: [1, 2], 2: [2], 3: [3], 4: [4, 5], 5: [5, 3]}


def hand_graph(graph: dict[int, list[int]] = HAND) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(graph)
    adj = np.zeros((n, n), bool)
    for u, vs in graph.items():
        adj[u, vs] = True
    return (*edges_of(adj), adj)


def test_max_coverage_by_hand():
    src, dst, _ = hand_graph()
    none = np.zeros(6, bool)
    # 0 gains 4; then 4 gains 2 (4, 5) against 5's 1 (3 is covered) and 1's 0
    np.testing.assert_array_equal(max_coverage(src, dst, 6, none, 2, np.random.default_rng(0)), [0, 4])


def test_points_covered_by_the_labeled_set_never_count():
    graph = {**HAND, 5: [5, 3, 2, 1]}  # 5 now covers 4 points, 4 only 2
    src, dst, _ = hand_graph(graph)
    none = np.zeros(6, bool)
    assert max_coverage(src, dst, 6, none, 1, np.random.default_rng(0))[0] == 5
    covered0 = np.isin(np.arange(6), [0, 1, 2, 3])  # e.g. node 0 labeled: its ball is covered
    selectable = ~np.isin(np.arange(6), [0])
    # 5 now gains only itself (1); 4 gains {4, 5} (2)
    picks = max_coverage(src, dst, 6, covered0, 2, np.random.default_rng(0), selectable)
    assert picks[0] == 4
    assert 0 not in picks


def test_ties_are_broken_by_the_rng():
    n = 8
    src = dst = np.arange(n)  # every node covers only itself: all tie at every step
    picks = [
        tuple(max_coverage(src, dst, n, np.zeros(n, bool), 3, np.random.default_rng(s))) for s in range(6)
    ]
    assert len(set(picks)) > 1
    rng = np.random.default_rng(3)
    expected, _ = brute_greedy(np.eye(n, dtype=bool), np.zeros(n, bool), 3, rng, np.ones(n, bool))
    np.testing.assert_array_equal(
        max_coverage(src, dst, n, np.zeros(n, bool), 3, np.random.default_rng(3)), expected
    )


@pytest.mark.parametrize("seed", range(8))
def test_max_coverage_equals_the_brute_force_greedy(seed):
    rng = np.random.default_rng(seed)
    n = 40
    if seed % 2:  # a random directed graph with many ties
        adj = rng.random((n, n)) < 0.08
    else:  # a delta-ball graph
        z = torch.as_tensor(rng.normal(size=(n, 2)))
        adj = dense_adjacency(z, 0.6)
    covered0 = rng.random(n) < 0.2
    selectable = rng.random(n) < 0.7
    budget = min(10, int(selectable.sum()))
    src, dst = edges_of(adj)
    picks = max_coverage(src, dst, n, covered0, budget, np.random.default_rng(100 + seed), selectable)
    expected, covered = brute_greedy(adj, covered0, budget, np.random.default_rng(100 + seed), selectable)
    np.testing.assert_array_equal(picks, expected)
    assert len(np.unique(picks)) == budget and selectable[picks].all()
    total = covered0 | adj[picks].any(0)
    assert total.sum() == covered.sum(), "the same number of points covered after b picks"


def test_everything_covered_gives_random_unique_selectable_points():
    src, dst, _ = hand_graph()
    selectable = np.array([False, True, True, True, True, True])
    picks = max_coverage(src, dst, 6, np.ones(6, bool), 4, np.random.default_rng(5), selectable)
    expected = np.random.default_rng(5).choice(np.flatnonzero(selectable), size=4, replace=False)
    np.testing.assert_array_equal(picks, expected)
    assert len(np.unique(picks)) == 4 and selectable[picks].all()


def test_random_fill_once_nothing_new_can_be_covered():
    src, dst, adj = hand_graph()
    picks = max_coverage(src, dst, 6, np.zeros(6, bool), 5, np.random.default_rng(1))
    np.testing.assert_array_equal(picks[:2], [0, 4])  # these two cover all six nodes
    assert len(np.unique(picks)) == 5
    expected, _ = brute_greedy(adj, np.zeros(6, bool), 5, np.random.default_rng(1), np.ones(6, bool))
    np.testing.assert_array_equal(picks, expected)


def test_max_coverage_refuses_a_budget_above_the_selectable_nodes():
    src, dst, _ = hand_graph()
    with pytest.raises(ValueError, match="cannot pick 3 of 2"):
        max_coverage(src, dst, 6, np.zeros(6, bool), 3, np.random.default_rng(0), np.arange(6) < 2)


# ---- peer: scikit-activeml ---------------------------------------------------------------------------------
def star_blobs(satellites: list[int], dim: int = 6, r: float = 1.0) -> torch.Tensor:
    """One centre plus m satellites at centre +- r e_i per blob, blobs 100 apart: with r < delta < r sqrt(2) a
    centre's ball is its whole blob and a satellite's only itself and its centre,
    so the greedy has no ties."""
    pts = []
    for b, m in enumerate(satellites):
        centre = torch.zeros(dim, dtype=torch.float64)
        centre[0] = 100.0 * b
        axes = torch.cat([torch.eye(dim), -torch.eye(dim)]).double()[:m]
        pts += [centre[None], centre + r * axes]
    return torch.cat(pts)


def peer_query(z: torch.Tensor, labeled: np.ndarray, budget: int, **kw) -> object:
    skactiveml = pytest.importorskip(
        "skactiveml.pool", reason="scikit-activeml is not installed (a test peer)"
    )
    y = np.full(len(z), np.nan)
    y[labeled] = 0
    qs = skactiveml.ProbCover(random_state=0, **kw)
    return qs, qs.query(z.numpy(), y, batch_size=budget)


def test_peer_scikit_activeml_selects_the_same_set_without_ties():
    satellites = [10, 7, 5, 3]
    z = star_blobs(satellites)
    labeled = np.array([1])  # a satellite of the largest blob: its centre now gains 9, still above 8, 6, 4
    delta, budget, n = 1.2, 4, len(z)
    _, theirs = peer_query(z, labeled, budget, deltas=[delta])
    src, dst = delta_ball_graph(z, delta)
    covered0 = np.zeros(n, bool)
    covered0[dst[np.isin(src, labeled)]] = True
    selectable = ~np.isin(np.arange(n), labeled)
    ours = max_coverage(src, dst, n, covered0, budget, np.random.default_rng(0), selectable)
    starts = np.cumsum([0] + [1 + m for m in satellites])[:-1]
    np.testing.assert_array_equal(ours, starts)  # the centres, largest blob first
    np.testing.assert_array_equal(ours, theirs)  # same picks in the same order


def test_peer_scikit_activeml_on_gaussian_blobs_checked_tie_free():
    z, _ = blobs([60, 35, 20, 9], seed=1, spread=0.5)
    n, delta, budget = len(z), 0.8, 5
    labeled = np.array([0, 70])
    adj = dense_adjacency(z, delta)
    covered0 = adj[labeled].any(0)
    selectable = ~np.isin(np.arange(n), labeled)
    # precondition: the brute-force greedy meets no tie in these steps, so any tie rule gives the same picks
    covered, free = covered0.copy(), selectable.copy()
    for _ in range(budget):
        gain = np.where(free, (adj & ~covered[None, :]).sum(1), -1)
        assert (gain == gain.max()).sum() == 1 and gain.max() > 0
        j = int(gain.argmax())
        free[j], covered = False, covered | adj[j]
    src, dst = delta_ball_graph(z, delta)
    ours = max_coverage(src, dst, n, covered0, budget, np.random.default_rng(0), selectable)
    _, theirs = peer_query(z, labeled, budget, deltas=[delta])
    np.testing.assert_array_equal(ours, theirs)


def test_peer_scikit_activeml_chooses_the_same_delta():
    z, labels = blobs([50, 30, 15], seed=4, spread=0.5)
    grid = np.round(np.arange(1, 61) * 0.05, 2)
    qs, _ = peer_query(z, np.array([0]), 1, deltas=grid, n_classes=3)
    # well separated blobs: their KMeans and ours both find the blobs
    _, ours = kmeans(z, 3, torch.Generator().manual_seed(0))
    assert len({(int(a), int(b)) for a, b in zip(ours, labels)}) == 3, "our k-means finds the three blobs"
    assert choose_delta(z, ours, 0.95, grid) == pytest.approx(qs.delta_max_)
