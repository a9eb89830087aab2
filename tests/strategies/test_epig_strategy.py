"""EPIG strategy on a tiny SelectionContext: contract, target draw, shared MC-dropout functions, a hand-built
net with a known ranking, the yaml, and one CLI run on the default digits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.models.mlp import MLP
from al_bench.ops.bayesian import bald
from al_bench.ops.epig import epig_from_probs
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.epig import EPIG
from tests.conftest import PYTHON, ROOT, random_selection_context

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "strategy"
N_TRAIN, N_FEATURES, N_CLASSES = 80, 6, 3
LABELED = np.arange(0, N_TRAIN, 8)


def _context(seed: int = 0, budget: int = 5, candidates: np.ndarray | None = None) -> SelectionContext:
    """80 random inputs, every 8th labeled, a tiny MLP with dropout 0.3."""
    torch.manual_seed(0)
    model = MLP((N_FEATURES,), N_CLASSES, hidden=(16, 16), dropout=0.3)
    return random_selection_context(
        model, N_TRAIN, N_FEATURES, N_CLASSES, LABELED, budget, seed, data_seed=123, candidates=candidates
    )


def _spy_posterior_probs(
    ctx: SelectionContext, monkeypatch
) -> list[tuple[int, np.ndarray | None, torch.Tensor]]:
    """Record every ctx.posterior_probs call (EPIG's default source is MC dropout) as (n_samples, indices,
    returned probabilities)."""
    calls: list[tuple[int, np.ndarray | None, torch.Tensor]] = []
    real = ctx.posterior_probs

    def spy(source, n_samples: int, indices: np.ndarray | None = None) -> torch.Tensor:
        assert source.name == "mc_dropout"
        out = real(source, n_samples, indices)
        calls.append((n_samples, None if indices is None else np.asarray(indices), out))
        return out

    monkeypatch.setattr(ctx, "posterior_probs", spy)
    return calls


SUBSET = np.flatnonzero(np.arange(N_TRAIN) % 8 != 0)[::2]  # candidates: a subset of the unlabeled pool


@pytest.mark.parametrize("candidates", [None, SUBSET], ids=["whole_pool", "subset"])
def test_returns_budget_unique_candidates_and_is_deterministic_per_seed(candidates):
    strategy = EPIG(n_samples=8, n_target_inputs=20)
    picks = strategy.select(_context(seed=4, candidates=candidates))
    allowed = SUBSET if candidates is not None else np.setdiff1d(np.arange(N_TRAIN), LABELED)
    assert picks.dtype == np.int64 and len(picks) == 5 and len(np.unique(picks)) == 5
    assert np.isin(picks, allowed).all()
    assert np.array_equal(picks, strategy.select(_context(seed=4, candidates=candidates)))
    scores = [strategy.score(_context(seed=s, candidates=candidates)) for s in (4, 4, 5)]
    assert torch.equal(scores[0], scores[1]) and not torch.equal(scores[0], scores[2])


def test_targets_are_drawn_from_the_unlabeled_pool_only(monkeypatch):
    ctx = _context(seed=1, candidates=SUBSET)
    calls = _spy_posterior_probs(ctx, monkeypatch)
    EPIG(n_samples=8, n_target_inputs=30).select(ctx)
    assert [c[0] for c in calls] == [8, 8]  # candidates, then targets, with the same T
    assert calls[0][1] is None  # the candidates (ctx.candidates, cached)
    targets = calls[1][1]
    assert len(targets) == 30 and len(np.unique(targets)) == 30
    assert np.isin(targets, ctx.pool.unlabeled_indices).all() and not np.isin(targets, LABELED).any()
    assert not np.isin(targets, SUBSET).all()  # the pool, not only the candidate subset


def test_more_targets_than_unlabeled_inputs_takes_the_whole_unlabeled_pool(monkeypatch):
    for n_target_inputs in (10_000, None):
        ctx = _context()
        calls = _spy_posterior_probs(ctx, monkeypatch)
        EPIG(n_samples=4, n_target_inputs=n_target_inputs).score(ctx)
        assert np.array_equal(calls[1][1], ctx.pool.unlabeled_indices)


def test_candidates_and_targets_share_the_mc_dropout_functions(monkeypatch):
    ctx = _context(seed=2)
    calls = _spy_posterior_probs(ctx, monkeypatch)
    score = EPIG(n_samples=8, n_target_inputs=25).score(ctx)
    (_, _, probs_pool), (_, targets, probs_targ) = calls
    # a target that is also a candidate gets the very same [T, C] predictions: pass t is one function.
    rows = np.searchsorted(ctx.candidates, targets)
    assert np.array_equal(ctx.candidates[rows], targets)
    assert torch.equal(probs_targ, probs_pool[torch.as_tensor(rows)])
    assert probs_pool.shape == (len(ctx.candidates), 8, N_CLASSES)
    torch.testing.assert_close(score, epig_from_probs(probs_pool, probs_targ), rtol=0, atol=0)


class _TwoFeatureNet(ALNet):
    """x [B, 2] -> dropout(p = 0.5) -> logit_0 - logit_1 = 20 (x'_0 + x'_1 - 1), x' = the dropped-out x.

    An input [1, 0] is class 0 when the function keeps feature 0 and class 1 when it drops it; [0, 1] likewise
    with feature 1. Both are maximally uncertain (BALD ~= ln 2) but depend on different dropout units.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.feature_dim, self.num_classes = 2, 2
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[20.0, 20.0], [0.0, 0.0]]))
            self.head.bias.copy_(torch.tensor([-20.0, 0.0]))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.dropout(z)


