"""Selection via proxy (``proxy=...``, al_bench.proxy): the proxy selects, the target trains on its picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

import al_bench.loop as loop
import al_bench.proxy as proxy
from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.cli import apply_variant, command_line_variant
from al_bench.errors import ALBenchError, ConfigMismatchError
from al_bench.models.mlp import MLP
from al_bench.proxy import proxy_config
from al_bench.strategies.uncertainty import EntropySampling
from tests.conftest import CONFIGS, config_names

TIMES = ["train_s", "select_s", "eval_s", "proxy_train_s"]


class TrainLog:
    """Records every fit of the loop and of the proxy: (purpose, cycle, net, sorted indices, callbacks,
    aux, epochs trained)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict] = []
        real = loop.train_model

        def recording(cfg, net, data, indices, seed, cycle, callbacks=None, aux=None, purpose="train", **kw):
            module = real(cfg, net, data, indices, seed, cycle, callbacks=callbacks, aux=aux, purpose=purpose,
                          **kw)  # fmt: skip
            self.calls.append({"purpose": purpose, "cycle": cycle, "net": net, "indices": np.sort(indices),
                               "callbacks": list(callbacks or []), "aux": aux,
                               "epochs": module.current_epoch})  # fmt: skip
            return module

        for module in (loop, proxy):
            monkeypatch.setattr(module, "train_model", recording)

    def of(self, purpose: str) -> list[dict]:
        return [c for c in self.calls if c["purpose"] == purpose]


class Recording(EntropySampling):
    """Entropy that remembers each selection's model and picks."""

    def __init__(self) -> None:
        self.seen: list[tuple[object, np.ndarray]] = []

    def select(self, ctx):
        picked = super().select(ctx)
        self.seen.append((ctx.model, np.sort(picked)))
        return picked


class FlatOnly(MLP):
    """An MLP that builds for any input shape but only classifies flat [B, D] inputs."""

    def forward(self, x):
        if x.dim() != 2:
            raise RuntimeError(f"expected [B, D] inputs,\ngot {tuple(x.shape)}")
        return super().forward(x)


def test_target_trains_on_exactly_the_picks_of_the_proxy(make_cfg, monkeypatch):
    log, recorder = TrainLog(monkeypatch), Recording()
    monkeypatch.setattr(loop, "build_strategy", lambda cfg: recorder)
    result = loop.run(make_cfg("proxy=mlp", "budget.cycles=3"))
    targets, proxies = log.of("train"), log.of("proxy")
    assert [c["cycle"] for c in targets] == [0, 1, 2, 3] and [c["cycle"] for c in proxies] == [0, 1, 2]
    selected = pd.read_csv(result.run_dir / "selected.csv")
    for cycle, (model, picked) in enumerate(recorder.seen):
        assert model is proxies[cycle]["net"] and model is not targets[cycle]["net"], "the proxy selects"
        assert isinstance(model, MLP) and model.feature_dim == 64 and targets[cycle]["net"].feature_dim == 256
        np.testing.assert_array_equal(proxies[cycle]["indices"], targets[cycle]["indices"])  # same labels
        np.testing.assert_array_equal(np.sort(selected[selected.cycle == cycle + 1]["index"]), picked)
        new = np.setdiff1d(targets[cycle + 1]["indices"], targets[cycle]["indices"])
        np.testing.assert_array_equal(new, picked)  # the target's next training set = + the proxy's picks
    curve = result.curve
    assert curve["proxy_train_s"].notna().tolist() == [True, True, True, False]
    assert curve["proxy_test_acc"].iloc[:3].between(0, 1).all() and np.isnan(curve["proxy_test_acc"].iloc[3])


@pytest.mark.parametrize("name", config_names("proxy"))
def test_every_proxy_config_composes_and_runs(make_cfg, name):
    cfg = make_cfg(f"proxy={name}", "budget.cycles=1")
    assert cfg.proxy.name == name, f"configs/proxy/{name}.yaml must say name: {name}"
    curve = loop.run(cfg).curve
    assert curve["proxy_test_acc"].notna().tolist() == ([False, False] if name == "none" else [True, False])


def test_without_a_proxy_the_target_selects_and_the_proxy_columns_are_nan(make_cfg, monkeypatch):
    log, recorder = TrainLog(monkeypatch), Recording()
    monkeypatch.setattr(loop, "build_strategy", lambda cfg: recorder)
    curve = loop.run(make_cfg("budget.cycles=1")).curve
    assert not log.of("proxy") and recorder.seen[0][0] is log.of("train")[0]["net"]
    assert curve["proxy_train_s"].isna().all() and curve["proxy_test_acc"].isna().all()


