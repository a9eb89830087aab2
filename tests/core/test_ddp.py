"""Lightning DDP on CPU (gloo, 2 processes) from the Hydra entry point: every rank trains on its shard, rank 0
writes the results, and every rank labels the same (broadcast) selection."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from al_bench import distributed
from tests.conftest import PYTHON, ROOT, TINY


def test_shard_gives_equal_strided_shares():
    idx = np.arange(9)
    shares = [distributed.shard(idx, 2, r) for r in range(2)]
    assert [len(s) for s in shares] == [5, 5]
    assert sorted(set(np.concatenate(shares).tolist())) == list(range(9))
    assert shares[0].tolist() == [0, 2, 4, 6, 8]


def test_broadcast_is_identity_without_a_process_group():
    idx = np.array([5, 3, 1])
    assert distributed.broadcast_indices(idx) is idx
    assert distributed.is_main() and distributed.world_size() == 1


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", *TINY, "trainer.accelerator=cpu", "trainer.devices=2",
         "trainer.strategy=ddp", "verbose=true", "variant=",
         f"paths.results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/hydra"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "results" / "synthetic" / "mlp" / "entropy" / "seed=0"
    curve = pd.read_csv(run_dir / "curve.csv")
    assert curve["n_labeled"].tolist() == [8, 12, 16]
    assert proc.stdout.count("cycle   1/2") == 1, "only rank 0 prints"
    selected = pd.read_csv(run_dir / "selected.csv")
    assert selected.groupby("cycle").size().tolist() == [8, 4, 4]
    assert not list(run_dir.glob(".*.tmp")), "no half-written files"
