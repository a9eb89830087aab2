"""Scenarios through the real loop: open-set queries are charged and never trained on, training and the
curve see the noisy oracle, the imbalanced initial set comes from the long-tailed pool, budgets are checked
against the scenario's pool, a resumed run equals the uninterrupted one, and every strategy runs under every
scenario (the cross product is slow; a fast subset runs by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import al_bench.loop as loop
from al_bench.build import build_dataset
from al_bench.errors import BudgetError
from al_bench.loop import run
from al_bench.scenarios import OOD, ScenarioPool, build_scenario
from tests.conftest import config_names
from tests.core.test_strategy_contract import STRATEGY_SPEED, _extra

#: the non-default scenarios at test size (open set: 3 of TINY's 4 classes known, so RALIF's tau=2 < C; all
#: 50 rows of the fourth class join the 150 known ones)
SCENARIOS = {
    "imbalanced": ["scenario=imbalanced"],
    "label_noise": ["scenario=label_noise", "scenario.eta=0.3"],
    "open_set": ["scenario=open_set", "scenario.known_fraction=0.75", "scenario.ood_fraction=0.25"],
}
FAST_STRATEGIES = ("entropy", "badge")
TIMING = ["train_s", "select_s", "eval_s"]


def scenario_of(cfg) -> ScenarioPool:
    return build_scenario(cfg).build(build_dataset(cfg), int(cfg.seed))


def record_training(monkeypatch) -> list[np.ndarray]:
    """Every call of train_model in the loop appends the global indices it trained on."""
    calls: list[np.ndarray] = []
    real = loop.train_model

    def spy(cfg, net, data, indices, *args, **kwargs):
        calls.append(np.asarray(indices).copy())
        return real(cfg, net, data, indices, *args, **kwargs)

    monkeypatch.setattr(loop, "train_model", spy)
    return calls


def test_open_set_queries_are_charged_and_never_trained_on(make_cfg, monkeypatch):
    cfg = make_cfg(
        *SCENARIOS["open_set"], "strategy=entropy", "budget.init_balanced=false", "budget.init_size=20"
    )
    trained = record_training(monkeypatch)
    result = run(cfg)
    answers = scenario_of(cfg).answers
    curve, selected = result.curve, pd.read_csv(result.run_dir / "selected.csv")
    assert len(trained) == 3 and all((answers[idx] != OOD).all() for idx in trained), "never trained on"
    for row in curve.itertuples():
        bought = selected[selected.cycle <= row.cycle]["index"].to_numpy()
        assert row.n_labeled == len(bought), "an out-of-distribution answer costs one label"
        assert row.n_ood == int((answers[bought] == OOD).sum())
        assert len(trained[row.cycle]) == row.n_labeled - row.n_ood, "the rest is the training set"
        assert sum(int(v) for v in row.labeled_hist.split("|")) == row.n_labeled - row.n_ood
    assert curve["n_ood"].iloc[0] > 0, "the random initial set bought some (25% of the pool)"
    assert curve["n_ood"].is_monotonic_increasing and curve["scenario"].eq("open_set").all()


def test_label_noise_training_and_curve_see_the_oracle(make_cfg, monkeypatch):
    cfg = make_cfg(*SCENARIOS["label_noise"], "strategy=random")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = loop.train_model

    def spy(cfg_, net, data, indices, *args, **kwargs):
        seen.append((np.asarray(indices).copy(), data.labels(indices).cpu().numpy()))
        return real(cfg_, net, data, indices, *args, **kwargs)

    monkeypatch.setattr(loop, "train_model", spy)
    result = run(cfg)
    scenario = scenario_of(cfg)
    assert all(np.array_equal(labels, scenario.answers[idx]) for idx, labels in seen), "the bought labels"
    selected = pd.read_csv(result.run_dir / "selected.csv")
    for row in result.curve.itertuples():
        bought = selected[selected.cycle <= row.cycle]["index"].to_numpy()
        assert row.n_noisy == int((scenario.answers[bought] != scenario.truth[bought]).sum())
    assert result.curve["n_noisy"].iloc[-1] > 0, "eta = 0.3 over 16 labels bought some wrong ones"


def test_imbalanced_initial_set_comes_from_the_long_tailed_pool(make_cfg):
    cfg = make_cfg("scenario=imbalanced", "scenario.rho=50", "budget.cycles=1")  # counts 50, 13, 3, 1
    result = run(cfg)
    rows = scenario_of(cfg).rows
    selected = pd.read_csv(result.run_dir / "selected.csv")
    assert np.isin(selected["index"], rows).all()
    hist = [int(v) for v in result.curve["labeled_hist"].iloc[0].split("|")]
    assert hist[3] == 1 and sorted(hist[:3]) == [2, 2, 3], (
        "2 per class; the 1-sample class leaves 1 to another"
    )


def test_budget_beyond_the_scenarios_pool_is_refused_before_training(make_cfg, monkeypatch):
    cfg = make_cfg("scenario=imbalanced", "scenario.rho=50", "budget.cycles=20")  # 88 labels, a 67-row pool
    monkeypatch.setattr(loop, "train_model", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(BudgetError) as info:
        run(cfg)
    assert "pool has only 67 samples under scenario=imbalanced: use budget.cycles<=14" in str(info.value)


@pytest.mark.parametrize(
    ("name", "from_csv"), [(name, False) for name in SCENARIOS] + [("open_set", True)], ids=str
)
def test_resumed_run_equals_the_uninterrupted_one(make_cfg, tmp_path, monkeypatch, name, from_csv):
    """From state.pt, and (open set) with ``recover=true`` from selected.csv after state.pt was lost: the
    out-of-distribution answers follow from the scenario, so the pool is rebuilt exactly."""
    common = [*SCENARIOS[name], "strategy=entropy", "budget.cycles=3", f"recover={str(from_csv).lower()}"]
    reference = run(make_cfg(*common, f"paths.run_dir={tmp_path}/ref"))
    real_run_cycle = loop.run_cycle

    def crash_in_cycle_2(cfg, data, pool, strategy, cycle, net, *rest):
        if cycle == 2:
            raise KeyboardInterrupt("simulated kill")
        return real_run_cycle(cfg, data, pool, strategy, cycle, net, *rest)

    cfg = make_cfg(*common, f"paths.run_dir={tmp_path}/crash")
    with monkeypatch.context() as m:
        m.setattr(loop, "run_cycle", crash_in_cycle_2)
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
    if from_csv:
        (Path(cfg.paths.run_dir) / "state.pt").write_bytes(b"lost")
    resumed = run(cfg)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns=TIMING), reference.curve.drop(columns=TIMING))
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed.run_dir / "selected.csv"), pd.read_csv(reference.run_dir / "selected.csv")
    )
    assert resumed.curve["scenario"].eq(name).all()
    counted = {"open_set": "n_ood", "label_noise": "n_noisy"}.get(name)
    assert counted is None or resumed.curve[counted].iloc[-1] > 0, "the case the resume must get right"


def _cross(names: list[str]) -> list:
    return [
        pytest.param(s, n, marks=() if n in FAST_STRATEGIES else pytest.mark.slow, id=f"{s}-{n}")
        for s in SCENARIOS
        for n in names
    ]


@pytest.mark.parametrize(("scenario", "name"), _cross(config_names("strategy")))
def test_every_strategy_runs_under_every_scenario(make_cfg, scenario, name):
    cfg = make_cfg(*SCENARIOS[scenario], f"strategy={name}", *STRATEGY_SPEED, *_extra(name))
    result = run(cfg)
    world = scenario_of(cfg)
    val, pool = world.split(int(cfg.dataset.val_size), int(cfg.dataset.val_seed))
    selected = pd.read_csv(result.run_dir / "selected.csv")
    initial = selected[selected.cycle == 0]["index"].to_numpy()
    new = selected[selected.cycle == 1]["index"].to_numpy()
    assert len(initial) == cfg.budget.init_size and len(new) == cfg.budget.query_size
    assert len(np.unique(new)) == len(new) and not np.isin(new, initial).any()
    assert np.isin(selected["index"], pool).all(), "only the scenario's pool, never validation or other rows"
    assert len(result.curve) == 2 and result.curve["scenario"].eq(scenario).all()
    assert result.curve["balanced_acc"].between(0, 1).all()
