"""ISAL and RALIF on a tiny SelectionContext: budget unique candidates, determinism, errors, configs."""

from __future__ import annotations

import inspect

import hydra.utils
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from al_bench.data.base import ALDataModule
from al_bench.data.synthetic import make_synthetic
from al_bench.errors import ALBenchError
from al_bench.models.mlp import MLP
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.influence import ISAL, RALIF
from tests.conftest import CONFIGS


def _context(seed: int = 0, val_size: int = 30, budget: int = 6, num_classes: int = 10) -> SelectionContext:
    data = ALDataModule(
        make_synthetic(n_train=260, n_test=10, num_classes=num_classes, shape=(1, 4, 4), seed=0),
        eval_batch_size=64,
        val_size=val_size,
    )
    pool = ActivePool(data.pool_indices, size=260)
    pool.label(np.random.default_rng(0).choice(data.pool_indices, 50, replace=False), cycle=0)
    torch.manual_seed(0)
    model = MLP((1, 4, 4), num_classes, hidden=(16, 12), dropout=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y, _ = data.get_batch(torch.as_tensor(pool.labeled_indices))
    for _ in range(30):  # a few steps so that predictions are not uniform
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return SelectionContext(model, data, pool, budget, 0, np.random.default_rng(seed))


FAST = dict(steps=20, repeats=2)


def _check(picks: np.ndarray, ctx: SelectionContext) -> None:
    assert picks.dtype == np.int64 and len(picks) == ctx.budget
    assert len(np.unique(picks)) == ctx.budget
    assert np.isin(picks, ctx.candidates).all()


@pytest.mark.parametrize(
    "strategy",
    [
        ISAL(**FAST),
        ISAL(params="weights", hvp_batch_size=4, grad_batch_size=16, **FAST),
        RALIF(**FAST),
        RALIF(candidate_fraction=0.01, hvp_batch_size=16, **FAST),  # 1% < budget: widened; minibatch chains
    ],
    ids=["isal_last_layer", "isal_weights", "ralif", "ralif_small_fraction"],
)
def test_budget_unique_candidates_and_deterministic(strategy):
    ctx = _context()
    picks = strategy.select(ctx)
    _check(picks, ctx)
    np.testing.assert_array_equal(picks, strategy.select(_context()), err_msg="same seed -> same picks")
    assert ctx.model.training, "the model's mode is restored"


def test_isal_scores_are_minus_influence_and_closed_form_matches_torch_func():
    """The closed-form last-layer path equals the generic torch.func path on the head's parameters."""
    closed = ISAL(**FAST).score(_context())
    generic = ISAL(params=["head.weight", "head.bias"], **FAST).score(_context())
    torch.testing.assert_close(
        closed.float(), generic.float(), rtol=1e-3, atol=1e-3 * float(closed.abs().max())
    )
    assert closed.abs().max() > 0


def test_isal_picks_the_most_negative_influence():
    ctx = _context(budget=4)
    scores = ISAL(**FAST).score(_context(budget=4))
    picks = ISAL(**FAST).select(ctx)
    pos = np.searchsorted(ctx.candidates, picks)
    assert set(pos.tolist()) == set(torch.argsort(scores, descending=True)[:4].tolist())


def test_isal_needs_a_validation_split():
    assert ISAL.needs_validation
    with pytest.raises(ALBenchError, match="validation split"):
        ISAL(**FAST).select(_context(val_size=0))


def test_bad_options_are_user_errors():
    with pytest.raises(ALBenchError, match="unknown params"):
        ISAL(params="everything")
    with pytest.raises(ALBenchError):
        ISAL(scale=0.0)
    with pytest.raises(ALBenchError, match="no parameters named"):
        ISAL(params=["nope"], **FAST).select(_context())
    with pytest.raises(ALBenchError):
        RALIF(candidate_fraction=0.0)


def test_isal_divergent_lissa_is_a_user_error():
    with pytest.raises(ALBenchError, match="scale"):
        ISAL(scale=1e-3, damping=0.0, steps=200, repeats=1, hvp_batch_size=8).select(_context())


def test_ralif_warns_when_tau_excludes_every_class():
    ctx = _context(num_classes=4)
    with pytest.warns(RuntimeWarning, match="tau"):
        picks = RALIF(**FAST).select(ctx)
    _check(picks, ctx)


def test_ralif_candidates_are_the_lowest_expected_influence():
    ctx = _context(budget=3)
    strategy = RALIF(candidate_fraction=0.05, **FAST)
    e = strategy.expected_influence(_context(budget=3))
    lowest = set(torch.argsort(e)[: int(len(e) * 0.05)].tolist())
    pos = np.searchsorted(ctx.candidates, strategy.select(ctx))
    assert set(pos.tolist()) <= lowest
    assert pos[0] == int(torch.argmin(e)), "the first pick is the lowest E"


@pytest.mark.parametrize("name", ["isal", "ralif"])
def test_config_lists_every_kwarg_with_its_default(name):
    cfg = OmegaConf.load(CONFIGS / "strategy" / f"{name}.yaml")
    assert cfg.pop("name") == name
    strategy = hydra.utils.instantiate(cfg)
    cls = type(strategy)
    params = inspect.signature(cls.__init__).parameters
    assert set(cfg) - {"_target_"} == set(params) - {"self"}
    for key, p in params.items():
        if key != "self":
            assert cfg[key] == p.default, key
