"""DropQuery kernels: dropout masks, mismatch counts on hand-made masks, the majority threshold and the
authors' lowering rule, and scikit-activeml's DropQuery (1.0.1 ships it) on the same features and the same
masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_bench.ops.candidate_kmeans import select_flagged
from al_bench.ops.dropquery import dropout_masks, dropout_mismatches, dropquery_flags, mismatch_threshold


def test_masks_drop_with_probability_p_and_repeat_per_seed():
    masks = dropout_masks(3, (200, 50), 0.75, torch.Generator().manual_seed(0))
    assert len(masks) == 3 and all(m.shape == (200, 50) and m.dtype == torch.bool for m in masks)
    frac = torch.stack(masks).float().mean().item()
    assert frac == pytest.approx(0.75, abs=0.01)  # 30000 fixed draws: 0.75 +- 0.0025 (1 sd)
    assert not torch.equal(masks[0], masks[1])
    again = dropout_masks(3, (200, 50), 0.75, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(masks, again))
    assert not dropout_masks(1, (10, 10), 0.0, torch.Generator().manual_seed(0))[0].any()
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        dropout_masks(1, (2, 2), 1.0, torch.Generator())


def test_mismatch_counts_on_hand_made_masks():
    """Head logits (x1 + x2 - 1.5, 0): x = (1, 1) is class 0. Dropping one coordinate leaves 1 - 1.5 < 0
    (class 1) without rescaling, but 4 - 1.5 > 0 with the 1 / (1 - 0.75) rescaling; dropping both gives
    class 1 either way."""
    w = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([-1.5, 0.0])
    x = torch.ones(3, 2)
    ref = torch.zeros(3, dtype=torch.long)
    masks = [
        torch.tensor([[False, False], [True, False], [True, True]]),
        torch.tensor([[False, False], [False, True], [True, True]]),
        torch.tensor([[True, False], [False, False], [True, True]]),
    ]
    scaled = dropout_mismatches(x, w, b, ref, 0.75, masks)
    plain = dropout_mismatches(x, w, b, ref, 0.75, masks, rescale=False)
    assert scaled.tolist() == [0, 0, 3]
    assert plain.tolist() == [1, 2, 3]
    assert scaled.dtype == torch.long


@pytest.mark.parametrize(
    ("n_draws", "counts", "flagged"),
    [
        (3, [0, 1, 2, 3], [False, False, True, True]),  # more than half of 3: 2 or 3
        (4, [0, 1, 2, 3, 4], [False, False, False, True, True]),  # exactly half (2 of 4) is not more
        (5, [2, 3], [False, True]),
    ],
)
def test_fixed_majority_threshold(n_draws, counts, flagged):
    c = torch.tensor(counts)
    t = mismatch_threshold(c, n_draws, budget=100, candidate_factor=0)
    assert (c > t).tolist() == flagged


def test_threshold_drops_until_enough_candidates_as_the_authors_code():
    counts = torch.tensor([3, 2, 1, 1, 1, 0, 0, 0])
    assert mismatch_threshold(counts, 3, budget=1, candidate_factor=2) == 1  # 2 with > 1: enough
    assert mismatch_threshold(counts, 3, budget=1, candidate_factor=3) == 0  # lowered: 5 with > 0
    assert mismatch_threshold(counts, 3, budget=10, candidate_factor=25) == 0  # never below "at least one"
    assert mismatch_threshold(torch.zeros(5, dtype=torch.long), 3, budget=1) == 0


def test_none_and_all_flagged_edge_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 4, generator=g) + 0.5
    ref = torch.zeros(20, dtype=torch.long)
    # a head that ignores its input: no draw changes anything
    flags, counts, _ = dropquery_flags(x, torch.zeros(2, 4), torch.tensor([1.0, 0.0]), ref, 2, g)
    assert not flags.any() and not counts.any()
    # every coordinate dropped: logits = bias, which says class 1 for every row
    all_dropped = [torch.ones(20, 4, dtype=torch.bool)] * 3
    counts = dropout_mismatches(x, torch.eye(2, 4), torch.tensor([0.0, 1.0]), ref, 0.75, all_dropped)
    assert counts.tolist() == [3] * 20


def test_flags_repeat_per_seed_and_change_with_it():
    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(300, 8, generator=g), torch.randn(4, 8, generator=g)
    ref = (x @ w.T).argmax(1)

    def run(seed: int) -> torch.Tensor:
        return dropquery_flags(x, w, None, ref, 5, torch.Generator().manual_seed(seed), candidate_factor=0)[1]

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


# ---- peer: scikit-activeml's DropQuery ---------------------------------------------------------------------
def _skactiveml_run(x: np.ndarray, w: np.ndarray, n_labeled: int, budget: int, seed: int):
    """skactiveml's DropQuery on ``x`` with a fixed linear head that records what it is asked to predict:
    (picked rows of x, prefiltered rows of x, the inputs of each predict call)."""
    pytest.importorskip("skactiveml")
    from skactiveml.base import SkactivemlClassifier
    from skactiveml.pool import DropQuery
    from skactiveml.utils import MISSING_LABEL

    class RecordingLinearHead(SkactivemlClassifier):
        def __init__(self, weight=None, classes=None, missing_label=MISSING_LABEL):
            super().__init__(classes=classes, missing_label=missing_label)
            self.weight = weight

        def fit(self, X, y, sample_weight=None):
            return self

        def predict(self, X, **kwargs):
            self.calls_.append(np.array(X, copy=True))
            return (X @ self.weight.T).argmax(1)

    clf = RecordingLinearHead(weight=w, classes=list(range(len(w))))
    clf.calls_ = []
    y = np.full(len(x), np.nan)
    y[:n_labeled] = 0
    qs = DropQuery(
        dropout_rate=0.75, n_dropout_samples=3, cluster_algo_dict={"random_state": 0, "n_init": 10},
        random_state=seed,
    )  # fmt: skip
    picks, utilities = qs.query(x, y, clf, fit_clf=False, batch_size=budget, return_utilities=True)
    return picks, np.flatnonzero(np.isfinite(utilities[0])), clf.calls_


def test_same_candidates_and_picks_as_scikit_activeml_on_the_same_masks():
    """Four well-separated clumps of features, a bias-free 3-class linear head (so the 1/(1-p) rescaling
    cannot change a prediction), p = 0.75, M = 3, the fixed majority rule (candidate_factor 0). The masks
    are read back from what skactiveml's DropQuery fed the head (zeroed coordinates), so both use the same
    draws; then the flagged set must be identical, and with one clump per k-means cluster, so must the picks
    (the flagged point nearest each clump's flagged mean). skactiveml clusters raw features: normalize=False.
    """
    rng = np.random.default_rng(0)
    n_labeled, budget, d = 3, 4, 6
    centres = rng.normal(size=(4, d)) * 6
    x = np.concatenate([c + 0.3 * rng.normal(size=(25, d)) for c in centres])
    w = rng.normal(size=(3, d))
    sk_picks, sk_prefiltered, calls = _skactiveml_run(x, w, n_labeled, budget, seed=1)

    x_cand = x[n_labeled:]
    assert len(calls) == 4 and np.array_equal(calls[0], x_cand)
    masks = [torch.from_numpy(c == 0) for c in calls[1:]]
    assert 0.6 < float(torch.stack(masks).float().mean()) < 0.9  # skactiveml drops with p = 0.75
    xt, wt = torch.from_numpy(x_cand), torch.from_numpy(w)
    ref = (xt @ wt.T).argmax(1)
    for rescale in (True, False):
        counts = dropout_mismatches(xt, wt, None, ref, 0.75, masks, rescale=rescale)
        flags = counts > mismatch_threshold(counts, 3, budget, candidate_factor=0)
        np.testing.assert_array_equal(np.flatnonzero(flags.numpy()) + n_labeled, sk_prefiltered)
    clump = (np.arange(len(x_cand)) + n_labeled) // 25
    assert len(np.unique(clump[flags.numpy()])) == 4, "every clump has flagged points (precondition)"
    ours = select_flagged(
        xt, flags, budget, torch.Generator().manual_seed(0), np.random.default_rng(0), False
    )
    assert sorted(ours + n_labeled) == sorted(sk_picks.tolist())