def test_fewer_epochs_proxy_trains_a_quarter_of_the_epochs_of_the_same_architecture(make_cfg, monkeypatch):
    log = TrainLog(monkeypatch)
    curve = loop.run(make_cfg("proxy=fewer_epochs", "trainer.max_epochs=8", "budget.cycles=1")).curve
    (target, _), (proxy_fit,) = log.of("train"), log.of("proxy")
    assert [c["epochs"] for c in log.of("train")] == [8, 8] and proxy_fit["epochs"] == 2
    assert curve["epochs"].tolist() == [8, 8]
    assert type(proxy_fit["net"]) is type(target["net"])
    first = lambda net: next(net.parameters()).detach()  # noqa: E731
    assert not np.allclose(first(proxy_fit["net"]), first(target["net"])), "the proxy has its own init seed"


def test_proxy_config_merges_onto_the_target_recipe(make_cfg):
    assert proxy_config(make_cfg(tiny=False)) is None
    fewer = proxy_config(make_cfg("proxy=fewer_epochs", tiny=False))
    assert (
        fewer.trainer.max_epochs == 12
        and fewer.model.name == "mlp"
        and list(fewer.model.hidden) == [256, 256]
    )
    small = proxy_config(make_cfg("proxy=mlp", "trainer.warm_start=true", "+proxy.trainer.batch_size=64"))
    assert (
        list(small.model.hidden) == [64] and small.trainer.batch_size == 64 and small.trainer.max_epochs == 2
    )
    assert small.trainer.warm_start is False, "the proxy is retrained from scratch every cycle"
    lenet = proxy_config(make_cfg("proxy=fewer_epochs", "model=lenet", "trainer.max_epochs=3"))
    assert lenet.model.name == "lenet" and lenet.trainer.max_epochs == 1  # max(1, round(0.75))
    sgd = proxy_config(make_cfg("proxy=mlp", "+proxy.trainer.optimizer={_target_:torch.optim.SGD,lr:0.1}"))
    assert dict(sgd.trainer.optimizer) == {"_target_": "torch.optim.SGD", "lr": 0.1}, "replaced, not merged"


def test_same_seed_same_curve_with_a_proxy(make_cfg, tmp_path):
    common = ["proxy=mlp_fewer_epochs", "trainer.max_epochs=4"]
    runs = [loop.run(make_cfg(*common, f"paths.run_dir={tmp_path}/r{i}")) for i in range(2)]
    pd.testing.assert_frame_equal(*(r.curve.drop(columns=TIMES) for r in runs))
    pd.testing.assert_frame_equal(*(pd.read_csv(r.run_dir / "selected.csv") for r in runs))
    plain = loop.run(make_cfg("trainer.max_epochs=4", f"paths.run_dir={tmp_path}/plain"))
    assert not plain.curve["proxy_test_acc"].notna().any()


@pytest.mark.parametrize("warm", [False, True])
def test_resume_with_a_proxy_equals_the_uninterrupted_run(make_cfg, tmp_path, monkeypatch, warm):
    common = ["proxy=mlp", "budget.cycles=3", f"trainer.warm_start={str(warm).lower()}"]
    reference = loop.run(make_cfg(*common, f"paths.run_dir={tmp_path}/ref"))
    real = loop.run_cycle

    def crash_in_cycle_2(cfg, data, pool, strategy, cycle, net, *rest):
        if cycle == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(cfg, data, pool, strategy, cycle, net, *rest)

    monkeypatch.setattr(loop, "run_cycle", crash_in_cycle_2)
    cfg = make_cfg(*common, f"paths.run_dir={tmp_path}/crash")
    with pytest.raises(KeyboardInterrupt):
        loop.run(cfg)
    monkeypatch.setattr(loop, "run_cycle", real)
    resumed = loop.run(cfg)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns=TIMES), reference.curve.drop(columns=TIMES))
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed.run_dir / "selected.csv"), pd.read_csv(reference.run_dir / "selected.csv")
    )


