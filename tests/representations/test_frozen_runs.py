"""Frozen mode (model.freeze=true) through the real loop: every strategy config runs unchanged on a head over
cached features, the cache is shared across seeds and strategies, and misuse stops with one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import al_bench.representations.feature_cache as fc
from al_bench.build import build_dataset, build_model
from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.models.feature_head import FeatureHead
from tests.conftest import CONFIGS, PYTHON, ROOT, config_names

FROZEN = [
    "model=timm",
    "model.arch=test_resnet",
    "model.input_size=16",
    "model.freeze=true",
    "model.dropout=0.3",
]
SPEED = ["trainer.max_epochs=2", "dataset.val_size=12", "budget.cycles=1"]
FAST_EXTRA = {  # the heavier strategies at test size (options applied only where the yaml has the key)
    "vaal": ["epochs=1"],
    "batchbald": ["num_joint_samples=200"],
    "isal": ["steps=5", "repeats=1"],
    "ralif": ["steps=5", "repeats=1", "tau=2"],
    "vote_entropy": ["committee_size=2"],
    "consensus_entropy": ["committee_size=2"],
    "kl_divergence": ["committee_size=2"],
}


def _extra(name: str) -> list[str]:
    text = "\n" + (CONFIGS / "strategy" / f"{name}.yaml").read_text()
    return [f"strategy.{o}" for o in FAST_EXTRA.get(name, []) if f"\n{o.split('=')[0]}:" in text]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One feature cache for the whole module: extracted by the first run, read by every other."""
    return tmp_path_factory.mktemp("feature_cache")


@pytest.mark.parametrize("name", config_names("strategy"))
def test_every_strategy_runs_on_cached_features(make_cfg, tmp_path, cache_dir, name):
    cfg = make_cfg(f"strategy={name}", *FROZEN, *SPEED, *_extra(name), f"paths.cache_dir={cache_dir}")
    result = run(cfg)
    selected = pd.read_csv(result.run_dir / "selected.csv")
    new = selected[selected.cycle == 1]["index"].to_numpy()
    assert len(result.curve) == 2 and result.curve["model"].iloc[0] == "timm"
    assert len(new) == cfg.budget.query_size and len(np.unique(new)) == len(new)
    assert not np.isin(new, selected[selected.cycle == 0]["index"].to_numpy()).any()
    assert np.isfinite(result.curve["test_acc"]).all()


def test_frozen_data_and_model_are_features_and_a_head(make_cfg, tmp_path):
    cfg = make_cfg(*FROZEN, f"paths.cache_dir={tmp_path / 'cache'}")
    ds = build_dataset(cfg)
    assert ds.x_train.shape == (200, 96) and ds.x_test.shape == (60, 96)  # test_resnet: 96 features
    assert ds.x_train.dtype == torch.float32 and ds.mean is None and ds.augment == "none"
    model = build_model(cfg, ds.in_shape, ds.num_classes).eval()
    assert isinstance(model, FeatureHead) and model.feature_dim == 96
    with torch.no_grad():
        torch.testing.assert_close(model.features(ds.x_train[:5]), ds.x_train[:5])  # core-set's features
    mlp = build_model(make_cfg(*FROZEN, "model.head_hidden=[16]", f"paths.cache_dir={tmp_path}"), (96,), 4)
    assert mlp.feature_dim == 16


def test_cache_is_shared_by_seeds_and_strategies(make_cfg, tmp_path, monkeypatch):
    calls: list[int] = []
    real = fc._extract
    monkeypatch.setattr(fc, "_extract", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = tmp_path / "cache"
    curves = {}
    for strategy in ("entropy", "coreset"):
        for seed in (0, 1):
            cfg = make_cfg(
                *FROZEN, f"strategy={strategy}", f"seed={seed}", f"paths.cache_dir={cache}", "budget.cycles=1"
            )
            curves[strategy, seed] = run(cfg).curve
    assert calls == [1] and len(list(cache.glob("features/*/*.pt"))) == 1
    assert curves["entropy", 0]["n_labeled"].tolist() == [8, 12]


def test_same_seed_same_frozen_run(make_cfg, tmp_path):
    results = []
    for rep in range(2):
        cfg = make_cfg(
            *FROZEN, "strategy=badge", f"paths.cache_dir={tmp_path}/c", f"paths.run_dir={tmp_path}/r{rep}"
        )
        result = run(cfg)
        results.append((pd.read_csv(result.run_dir / "selected.csv")["index"].to_numpy(), result.curve))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    pd.testing.assert_series_equal(results[0][1]["test_acc"], results[1][1]["test_acc"])


def test_freeze_needs_a_timm_model(make_cfg):
    with pytest.raises(ALBenchError, match="model.freeze=true needs a timm backbone") as e:
        build_dataset(make_cfg("model=mlp", "+model.freeze=true"))
    assert "\n" not in str(e.value)


def test_freeze_refuses_image_augmentation(make_cfg, tmp_path):
    with pytest.raises(ALBenchError, match="trainer.augment=crop cannot apply to cached features"):
        build_dataset(make_cfg(*FROZEN, "trainer.augment=crop", f"paths.cache_dir={tmp_path}"))


@pytest.mark.slow
def test_cli_error_is_one_line(tmp_path):
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "al_bench",
            "model=timm",
            "model.arch=resnet_18",
            "model.freeze=true",
            "verbose=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown timm model 'resnet_18'" in lines[0] and "Traceback" not in proc.stderr
