"""User mistakes give one clear line and a non-zero exit, before any training, without a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from al_bench.errors import BudgetError, TrainingDivergedError
from al_bench.loop import run
from tests.conftest import PYTHON, ROOT, TINY


def cli(tmp_path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    flags = ["-m"] if multirun else []
    return subprocess.run(
        [PYTHON, "-m", "al_bench", *flags, *TINY, f"paths.results_dir={tmp_path}/results", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_unknown_strategy_lists_the_valid_ones(tmp_path):
    proc = cli(tmp_path, "strategy=does_not_exist")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "entropy" in proc.stderr and "margin" in proc.stderr and "random" in proc.stderr


def test_impossible_budget_is_one_line_before_training(tmp_path):
    proc = cli(tmp_path, "budget.cycles=100")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "budget.cycles<=" in lines[0], proc.stderr
    assert not (tmp_path / "results").exists(), "refused before anything was written"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("budget.cycles=1000", "budget.cycles<="),
        ("budget.init_size=0", "budget.init_size must be an integer >= 1"),
        ("budget.query_size=-3", "budget.query_size must be an integer >= 1"),
        ("budget.init_size=5000", "smaller budget.init_size"),
        ("budget.pool_subset=2", "budget.pool_subset must be null or an integer >= budget.query_size"),
    ],
)
def test_impossible_budget_messages(make_cfg, override, needle):
    cfg = make_cfg(override)
    with pytest.raises(BudgetError) as info:
        run(cfg)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not Path(cfg.paths.results_dir).exists(), "refused before anything was written"


def test_nan_loss_is_detected():
    from al_bench.models.mlp import MLP
    from al_bench.module import ALModule

    module = ALModule(MLP([4], 2, hidden=[8]), optimizer=lambda p: torch.optim.SGD(p, lr=1.0))
    module._loss_sum, module._correct, module._seen = torch.tensor(float("nan")), torch.tensor(0), 4
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        module.on_train_epoch_end()


def test_diverging_run_keeps_the_curve_so_far(tmp_path):
    proc = cli(tmp_path, "budget.cycles=3", "trainer.optimizer._target_=torch.optim.SGD",
               "trainer.optimizer.lr=1e30", "trainer.max_epochs=3")  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "training loss became" in proc.stderr
    status = list((tmp_path / "results").rglob("status.json"))
    assert status and '"failed"' in status[0].read_text()


def test_cli_default_run_prints_cycles_and_curve(tmp_path):
    proc = cli(tmp_path, "verbose=true")
    assert proc.returncode == 0, proc.stderr
    assert "cycle   0/2" in proc.stdout and "learning curve" in proc.stdout
    assert "results:" in proc.stdout


def test_multirun_sweep(tmp_path):
    proc = cli(
        tmp_path, "strategy=random,margin", "seed=0,1", f"hydra.sweep.dir={tmp_path}/multirun", multirun=True
    )
    assert proc.returncode == 0, proc.stderr
    curves = sorted((tmp_path / "results").rglob("curve.csv"))
    assert len(curves) == 4