STRATEGIES = {  # a score, BADGE, a committee, a Bayesian one, training callbacks, an auxiliary module
    "margin": [],
    "badge": [],
    "vote_entropy": ["strategy.committee_size=2"],
    "bald": [],
    "label_dispersion": [],
    "ll4al": [],
    "ceal": ["strategy.delta0=10.0", "budget.cycles=2"],  # pseudo-labels all other candidates for cycle 1
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_kind_of_strategy_selects_through_a_proxy(make_cfg, monkeypatch, name):
    log = TrainLog(monkeypatch)
    cfg = make_cfg(f"strategy={name}", "proxy=mlp_fewer_epochs", "trainer.max_epochs=4", "budget.cycles=1",
                   *STRATEGIES[name])  # fmt: skip
    result = loop.run(cfg)
    selected = pd.read_csv(result.run_dir / "selected.csv")
    new = selected[selected.cycle == 1]["index"].to_numpy()
    assert len(new) == cfg.budget.query_size == len(np.unique(new))
    proxy_fit, target = log.of("proxy")[0], log.of("train")[0]
    assert {c["epochs"] for c in log.of("proxy")} == {1} and {c["epochs"] for c in log.of("train")} == {4}
    assert not any(c["callbacks"] or c["aux"] for c in log.of("train")), "the target trains the plain recipe"
    if name == "label_dispersion":
        assert any(isinstance(cb, PoolPredictionRecorder) for cb in proxy_fit["callbacks"])
    if name == "ll4al":
        assert proxy_fit["aux"].branches[-1][0].in_features == 64, (
            "the loss module reads the proxy's features"
        )
    if name == "vote_entropy":
        (member,) = log.of("committee")
        assert member["net"].feature_dim == 64 and member["epochs"] == 1, "members use the proxy's config"
    if name == "ceal":
        proxy_fit, target = log.of("proxy")[1], log.of("train")[1]
        assert len(target["indices"]) > result.curve["n_labeled"].iloc[1], "pseudo-labels in the training set"
        np.testing.assert_array_equal(proxy_fit["indices"], target["indices"])


def test_mc_dropout_strategy_needs_dropout_in_the_proxy_not_the_target(make_cfg, monkeypatch):
    log = TrainLog(monkeypatch)
    loop.run(make_cfg("strategy=bald", "proxy=mlp", "model.dropout=0.0", "budget.cycles=1"))  # runs
    assert len(log.of("proxy")) == 1
    with pytest.raises(ALBenchError, match="proxy mlp's model mlp64 has no dropout"):
        loop.run(make_cfg("strategy=bald", "proxy=mlp", "proxy.model.dropout=0.0", "overwrite=true"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["proxy.epochs_fraction=0.5"], "proxy=none"),
        (["proxy=fewer_epochs", "proxy.epochs_fraction=1.5"], r"epochs_fraction must be a number in \(0"),
        (["proxy=fewer_epochs", "+proxy.trainer.max_epoch=3"], "proxy.trainer.max_epoch is not a trainer"),
        (["proxy=fewer_epochs", "+proxy.trainer.max_epochs=3"], "epochs_fraction or proxy.trainer.max_"),
        (["proxy=mlp", "+proxy.trainer.warm_start=true"], "retrained from scratch"),
        (["proxy=mlp", "+proxy.layers=2"], "unknown proxy option"),
        (["proxy=mlp", "proxy.model._target_=al_bench.models.nope.Nope"], "could not build model"),
        (["proxy=mlp", "+proxy.trainer.samples_per_epoch=-1"], "proxy mlp: trainer.samples_per_epoch"),
        (["proxy=fewer_epochs", f"proxy.model={{_target_:{__name__}.FlatOnly}}"], "cannot classify"),
        (["proxy=mlp", "+proxy.model.freeze=true"], "needs model.freeze=true"),
    ],
)  # fmt: skip
def test_bad_proxy_config_is_one_line_before_any_training(make_cfg, monkeypatch, overrides, message):
    log = TrainLog(monkeypatch)
    with pytest.raises(ALBenchError, match=message) as info:
        loop.run(make_cfg(*overrides))
    assert "\n" not in str(info.value) and not log.calls


def test_proxy_on_the_command_line_names_its_own_run_directory():
    GlobalHydra.instance().clear()
    dirs = {}
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            for overrides in ([], ["proxy=fewer_epochs"], ["proxy=mlp", "+proxy.trainer.batch_size=64"],
                              ["proxy=none"]):  # fmt: skip
                cfg = compose("config", overrides=["strategy=margin", *overrides], return_hydra_config=True)
                HydraConfig.instance().set_config(cfg)  # what @hydra.main sets for cli.main
                apply_variant(cfg, command_line_variant(cfg))
                dirs[",".join(overrides)] = Path(cfg.paths.run_dir)
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
    names = {k: d.parent.name for k, d in dirs.items()}
    assert names["proxy=fewer_epochs"] == "proxy=fewer_epochs" and names[""] == "margin"
    assert names["proxy=mlp,+proxy.trainer.batch_size=64"] == "proxy.trainer.batch_size=64,proxy=mlp"
    assert dirs[""] == dirs["proxy=none"], "the default proxy is no variant"
    assert len(set(dirs.values())) == 3


def test_a_proxied_run_never_resumes_a_plain_one(make_cfg):
    loop.run(make_cfg("budget.cycles=1"))
    with pytest.raises(ConfigMismatchError, match="proxy"):
        loop.run(make_cfg("budget.cycles=1", "proxy=fewer_epochs"))


@pytest.mark.slow
def test_report_reads_proxied_plain_and_old_curves_together(make_cfg, tmp_path):
    import subprocess

    from al_bench.report.aggregate import load_curves
    from tests.conftest import PYTHON, ROOT

    results = tmp_path / "results"
    for strategy, extra in (("entropy", ["proxy=mlp"]), ("random", []), ("margin", [])):
        loop.run(make_cfg(f"strategy={strategy}", *extra, "budget.cycles=1"))
    old = next(results.rglob("margin/seed=0/curve.csv"))
    pd.read_csv(old).drop(columns=["proxy_train_s", "proxy_test_acc"]).to_csv(old, index=False)  # older run
    frame = load_curves(results)
    assert frame.groupby("strategy")["proxy_test_acc"].apply(lambda s: s.notna().any()).to_dict() == {
        "entropy": True, "margin": False, "random": False,
    }  # fmt: skip
    report = subprocess.run([PYTHON, "-m", "al_bench.report", str(results)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
