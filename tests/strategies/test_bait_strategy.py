"""BAIT strategy on a tiny SelectionContext: contract, the kernel on the context's outputs, the candidate
subset, and the yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from al_bench.errors import ALBenchError
from al_bench.models.mlp import MLP
from al_bench.ops.bait import bait_select
from al_bench.strategies.bait import BAIT
from al_bench.strategies.base import SelectionContext
from tests.conftest import random_selection_context

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "strategy"
N_TRAIN, N_FEATURES, N_CLASSES = 90, 6, 4
LABELED = np.arange(0, N_TRAIN, 9)
UNLABELED = np.setdiff1d(np.arange(N_TRAIN), LABELED)
SUBSET = UNLABELED[::2]


def _context(seed: int = 0, budget: int = 6, candidates: np.ndarray | None = None) -> SelectionContext:
    """90 random inputs, every 9th labeled, a tiny untrained MLP (penultimate width 8)."""
    torch.manual_seed(0)
    model = MLP((N_FEATURES,), N_CLASSES, hidden=(16, 8))
    return random_selection_context(
        model, N_TRAIN, N_FEATURES, N_CLASSES, LABELED, budget, seed, data_seed=7, candidates=candidates
    )


@pytest.mark.parametrize("candidates", [None, SUBSET], ids=["whole_pool", "subset"])
def test_returns_budget_unique_candidates_deterministically(candidates):
    picks = BAIT().select(_context(candidates=candidates))
    allowed = UNLABELED if candidates is None else SUBSET
    assert picks.dtype == np.int64 and len(picks) == 6 and len(np.unique(picks)) == 6
    assert np.isin(picks, allowed).all()
    assert np.array_equal(picks, BAIT().select(_context(seed=1, candidates=candidates))), "no randomness"


def test_is_the_kernel_on_the_context_outputs_mapped_to_global_indices():
    ctx = _context(candidates=SUBSET)
    picks = BAIT(lam=0.5, oversample=3).select(ctx)
    rows = bait_select(
        ctx.probs(),
        ctx.features(),
        ctx.labeled_logits().softmax(-1),
        ctx.labeled_features(),
        6,
        lam=0.5,
        oversample=3,
    )
    assert np.array_equal(picks, SUBSET[rows.numpy()])
    assert len(ctx.labeled_features()) == len(LABELED)


def test_float64_agrees_with_float32_here():
    assert np.array_equal(BAIT(float64=True).select(_context()), BAIT().select(_context()))


def test_max_candidates_draws_a_seeded_subset():
    strategy = BAIT(max_candidates=20)
    rows = strategy.candidate_rows(_context(seed=3))
    assert len(rows) == 20 and np.all(np.diff(rows) > 0)
    picks = strategy.select(_context(seed=3))
    assert np.isin(picks, UNLABELED[rows]).all() and len(np.unique(picks)) == 6
    assert np.array_equal(picks, strategy.select(_context(seed=3)))
    assert not np.array_equal(rows, strategy.candidate_rows(_context(seed=4)))
    assert len(BAIT(max_candidates=2).candidate_rows(_context())) == 6, "never fewer than the budget"
    assert len(BAIT(max_candidates=10_000).candidate_rows(_context())) == len(UNLABELED)


def test_bad_arguments_fail_clearly():
    for kwargs in ({"lam": 0}, {"oversample": 0.5}, {"max_candidates": 0}, {"weighting": "sum"}):
        with pytest.raises(ALBenchError, match="BAIT"):
            BAIT(**kwargs)


def test_yaml_builds_the_authors_defaults():
    cfg = OmegaConf.load(CONFIGS / "bait.yaml")
    strategy = instantiate({k: v for k, v in cfg.items() if k != "name"})
    assert isinstance(strategy, BAIT) and cfg.name == "bait"
    assert (strategy.lam, strategy.oversample, strategy.max_candidates) == (1.0, 2.0, None)
    assert (strategy.weighting, strategy.float64) == ("authors", False)
