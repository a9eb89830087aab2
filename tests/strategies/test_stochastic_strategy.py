"""StochasticAcquisition: the base built from its yaml, everything forwarded to it, the batch drawn with
ctx.rng; through the loop (label dispersion's callbacks) and the CLI (margin, bald)."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import al_bench.strategies.stochastic as stochastic
from al_bench.build import build_strategy
from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.models.mlp import MLP
from al_bench.strategies.base import ScoreStrategy, Strategy, top_k
from al_bench.strategies.stochastic import StochasticAcquisition, score_strategy_names
from tests.conftest import PYTHON, ROOT


class _FixedScores(ScoreStrategy):
    """A base whose scores are given."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=float)

    def score(self, ctx) -> np.ndarray:
        return self.scores


class _Stateful(_FixedScores):
    def __init__(self, scores: np.ndarray) -> None:
        super().__init__(scores)
        self.seen = 0

    def state_dict(self) -> dict:
        return {"seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.seen = state["seen"]


def _with_base(monkeypatch, base: ScoreStrategy, **kw) -> StochasticAcquisition:
    monkeypatch.setattr(stochastic, "build_base", lambda name, options=None: base)
    return StochasticAcquisition(base="fixed", **kw)


def _ctx(n: int, budget: int, seed: int = 0) -> SimpleNamespace:
    """What select reads of a SelectionContext: global candidates [n], budget, a seeded rng."""
    return SimpleNamespace(
        candidates=np.arange(1000, 1000 + 2 * n, 2), budget=budget, rng=np.random.default_rng(seed)
    )


# ---- building the base -----------------------------------------------------------------------------------
def test_unknown_or_non_score_base_lists_the_valid_ones():
    valid = score_strategy_names()
    assert {"bald", "entropy", "margin", "label_dispersion"} <= set(valid)
    assert not {"badge", "coreset", "random", "stochastic"} & set(valid)
    for name, what in (("nope", "is unknown"), ("badge", "is not a score-based strategy")):
        with pytest.raises(ALBenchError) as e:
            StochasticAcquisition(base=name)
        message = str(e.value)
        assert what in message and "\n" not in message
        assert message.endswith(f"valid bases: {', '.join(valid)}")


def test_base_is_built_from_its_yaml_with_base_options():
    strategy = StochasticAcquisition(base="bald", base_options={"n_samples": 5})
    assert type(strategy.base).__name__ == "BALD" and strategy.base.n_samples == 5
    assert StochasticAcquisition(base="bald").base.n_samples == 20  # configs/strategy/bald.yaml
    with pytest.raises(ALBenchError, match="could not build base bald .*unexpected keyword argument 'foo'"):
        StochasticAcquisition(base="bald", base_options={"foo": 1})
    with pytest.raises(ALBenchError, match="n_samples must be >= 1"):  # the base's own one-line error
        StochasticAcquisition(base="bald", base_options={"n_samples": 0})


def test_mode_and_beta_are_checked():
    with pytest.raises(ALBenchError, match="unknown mode 'gibbs'; valid: softmax, power, softrank"):
        StochasticAcquisition(base="entropy", mode="gibbs")
    for beta in (-1.0, float("inf")):
        with pytest.raises(ALBenchError, match="beta must be a finite number >= 0"):
            StochasticAcquisition(base="entropy", beta=beta)


def test_composed_config_builds_with_overrides(make_cfg):
    cfg = make_cfg(
        "strategy=stochastic",
        "strategy.base=mc_entropy",
        "strategy.mode=softmax",
        "strategy.beta=2",
        "+strategy.base_options.n_samples=7",
    )
    strategy = build_strategy(cfg)
    assert isinstance(strategy, StochasticAcquisition)
    assert (strategy.mode, strategy.beta, strategy.base.n_samples) == ("softmax", 2.0, 7)
    assert type(strategy.base).__name__ == "MCEntropy"
    default = build_strategy(make_cfg("strategy=stochastic"))
    assert (default.base_name, default.mode, default.beta) == ("bald", "power", 1.0)


# ---- forwarding ------------------------------------------------------------------------------------------
def test_forwards_needs_flags():
    assert StochasticAcquisition(base="bald").needs_mc_dropout
    assert not StochasticAcquisition(base="margin").needs_mc_dropout
    assert StochasticAcquisition(base="isal").needs_validation
    assert not StochasticAcquisition(base="entropy").needs_validation


def test_forwards_training_callbacks_and_auxiliary_module():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 1, 4, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    data = ALDataModule(ArrayDataset("tiny", x, y, x[:8], y[:8], num_classes=3))
    candidates = np.arange(10, 30)
    strategy = StochasticAcquisition(base="label_dispersion", base_options={"every_n_epochs": 2})
    (callback,) = strategy.training_callbacks(data, candidates, cycle=1)
    assert isinstance(callback, PoolPredictionRecorder)
    assert callback.every_n_epochs == 2 and np.array_equal(callback.indices, candidates)
    assert StochasticAcquisition(base="margin").training_callbacks(data, candidates, 1) == []
    assert StochasticAcquisition(base="margin").auxiliary_module(None) is None
    ll4al = StochasticAcquisition(base="ll4al")
    assert ll4al.training_callbacks(data, candidates, 1) == []  # LL4AL reads the input shape here
    module = ll4al.auxiliary_module(MLP((1, 4, 4), 3, hidden=(16, 8)))
    assert isinstance(module, torch.nn.Module) and module is ll4al.base._module
    assert StochasticAcquisition(base="margin").pseudo_labels() is None


def test_state_is_the_base_state(monkeypatch):
    stateless = StochasticAcquisition(base="margin")
    assert type(stateless).state_dict is Strategy.state_dict, "stays recoverable from the CSVs"
    base = _Stateful(np.ones(4))
    strategy = _with_base(monkeypatch, base)
    assert isinstance(strategy, StochasticAcquisition)
    base.seen = 3
    assert strategy.state_dict() == {"seen": 3}
    strategy.load_state_dict({"seen": 9})
    assert base.seen == 9


# ---- selection -------------------------------------------------------------------------------------------
def test_select_draws_global_indices_deterministically_per_seed(monkeypatch):
    scores = np.random.default_rng(0).random(50)
    strategy = _with_base(monkeypatch, _FixedScores(scores))
    a = strategy.select(_ctx(50, 10, seed=3))
    assert a.dtype == np.int64 and len(np.unique(a)) == 10
    assert np.isin(a, _ctx(50, 10).candidates).all()
    np.testing.assert_array_equal(a, strategy.select(_ctx(50, 10, seed=3)))
    assert not np.array_equal(a, strategy.select(_ctx(50, 10, seed=4)))


def test_large_beta_softmax_is_the_base_top_k(monkeypatch):
    scores = np.random.default_rng(1).permutation(30).astype(float)
    strategy = _with_base(monkeypatch, _FixedScores(scores), mode="softmax", beta=50.0)
    for seed in range(10):
        ctx = _ctx(30, 6, seed)
        expected = ctx.candidates[top_k(scores, 6, np.random.default_rng(0))]
        np.testing.assert_array_equal(np.sort(strategy.select(ctx)), np.sort(expected))


def test_beta_zero_is_uniform_over_the_candidates(monkeypatch):
    scores = np.array([0.0, 0.0, 0.0, 1.0, 100.0])
    strategy = _with_base(monkeypatch, _FixedScores(scores), mode="power", beta=0.0)
    firsts = [int(strategy.select(_ctx(5, 1, seed))[0]) for seed in range(2_000)]
    counts = np.unique(firsts, return_counts=True)[1]
    assert len(counts) == 5 and counts.min() > 300  # expected 400 each


def test_negative_scores_with_power_are_one_line(monkeypatch):
    strategy = _with_base(monkeypatch, _FixedScores(np.array([-0.2, -0.9, 0.0])))
    with pytest.raises(ALBenchError) as e:
        strategy.select(_ctx(3, 1))
    message = str(e.value)
    assert "mode power needs scores >= 0" in message and "strategy.mode=softmax" in message
    assert "\n" not in message
    for mode in ("softmax", "softrank"):
        assert (
            len(
                _with_base(monkeypatch, _FixedScores(np.array([-0.2, -0.9, 0.0])), mode=mode).select(
                    _ctx(3, 2)
                )
            )
            == 2
        )


def test_margin_with_power_stops_the_run_with_one_line(make_cfg, tmp_path):
    cfg = make_cfg("strategy=stochastic", "strategy.base=margin", "budget.cycles=1")
    with pytest.raises(ALBenchError, match=r"base margin: mode power needs scores >= 0"):
        run(cfg)


def test_label_dispersion_base_through_the_loop(make_cfg):
    """The base's pool-prediction recorder runs during training and its history reaches select()."""
    cfg = make_cfg(
        "strategy=stochastic", "strategy.base=label_dispersion", "strategy.mode=softrank", "budget.cycles=1"
    )
    result = run(cfg)
    selected = pd.read_csv(result.run_dir / "selected.csv")
    assert (selected.cycle == 1).sum() == cfg.budget.query_size


# ---- CLI on the default digits ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [["strategy.base=margin", "strategy.mode=softrank"], ["strategy.base=bald"]],
    ids=["margin-softrank", "bald-power"],
)
def test_cli_run_on_digits(tmp_path, overrides):
    cmd = [PYTHON, "-m", "al_bench", "strategy=stochastic", *overrides, "budget.cycles=2"]
    cmd += [f"paths.results_dir={tmp_path}", "verbose=false", "variant="]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (curve_path,) = tmp_path.glob("digits/mlp/stochastic/seed=0/curve.csv")
    curve = pd.read_csv(curve_path)
    assert curve.n_labeled.tolist() == [20, 30, 40] and (curve.strategy == "stochastic").all()
