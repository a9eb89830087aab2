"""Shared cases for the posterior-source tests: a tiny selection context whose ``fit_model(seed, **options)``
trains real MLPs through :func:`al_bench.training.train_model` (the loop's fit path) and records each call:
seed and options, ``aux_before`` (the auxiliary module's weights before training), ``module`` and ``net``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from al_bench.models.mlp import MLP
from al_bench.strategies.base import SelectionContext
from al_bench.training import quiet_lightning, train_model
from tests.conftest import TINY, compose_config, random_selection_context

N_TRAIN, N_FEATURES, N_CLASSES = 60, 5, 3
LABELED = np.arange(0, N_TRAIN, 3)  # 20 labeled


def tiny_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    """The real config, shrunk: 4 epochs (the data module's batches of 8 make 3 steps per epoch)."""
    return compose_config([*TINY, "trainer.max_epochs=4", "trainer.accelerator=cpu", *overrides], tmp_path)


def mlp(seed: int, dropout: float = 0.3) -> MLP:
    torch.manual_seed(seed % 2**31)  # as build.new_model: the init from the member seed
    return MLP((N_FEATURES,), N_CLASSES, hidden=(12, 12), dropout=dropout)


def context(
    tmp_path: Path, seed: int = 0, calls: list[dict[str, Any]] | None = None, overrides: tuple[str, ...] = ()
) -> SelectionContext:
    """A selection context (cycle 1, candidates = the unlabeled pool) with a recording, real ``fit_model``."""
    quiet_lightning()
    cfg = tiny_cfg(tmp_path, *overrides)
    record = calls if calls is not None else []
    holder: dict[str, SelectionContext] = {}

    def fit_model(member_seed: int, **options: Any) -> MLP:
        call = {"seed": member_seed, **options}
        if options.get("aux") is not None:  # the auxiliary module's weights before training
            call["aux_before"] = {k: v.clone() for k, v in options["aux"].state_dict().items()}
        net = mlp(member_seed)
        call["module"] = train_model(
            cfg, net, holder["ctx"].data, LABELED, member_seed, 1, purpose="committee", **options
        )
        call["net"] = net
        record.append(call)
        return net

    ctx = random_selection_context(
        mlp(0), N_TRAIN, N_FEATURES, N_CLASSES, LABELED, 4, seed, fit_model=fit_model
    )
    ctx.data.batch_size = 8  # 3 optimizer steps per epoch on the 20 labels
    holder["ctx"] = ctx
    return ctx