def _two_feature_context(seed: int) -> SelectionContext:
    """Inputs 0..19 = [1, 0] (feature 0), 20..29 = [0, 1] (feature 1); 21..29 labeled, so the unlabeled
    pool (the targets) is twenty feature-0 inputs and input 20. Candidates: input 0 and input 20."""
    x = torch.cat([torch.tensor([[1.0, 0.0]]).expand(20, 2), torch.tensor([[0.0, 1.0]]).expand(10, 2)])
    ds = ArrayDataset("two_features", x, torch.zeros(30, dtype=torch.long), x[:2], torch.zeros(2).long(), 2)
    data = ALDataModule(ds, eval_batch_size=8)
    pool = ActivePool(data.pool_indices, size=30)
    pool.label(np.arange(21, 30), cycle=0)
    return SelectionContext(
        _TwoFeatureNet(), data, pool, 1, 1, np.random.default_rng(seed), candidates=np.array([0, 20])
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_candidate_sharing_the_targets_feature_beats_an_equally_uncertain_unrelated_one(seed):
    strategy = EPIG(n_samples=200, n_target_inputs=None)
    ctx = _two_feature_context(seed)
    uncertainty = bald(ctx.mc_probs(200))
    assert (uncertainty > 0.65).all() and abs(uncertainty[0] - uncertainty[1]) < 0.03  # equally uncertain
    score = strategy.score(ctx)
    # input 0 tells about the 20 feature-0 targets (~20/21 ln 2); input 20 only about itself (~1/21 ln 2).
    assert score[0] > 0.6 and score[1] < 0.1
    assert strategy.select(_two_feature_context(seed)).tolist() == [0]
    # the ranking needs shared functions: with targets scored under other dropout masks, it vanishes.
    other = _two_feature_context(seed + 100)
    unshared = epig_from_probs(ctx.mc_probs(200), other.mc_probs(200, strategy.target_indices(other)))
    assert unshared[0] < 0.05


def test_refuses_a_model_without_dropout_in_one_line():
    ctx = _context()
    for m in ctx.model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    with pytest.raises(ALBenchError, match="dropout") as err:
        EPIG(n_samples=4).select(ctx)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs", [{"n_samples": 0}, {"n_target_inputs": 0}])
def test_bad_options(kwargs):
    with pytest.raises(ALBenchError, match="EPIG"):
        EPIG(**kwargs)


def test_empty_unlabeled_pool_is_refused():
    ctx = _context()
    ctx.pool.label(ctx.pool.unlabeled_indices, cycle=1)
    with pytest.raises(ALBenchError, match="unlabeled pool is empty"):
        EPIG().target_indices(ctx)


def test_config_instantiates():
    cfg = OmegaConf.load(CONFIGS / "epig.yaml")
    assert cfg.pop("name") == "epig"
    strategy = instantiate(cfg)
    assert isinstance(strategy, EPIG) and strategy.needs_mc_dropout
    assert (strategy.n_samples, strategy.n_target_inputs) == (20, 100)
    assert len(np.unique(strategy.select(_context()))) == 5


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path):
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", "strategy=epig", "budget.cycles=2", f"paths.results_dir={tmp_path}",
         "variant="],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    curve = pd.read_csv(tmp_path / "digits" / "mlp" / "epig" / "seed=0" / "curve.csv")
    assert curve["n_labeled"].tolist() == [20, 30, 40]
