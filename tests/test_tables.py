"""Paper tables (scripts/table.py): every table's smoke plan composes and instantiates (dataset from the tiny
real-format files, model, strategy, optimizer and scheduler), the full plans carry the protocols' settings,
and one table's smoke runs end to end (and fails when a run fails)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import hydra.utils
import pytest
import torch
from omegaconf import OmegaConf

from al_bench.build import build_dataset, build_model, build_strategy
from tests.conftest import ROOT, compose_config


def _load_table_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("al_bench_table_script", ROOT / "scripts" / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


table_script = _load_table_script()
TABLE_NAMES = sorted(table_script.TABLES)
_ORIGINAL_TABLES = dict(table_script.TABLES)


def test_every_table_has_a_make_target_and_is_in_the_smoke_step():
    makefile = (ROOT / "Makefile").read_text()
    for name in TABLE_NAMES:
        target = name if name.startswith("suite-") else f"table-{name}"
        assert f" {target}:" in makefile or f" {target} " in makefile or f"\n{target}:" in makefile, target
    smoke_list = next(line for line in makefile.splitlines() if line.startswith("TABLES :="))
    assert sorted(smoke_list.split(":=", 1)[1].split()) == TABLE_NAMES, "make smoke-tables runs every table"
    assert "make smoke-tables" in (ROOT / ".ci" / "run").read_text()
    assert {"batchbald", "suite-fmnist", "suite-digits", "dbal", "badge", "ji"} <= set(TABLE_NAMES)


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_smoke_plan_composes_and_instantiates(tmp_path: Path, name: str) -> None:
    table, runs_dir, _, commands = table_script.smoke_plan(name, tmp_path)
    planned: list[tuple[str, str]] = []
    datasets: dict[str, object] = {}
    for argv in commands:
        assert "hydra/launcher=basic" in argv and "seed=0" in argv
        for overrides in table_script.single_runs(argv):
            cfg = compose_config(overrides, tmp_path)
            OmegaConf.resolve(cfg)
            snapshot = cfg.strategy.get("posterior") == "snapshot"  # an optimizer step per snapshot (2)
            assert (cfg.budget.cycles, cfg.trainer.max_epochs) == (1, 2 if snapshot else 1)
            key = OmegaConf.to_yaml(cfg.dataset)
            if key not in datasets:  # the tiny files the smoke wrote, read by the real loader
                datasets[key] = build_dataset(cfg)
            ds = datasets[key]
            assert ds.n_train >= cfg.budget.init_size + cfg.budget.query_size + cfg.dataset.get("val_size", 0)
            net = build_model(cfg, ds.in_shape, ds.num_classes)
            build_strategy(cfg)
            optimizer = hydra.utils.instantiate(cfg.trainer.optimizer)(list(net.parameters()))
            if cfg.trainer.get("scheduler"):
                hydra.utils.instantiate(cfg.trainer.scheduler)(optimizer)
            planned.append((str(Path(cfg.paths.results_dir).relative_to(runs_dir.parent)), cfg.strategy.name))
    sweeps = [str(Path("runs") / s) if s else "runs" for s in table.sweeps]
    expected = sorted((sweep, strategy) for sweep in sweeps for strategy in table.strategies)
    assert sorted(planned) == expected, "every sweep x strategy exactly once"


def _full_plan_config(tmp_path: Path, name: str, strategy: str, sweep: str = ""):
    """The config of one run of the full table (what `make table-NAME` runs), composed without running."""
    table = table_script.TABLES[name]
    runs_dir = tmp_path / "runs"
    for argv in table_script.sweep_commands(table, runs_dir, "joblib", 2):
        results = next(o for o in argv if o.startswith("paths.results_dir=")).split("=", 1)[1]
        if Path(results) == (runs_dir / sweep if sweep else runs_dir):
            for overrides in table_script.single_runs(argv):
                if f"strategy={strategy}" in overrides:
                    return compose_config(overrides, tmp_path)
    raise AssertionError(f"{name}: no run of {strategy} in sweep {sweep!r}")


def test_full_plans_carry_the_protocols(tmp_path: Path) -> None:
    badge = _full_plan_config(tmp_path, "badge", "badge", "B1000")
    assert (
        badge.trainer.optimizer._target_ == "torch.optim.Adam" and "momentum" not in badge.trainer.optimizer
    )
    assert (badge.budget.query_size, badge.budget.cycles, badge.budget.name) == (1000, 10, "badge_B1000")
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(hydra.utils.instantiate(badge.trainer.optimizer)(params), torch.optim.Adam)

    bald = _full_plan_config(tmp_path, "ji", "bald")
    assert (bald.model.dropout, bald.strategy.n_samples, bald.budget.cycles) == (0.3, 25, 9)
    assert _full_plan_config(tmp_path, "ji", "entropy").model.dropout == 0.0

    dbal = _full_plan_config(tmp_path, "dbal", "mean_std")
    assert (dbal.strategy.n_samples, dbal.budget.pool_subset, dbal.trainer.l2_over_n) == (100, 2000, 3.5)
    assert list(dbal.trainer.l2_params) == ["dense.1.weight"]
    assert "n_samples" not in _full_plan_config(tmp_path, "dbal", "random").strategy

    assert _full_plan_config(tmp_path, "isal", "isal").strategy.params == "weights"

    mnist = _full_plan_config(tmp_path, "batchbald", "batchbald", "mnist")
    rmnist = _full_plan_config(tmp_path, "batchbald", "bald", "rmnist")
    assert (mnist.strategy.n_samples, mnist.trainer.eval_mc_samples, mnist.dataset.val_size) == (
        100,
        100,
        1024,
    )
    assert (rmnist.strategy.n_samples, rmnist.trainer.eval_mc_samples, rmnist.dataset.val_size) == (
        10,
        10,
        3072,
    )
    assert (rmnist.dataset.repeat, rmnist.dataset.repeat_noise_std, rmnist.trainer.max_epochs) == (3, 0.1, 40)
    assert mnist.budget.init_size + mnist.budget.cycles * mnist.budget.query_size == 300
    assert mnist.budget.name != rmnist.budget.name, "the report keeps MNIST and RMNIST apart"

    fmnist = _full_plan_config(tmp_path, "suite-fmnist", "vaal")
    assert (fmnist.strategy.epochs, fmnist.strategy.width, fmnist.dataset.name) == (2, 16, "fashion_mnist")


def _has_key(node: dict, dotted: str) -> bool:
    """Whether the nested yaml mapping ``node`` has the dotted key (``posterior_options.members``)."""
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("smoke", [False, True])
def test_strategy_options_are_force_added_and_every_strategy_of_the_group_has_them(tmp_path, smoke):
    """Hydra checks a multirun's overrides against the experiment's default strategy (digits_suite: entropy,
    which has no n_samples): a group's strategy options are force-added (++), and only to strategies that
    have them."""
    import yaml

    table = table_script.TABLES["suite-digits"]
    plan = {"": ["paths.data_dir=x"]} if smoke else None
    commands = table_script.sweep_commands(table, tmp_path, "basic", 1, smoke=plan)
    grouped = set()
    for argv in commands:
        strategies = next(o for o in argv if o.startswith("strategy=")).split("=", 1)[1].split(",")
        grouped.update(strategies)
        options = [o for o in argv if o.lstrip("+").startswith("strategy.")]
        assert all(o.startswith("++") for o in options), argv
        for strategy in strategies:
            keys = yaml.safe_load((ROOT / "configs" / "strategy" / f"{strategy}.yaml").read_text())
            assert all(_has_key(keys, o[2:].split("=")[0].removeprefix("strategy.")) for o in options), (
                strategy,
                argv,
            )
    assert grouped == set(table.strategies)
    if smoke:  # the MC strategies share one command, shrunk to 3 passes
        mc = {"bald", "mc_entropy", "mean_std", "variation_ratio"}
        groups = [
            set(next(o for o in argv if o.startswith("strategy=")).split("=", 1)[1].split(","))
            for argv in commands
        ]
        assert any(mc <= group for group in groups)


def test_merge_overrides_last_value_wins_in_first_place() -> None:
    merged = table_script.merge_overrides(["a=1", "b=2"], ["a=3", "c=4"])
    assert merged == ["a=3", "b=2", "c=4"]


@pytest.mark.slow
def test_smoke_end_to_end_and_failure_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dbal-digits in smoke mode: every strategy runs one cycle, the report and thresholds.md are written;
    the same smoke exits 1 when a run fails."""
    work = tmp_path / "ok"
    assert table_script.main(["dbal-digits", "--smoke", "--work", str(work)]) == 0
    out = work / "results" / "dbal-digits"
    assert len(list((out / "runs").rglob("curve.csv"))) == 5
    thresholds = (out / "thresholds.md").read_text()
    assert (
        "labels to 90% (25 / 50 / 75%)" in thresholds and "configs/experiment/dbal_digits.yaml" in thresholds
    )
    assert (out / "summary.md").exists()

    import al_bench.loop as loop

    def broken(*args, **kwargs):
        raise RuntimeError("a run that crashes")

    monkeypatch.setattr(loop, "run_cycle", broken)
    assert table_script.main(["dbal-digits", "--smoke", "--work", str(tmp_path / "broken")]) == 1


