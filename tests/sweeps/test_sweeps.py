"""Sweeps through Hydra multirun: launchers, failures that do not stop the others, resume, and the report."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import yaml

import al_bench.loop as loop
from al_bench.loop import run
from al_bench.run_identity import variant_dirname
from tests.conftest import PYTHON, ROOT, TINY


def sweep(tmp_path, *overrides: str, launcher: str | None = None) -> subprocess.CompletedProcess:
    extra = [f"hydra/launcher={launcher}"] if launcher else []
    return subprocess.run(
        [PYTHON, "-m", "al_bench", "-m", *TINY, f"paths.results_dir={tmp_path}/results",
         f"hydra.sweep.dir={tmp_path}/multirun", "variant=", *extra, *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def curves(tmp_path) -> list:
    return sorted((tmp_path / "results").rglob("curve.csv"))


@pytest.mark.slow
def test_joblib_two_by_two(tmp_path):
    proc = sweep(tmp_path, "strategy=random,entropy", "seed=0,1", "hydra.launcher.n_jobs=2", "threads=1",
                 launcher="joblib")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(curves(tmp_path)) == 4
    assert all(len(pd.read_csv(c)) == 3 for c in curves(tmp_path))


@pytest.mark.slow
def test_submitit_local(tmp_path):
    proc = sweep(tmp_path, "strategy=margin", "seed=0", "budget.cycles=1", launcher="submitit_local")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (curve,) = curves(tmp_path)
    assert pd.read_csv(curve)["n_labeled"].tolist() == [8, 12]


def test_failing_job_does_not_stop_the_sweep_and_is_reported(tmp_path):
    # bald on a model without dropout is refused before training; random runs
    proc = sweep(tmp_path, "strategy=random,bald", "model.dropout=0.0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "need(s) MC dropout" in proc.stderr and "Traceback" not in proc.stderr
    assert len(curves(tmp_path)) == 1, "the good job finished"
    statuses = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("status.json")]
    assert sorted(s["state"] for s in statuses) == ["failed", "finished"]
    report = subprocess.run(
        [PYTHON, "-m", "al_bench.report", str(tmp_path / "results")], cwd=ROOT, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr
    summary = (tmp_path / "results" / "report" / "summary.md").read_text()
    assert "need(s) MC dropout" in summary, "the report says which run failed and why"


def test_rerun_of_an_interrupted_sweep_skips_finished_and_resumes_unfinished(tmp_path, monkeypatch, make_cfg):
    # a sweep of two seeds where seed 1 was killed during cycle 2 (seed 0 finished)
    reference = run(make_cfg("strategy=entropy", "seed=1", f"paths.results_dir={tmp_path}/reference"))
    run(make_cfg("strategy=entropy", "seed=0", f"paths.results_dir={tmp_path}/results"))
    real = loop.run_cycle

    def killed(cfg, data, pool, strategy, cycle, net, *rest):
        if cycle == 2:
            raise KeyboardInterrupt
        return real(cfg, data, pool, strategy, cycle, net, *rest)

    monkeypatch.setattr(loop, "run_cycle", killed)
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg("strategy=entropy", "seed=1", f"paths.results_dir={tmp_path}/results"))
    monkeypatch.setattr(loop, "run_cycle", real)

    proc = sweep(tmp_path, "strategy=entropy", "seed=0,1", "verbose=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already finished" in proc.stdout and "resuming" in proc.stdout
    resumed = pd.read_csv(tmp_path / "results/synthetic/mlp/entropy/seed=1/curve.csv")
    drop = ["train_s", "select_s", "eval_s"]
    pd.testing.assert_frame_equal(resumed.drop(columns=drop), reference.curve.drop(columns=drop))


@pytest.mark.slow
def test_sweep_over_options_lands_in_one_directory_per_value(tmp_path):
    # no hand-made results dir per value: each result-affecting override names its own run directory
    argv = [PYTHON, "-m", "al_bench", "-m", "dataset=synthetic", "dataset.n_train=200",
            "budget.init_size=8", "budget.cycles=1", "trainer.max_epochs=1", "verbose=true",
            f"paths.results_dir={tmp_path}/results", f"hydra.sweep.dir={tmp_path}/multirun",
            "budget.query_size=10,5", "model.dropout=0.3,0.1"]  # fmt: skip
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    variants = {c.parent.parent.name: yaml.safe_load((c.parent / "config.yaml").read_text())["variant"]
                for c in curves(tmp_path)}  # fmt: skip
    # query_size=10 (digits budget) and dropout=0.3 (mlp.yaml) are the defaults: no trace of those overrides
    base = ["budget.cycles=1", "budget.init_size=8", "dataset.n_train=200", "trainer.max_epochs=1"]
    swept = [[], ["budget.query_size=5"], ["model.dropout=0.1"], ["budget.query_size=5", "model.dropout=0.1"]]
    assert sorted(variants.values()) == sorted(",".join(sorted(base + s)) for s in swept)
    assert all(name == variant_dirname(v) for name, v in variants.items())
    sizes = sorted(tuple(pd.read_csv(c)["n_labeled"]) for c in curves(tmp_path))
    assert sizes == [(8, 13), (8, 13), (8, 18), (8, 18)]
    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout.count("already finished") == 4, again.stdout[-2000:]
