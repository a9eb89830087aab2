"""Build datasets, models and strategies from their config groups (``_target_`` + ``name``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra.utils
from omegaconf import DictConfig, OmegaConf

from al_bench.data.base import ArrayDataset
from al_bench.data.repeat import NOISE_SEED, check_repeat_options, repeat_dataset
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.strategies.base import Strategy


def _kwargs(node: DictConfig, group: str) -> dict[str, Any]:
    if node is None or "_target_" not in node:
        raise ALBenchError(f"the {group} config has no _target_; every configs/{group}/*.yaml needs one")
    kw = OmegaConf.to_container(node, resolve=True)
    assert isinstance(kw, dict)
    kw.pop("name", None)
    return kw


def _instantiate(kw: dict[str, Any], group: str, **extra: Any) -> Any:
    try:
        return hydra.utils.instantiate(kw, **extra, _convert_="all")
    except hydra.errors.InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ALBenchError):
            raise cause from None
        raise ALBenchError(f"could not build {group} {kw.get('_target_')}: {cause or e}") from None


def build_dataset(cfg: DictConfig) -> ArrayDataset:
    """Load the dataset named by ``cfg.dataset`` (its loader's kwargs are the yaml's other keys).

    ``dataset.repeat`` / ``dataset.repeat_noise_std`` (defaults 1 / 0.0, also when absent from the yaml) then
    repeat its training split with fixed noise, for any dataset: :func:`al_bench.data.repeat.repeat_dataset`.
    """
    kw = _kwargs(cfg.dataset, "dataset")
    for key in ("val_size", "val_seed"):
        kw.pop(key, None)
    times, noise_std = check_repeat_options(kw.pop("repeat", 1), kw.pop("repeat_noise_std", 0.0))
    if kw.get("data_dir"):  # absolute, so that a missing-data message says exactly where it looked
        kw["data_dir"] = str(Path(kw["data_dir"]).expanduser().resolve())
    return repeat_dataset(_instantiate(kw, "dataset"), times, noise_std, seed=NOISE_SEED)


def build_model(cfg: DictConfig, in_shape: tuple[int, ...], num_classes: int) -> ALNet:
    """Instantiate ``cfg.model`` for inputs of ``in_shape`` and ``num_classes`` outputs."""
    model = _instantiate(
        _kwargs(cfg.model, "model"), "model", in_shape=list(in_shape), num_classes=num_classes
    )
    model.in_shape = tuple(in_shape)
    return model


def build_strategy(cfg: DictConfig) -> Strategy:
    """Instantiate ``cfg.strategy``; it must be a :class:`Strategy`."""
    strategy = _instantiate(_kwargs(cfg.strategy, "strategy"), "strategy")
    if not isinstance(strategy, Strategy):
        raise ALBenchError(f"strategy {cfg.strategy.name!r} is not an al_bench Strategy: {type(strategy)}")
    return strategy