def test_strategies_option_restricts_the_tables_and_names_the_valid_ones(monkeypatch, capsys) -> None:
    ran: dict[str, list[str]] = {}
    monkeypatch.setattr(table_script, "run_table", lambda name, args: ran.setdefault(name, []) or [])
    monkeypatch.setattr(table_script, "TABLES", dict(table_script.TABLES))  # main narrows the tables
    assert table_script.main(["posterior-grid", "dbal-digits", "--strategies", "bald,random"]) == 0
    assert sorted(ran) == ["dbal-digits", "posterior-grid"]
    assert table_script.TABLES["posterior-grid"].strategies == ["bald"]
    assert table_script.TABLES["dbal-digits"].strategies == ["random", "bald"]
    ran.clear()
    monkeypatch.setattr(table_script, "TABLES", dict(_ORIGINAL_TABLES))
    assert table_script.main(["svp", "dbal-digits", "--strategies", "random"]) == 0
    assert sorted(ran) == ["dbal-digits"], "a table left without strategies is skipped"
    monkeypatch.setattr(table_script, "TABLES", dict(_ORIGINAL_TABLES))
    with pytest.raises(SystemExit):
        table_script.main(["svp", "--strategies", "entropy,nope"])
    err = capsys.readouterr().err
    assert "nope not in svp; valid: badge, entropy, vote_entropy" in err
