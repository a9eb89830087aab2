"""Shared fixtures: compose the real Hydra config, shrunk to seconds, with paths under tmp_path."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
PYTHON = sys.executable

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)  # tiny models: one thread is fastest, and immune to a busy second core

#: overrides that make any run take seconds: synthetic 8x8 data, a tiny budget, 2 epochs.
TINY = [
    "dataset=synthetic",
    "dataset.n_train=200",
    "dataset.n_test=60",
    "dataset.num_classes=4",
    "budget.init_size=8",
    "budget.query_size=4",
    "budget.cycles=2",
    "trainer.max_epochs=2",
    "trainer.batch_size=16",
    "verbose=false",
]


def compose_config(overrides: list[str], tmp_path: Path) -> DictConfig:
    """The real config tree composed with ``overrides``, results under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=False)
    with open_dict(cfg):  # keep results and data under tmp_path unless the test chose a place
        if not any(o.startswith("paths.results_dir=") for o in overrides):
            cfg.paths.results_dir = str(tmp_path / "results")
        if not any(o.startswith("paths.data_dir=") for o in overrides):
            cfg.paths.data_dir = str(tmp_path / "data")
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(*overrides, tiny=True)`` -> composed config (TINY overrides first)."""

    def factory(*overrides: str, tiny: bool = True) -> DictConfig:
        return compose_config((TINY if tiny else []) + list(overrides), tmp_path)

    return factory


def config_names(group: str) -> list[str]:
    """Every option of a config group, from the yaml files (a new file is tested automatically)."""
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def quiet_trainer(epochs: int, callbacks=()) -> pl.Trainer:
    """A CPU Lightning Trainer without logger, checkpoints, progress bar or summary (module-level tests)."""
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )


def random_selection_context(
    model: torch.nn.Module,
    n_train: int,
    n_features: int,
    n_classes: int,
    labeled: np.ndarray,
    budget: int,
    seed: int = 0,
    data_seed: int = 123,
    candidates: np.ndarray | None = None,
    fit_model: Callable | None = None,
):
    """A SelectionContext (cycle 1) over random inputs [n_train, n_features] with ``labeled`` labeled at cycle
    0, a 10-sample random test split, ``model`` as the trained model and ``np.random.default_rng(seed)``."""
    from al_bench.data.base import ALDataModule, ArrayDataset
    from al_bench.pool import ActivePool
    from al_bench.strategies.base import SelectionContext

    g = torch.Generator().manual_seed(data_seed)
    ds = ArrayDataset(
        "tiny",
        torch.randn(n_train, n_features, generator=g),
        torch.randint(0, n_classes, (n_train,), generator=g),
        torch.randn(10, n_features, generator=g),
        torch.randint(0, n_classes, (10,), generator=g),
        n_classes,
    )
    data = ALDataModule(ds, eval_batch_size=32)
    pool = ActivePool(data.pool_indices, size=n_train)
    pool.label(labeled, cycle=0)
    return SelectionContext(
        model, data, pool, budget, 1, np.random.default_rng(seed), candidates=candidates, fit_model=fit_model
    )


def assert_same_runs_with_engines(make_cfg, tmp_path: Path, engines: tuple[str, str], *overrides: str):
    """Whole runs with each ``trainer.engine`` give the same curve (timings aside) and the same selections."""
    import pandas as pd

    from al_bench.loop import run

    curves, picks = {}, {}
    for engine in engines:
        cfg = make_cfg(*overrides, f"trainer.engine={engine}")
        cfg.paths.results_dir = str(tmp_path / engine)
        result = run(cfg)
        curves[engine] = result.curve.drop(columns=["train_s", "select_s", "eval_s"])
        picks[engine] = pd.read_csv(result.run_dir / "selected.csv")
    pd.testing.assert_frame_equal(curves[engines[0]], curves[engines[1]])
    pd.testing.assert_frame_equal(picks[engines[0]], picks[engines[1]])
