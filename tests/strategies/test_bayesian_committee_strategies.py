"""Bayesian, committee and EGL strategies on a tiny SelectionContext (random data, tiny MLPs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from al_bench.errors import ALBenchError
from al_bench.models.mlp import MLP
from al_bench.ops.bayesian import bald
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.bayesian import BALD, BatchBALD, MCEntropy, MeanStd, VariationRatio
from al_bench.strategies.committee import ConsensusEntropy, KLDivergence, VoteEntropy
from al_bench.strategies.egl import EGL
from tests.conftest import random_selection_context

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "strategy"
MINE = ["bald", "variation_ratio", "mean_std", "mc_entropy", "batchbald"]
MINE += ["vote_entropy", "consensus_entropy", "kl_divergence", "egl"]
N_TRAIN, N_FEATURES, N_CLASSES = 80, 6, 3


def _mlp(seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP((N_FEATURES,), N_CLASSES, hidden=(16, 16), dropout=0.3)


def _context(seed: int = 0, budget: int = 5, fit_model=None, candidates=None):
    labeled = np.arange(0, N_TRAIN, 8)
    return random_selection_context(
        _mlp(0),
        N_TRAIN,
        N_FEATURES,
        N_CLASSES,
        labeled,
        budget,
        seed,
        candidates=candidates,
        fit_model=fit_model,
    )


def _fit_model(seed: int) -> MLP:
    return _mlp(seed % 1000 + 1)


STRATEGIES = [
    BALD(n_samples=8),
    VariationRatio(n_samples=8),
    MeanStd(n_samples=8),
    MCEntropy(n_samples=8),
    BatchBALD(n_samples=8, num_joint_samples=300),
    BatchBALD(n_samples=8, num_joint_samples=300, max_candidates=20),
    VoteEntropy(committee_size=3),
    ConsensusEntropy(committee_size=3),
    KLDivergence(committee_size=3, include_trained_model=False),
    EGL(),
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_returns_budget_unique_candidates_and_is_reproducible(strategy):
    candidates = np.flatnonzero(np.arange(N_TRAIN) % 8 != 0)[::2]  # a subset of the unlabeled pool
    picks = strategy.select(_context(seed=4, fit_model=_fit_model, candidates=candidates))
    assert picks.dtype == np.int64 and len(picks) == 5 and len(np.unique(picks)) == 5
    assert np.isin(picks, candidates).all()
    again = strategy.select(_context(seed=4, fit_model=_fit_model, candidates=candidates))
    assert np.array_equal(picks, again)


def test_bald_strategy_takes_the_top_bald_candidates():
    ctx = _context()
    scores = bald(ctx.mc_probs(8))
    picks = BALD(n_samples=8).select(ctx)
    expected = ctx.candidates[np.argsort(-scores.numpy())[:5]]
    assert set(picks.tolist()) == set(expected.tolist())


def test_batchbald_first_pick_is_the_bald_argmax():
    ctx = _context(budget=1)
    best = ctx.candidates[int(bald(ctx.mc_probs(8)).argmax())]
    assert BatchBALD(n_samples=8).select(ctx).tolist() == [best]


def test_batchbald_prefilter_keeps_top_bald_candidates():
    ctx = _context(budget=4)
    scores = bald(ctx.mc_probs(8)).numpy()
    top = set(ctx.candidates[np.argsort(-scores)[:10]].tolist())
    assert set(BatchBALD(n_samples=8, max_candidates=10).select(ctx).tolist()) <= top
    with pytest.raises(ALBenchError):
        BatchBALD(n_samples=8, max_candidates=3).select(_context(budget=4))


def test_committee_members_come_from_fit_model_with_seeds_from_ctx_rng():
    seen: list[int] = []

    def fit(seed: int) -> MLP:
        seen.append(seed)
        return _mlp(seed % 1000 + 1)

    ctx = _context(fit_model=fit)
    probs = VoteEntropy(committee_size=4).member_probs(ctx)
    assert probs.shape == (4, len(ctx.candidates), N_CLASSES) and len(set(seen)) == 3
    assert torch.allclose(probs[0], ctx.probs())
    assert torch.allclose(probs.sum(-1), torch.ones(4, len(ctx.candidates)), atol=1e-5)


def test_identical_committee_has_zero_disagreement():
    ctx = _context(fit_model=lambda seed: _mlp(0))  # every member equals the trained model
    for strategy in (VoteEntropy(committee_size=3), KLDivergence(committee_size=3)):
        assert torch.allclose(
            strategy.score(ctx), torch.zeros(len(ctx.candidates), dtype=torch.float64), atol=1e-6
        )


def test_user_errors():
    with pytest.raises(ALBenchError, match="fit_model"):
        VoteEntropy().select(_context(fit_model=None))
    with pytest.raises(ALBenchError, match="dropout"):
        BALD().select(_no_dropout_context())
    with pytest.raises(ALBenchError):
        BALD(n_samples=0)
    with pytest.raises(ALBenchError):
        ConsensusEntropy(committee_size=1)


def _no_dropout_context() -> SelectionContext:
    ctx = _context()
    for m in ctx.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return ctx


@pytest.mark.parametrize("name", MINE)
def test_config_instantiates(name):
    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    assert cfg.pop("name") == name
    strategy = instantiate(cfg)
    if name != "batchbald":
        assert hasattr(strategy, "score")
    picks = strategy.select(_context(fit_model=_fit_model))
    assert len(np.unique(picks)) == 5
