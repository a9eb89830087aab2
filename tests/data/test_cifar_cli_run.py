"""One AL cycle through the CLI on CIFAR-10 files in the real on-disk format (tiny python pickles):
the dataset preset picks ResNet-18, the real loader reads the pickles, BADGE selects."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd

from tests.conftest import PYTHON, ROOT
from tests.data.test_torchvision_sets import write_cifar10


def test_one_cycle_on_cifar_format_files(tmp_path):
    write_cifar10(tmp_path / "cifar", np.random.default_rng(0))
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", "strategy=badge", "dataset=cifar10", f"dataset.data_dir={tmp_path}/cifar",
         "dataset.verify=false", "budget.init_size=4", "budget.query_size=2", "budget.cycles=1",
         "budget.pool_subset=null", "trainer.max_epochs=1", "trainer.batch_size=4",
         f"paths.results_dir={tmp_path}/results", "variant=smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "results" / "cifar10" / "resnet18" / "badge" / "smoke" / "seed=0"
    curve = pd.read_csv(run_dir / "curve.csv")
    assert curve["n_labeled"].tolist() == [4, 6]
    assert (curve["model"] == "resnet18").all()
    assert "labels" in proc.stdout and "learning curve" in proc.stdout


def test_missing_cifar_is_one_line(tmp_path):
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", "dataset=cifar10", f"paths.data_dir={tmp_path}/nowhere",
         f"paths.results_dir={tmp_path}/results"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(tmp_path / "nowhere" / "cifar10") in lines[0]
    assert "dataset.download=true" in lines[0] and "Traceback" not in proc.stderr
