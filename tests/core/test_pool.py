"""ActivePool: global indices, labeling rules, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from al_bench.pool import ActivePool


def test_label_and_query():
    pool = ActivePool(np.array([0, 2, 3, 5, 7]), size=8)
    pool.label(np.array([3, 7]), cycle=0)
    pool.label(np.array([0]), cycle=1)
    assert pool.labeled_indices.tolist() == [0, 3, 7]
    assert pool.unlabeled_indices.tolist() == [2, 5]
    assert pool.labeled_in_cycle(1).tolist() == [0]
    assert pool.n_labeled == 3 and pool.n_unlabeled == 2
    assert pool.pool_indices.tolist() == [0, 2, 3, 5, 7]


@pytest.mark.parametrize("bad", [[2, 2], [1], [9], [3]])
def test_label_refuses_bad_indices(bad):
    pool = ActivePool(np.array([0, 2, 3, 5, 7]), size=8)
    pool.label(np.array([3]), cycle=0)
    with pytest.raises(ValueError):
        pool.label(np.array(bad), cycle=1)
    assert pool.labeled_indices.tolist() == [3]


def test_state_dict_round_trip():
    pool = ActivePool(np.arange(10))
    pool.label(np.array([4, 1]), cycle=0)
    other = ActivePool(np.arange(10))
    other.load_state_dict(pool.state_dict())
    assert other.labeled_indices.tolist() == [1, 4]
    pool.label(np.array([5]), cycle=1)
    assert other.n_labeled == 2  # independent copies
