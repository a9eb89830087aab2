"""The k-means step of ALFA-Mix and DropQuery: one representative per cluster (the member nearest its
centroid), all flagged rows when they do not exceed the budget, a seeded uniform fill, unique positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_bench.ops.candidate_kmeans import kmeans_representatives, nearest_members, select_flagged


def clumps(n_clumps: int = 3, per: int = 10, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [n_clumps * per, d], clump id of each row): tight clumps far apart."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clumps, d, generator=g) * 20
    ids = torch.arange(n_clumps).repeat_interleave(per)
    return centres[ids] + 0.1 * torch.randn(len(ids), d, generator=g), ids


def test_nearest_members_takes_the_member_nearest_each_centre_not_the_nearest_row():
    x = torch.tensor([[0.2], [1.0], [2.5], [3.0]])
    centres = torch.tensor([[0.0], [2.9], [100.0]])  # A: rows 0, 1; B: rows 2, 3; the third is empty
    assert nearest_members(x, centres).tolist() == [0, 3]
    # row 0 (x = 1.0) is the row nearest centre B (x = 2.0) but belongs to A (x = 0.9): B takes its member
    assert nearest_members(torch.tensor([[1.0], [3.5]]), torch.tensor([[0.9], [2.0]])).tolist() == [0, 1]
    ties = torch.tensor([[1.0], [1.0], [5.0]])
    assert nearest_members(ties, torch.tensor([[1.0], [5.0]])).tolist() == [0, 2]  # first on ties


def test_representatives_are_one_per_clump_and_nearest_its_mean():
    x, ids = clumps()
    reps = kmeans_representatives(x, 3, torch.Generator().manual_seed(0))
    assert sorted(ids[reps].tolist()) == [0, 1, 2]
    for r in reps.tolist():
        members = torch.nonzero(ids == ids[r]).flatten()
        d = (x[members] - x[members].mean(0)).norm(dim=1)
        assert members[d.argmin()] == r


@pytest.mark.parametrize("normalize", [True, False])
def test_more_flagged_than_budget_gives_one_pick_per_flagged_clump(normalize):
    x, ids = clumps(n_clumps=3, per=10)
    x = x + 50  # keep the clumps apart in direction too
    flagged = torch.zeros(30, dtype=torch.bool)
    flagged[[0, 1, 2, 12, 13, 25, 26, 27, 28]] = True
    picks = select_flagged(
        x, flagged, 3, torch.Generator().manual_seed(0), np.random.default_rng(0), normalize
    )
    assert flagged[picks].all()
    assert sorted(ids[picks].tolist()) == [0, 1, 2]


def test_all_flagged_equals_plain_kmeans_representatives():
    x, _ = clumps()
    flagged = torch.ones(len(x), dtype=torch.bool)
    picks = select_flagged(x, flagged, 3, torch.Generator().manual_seed(4), np.random.default_rng(0), False)
    reps = kmeans_representatives(x, 3, torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(picks, reps.numpy())


def test_none_flagged_is_a_seeded_uniform_draw():
    x, _ = clumps()
    none = torch.zeros(len(x), dtype=torch.bool)

    def pick(seed: int) -> np.ndarray:
        return select_flagged(x, none, 5, torch.Generator(), np.random.default_rng(seed))

    np.testing.assert_array_equal(pick(3), np.random.default_rng(3).choice(len(x), 5, replace=False))
    assert len({tuple(pick(s)) for s in range(5)}) == 5


@pytest.mark.parametrize("n_flagged", [2, 5])
def test_up_to_budget_flagged_are_all_taken_then_filled(n_flagged):
    x, _ = clumps()
    flagged = torch.zeros(len(x), dtype=torch.bool)
    flagged[torch.arange(n_flagged) * 3] = True
    picks = select_flagged(x, flagged, 5, torch.Generator(), np.random.default_rng(1))
    assert len(picks) == 5 and len(np.unique(picks)) == 5 and picks.dtype == np.int64
    np.testing.assert_array_equal(picks[:n_flagged], np.arange(n_flagged) * 3)
    assert not flagged[picks[n_flagged:]].any()


def test_duplicate_points_leave_empty_clusters_that_the_fill_covers():
    """Six flagged rows that are only two distinct points, budget 4: k-means can find at most two non-empty
    clusters; the fill brings the batch to 4 unique positions."""
    x = torch.tensor([[0.0, 1.0]] * 3 + [[1.0, 0.0]] * 3 + [[5.0, 5.0]] * 4)
    flagged = torch.tensor([True] * 6 + [False] * 4)
    picks = select_flagged(x, flagged, 4, torch.Generator().manual_seed(0), np.random.default_rng(0))
    assert len(np.unique(picks)) == 4
    assert sorted((x[picks[:2]] == torch.tensor([0.0, 1.0])).all(1).tolist()) == [False, True]


def test_deterministic_per_seed_and_bad_budget():
    x, _ = clumps(n_clumps=4, per=20)
    flagged = torch.rand(len(x), generator=torch.Generator().manual_seed(0)) < 0.5

    def pick(seed: int) -> np.ndarray:
        return select_flagged(x, flagged, 6, torch.Generator().manual_seed(seed), np.random.default_rng(seed))

    np.testing.assert_array_equal(pick(1), pick(1))
    assert len(np.unique(pick(1))) == 6
    with pytest.raises(ValueError, match="cannot select"):
        select_flagged(x, flagged, len(x) + 1, torch.Generator(), np.random.default_rng(0))
