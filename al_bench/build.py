"""Build datasets, models and strategies from their config groups (``_target_`` + ``name``).

Frozen mode (``model.freeze=true``, timm backbones only): :func:`build_dataset` returns the dataset's cached
backbone features [N, D] instead of its images (:func:`al_bench.representations.extract_features`) and
:func:`build_model` a :class:`~al_bench.models.feature_head.FeatureHead` over them (the same head as the
end-to-end :class:`~al_bench.models.timm_net.TimmNet`). Every other model is built exactly as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra.utils
import torch
from omegaconf import DictConfig, OmegaConf

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.data.repeat import NOISE_SEED, check_repeat_options, repeat_dataset
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.models.feature_head import FeatureHead
from al_bench.seeding import derive_seed
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
        reason = " ".join(str(cause or e).split())  # Hydra's import errors span several lines
        raise ALBenchError(f"could not build {group} {kw.get('_target_')}: {reason}") from None


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
    dataset = repeat_dataset(_instantiate(kw, "dataset"), times, noise_std, seed=NOISE_SEED)
    _DATA_STATS[_stats_key(cfg)] = (dataset.mean, dataset.std)
    if is_frozen(cfg):
        return _frozen_dataset(cfg, dataset)
    return dataset


# ---- frozen mode and timm backbones --------------------------------------------------------------------
#: the (mean, std) of each dataset config built in this process, so that a model fed dataset-normalised
#: images (TimmNet) can undo the normalisation without loading the dataset again.
_DATA_STATS: dict[str, tuple[Sequence[float] | None, Sequence[float] | None]] = {}


def _stats_key(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg.dataset, resolve=True)


def _dataset_stats(cfg: DictConfig) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """(mean, std) the data module normalises ``cfg.dataset``'s images with (loads it if not yet built)."""
    if _stats_key(cfg) not in _DATA_STATS:
        build_dataset(cfg)
    return _DATA_STATS[_stats_key(cfg)]


def is_frozen(cfg: DictConfig) -> bool:
    """True when the run trains a head on cached backbone features (``model.freeze=true``)."""
    return bool((cfg.get("model") or {}).get("freeze", False))


def _model_target(cfg: DictConfig) -> Any:
    target = cfg.model.get("_target_") if cfg.model is not None else None
    if not target:
        raise ALBenchError("the model config has no _target_; every configs/model/*.yaml needs one")
    try:
        return hydra.utils.get_object(str(target))
    except Exception as e:
        raise ALBenchError(f"could not build model {target}: {e}") from None


def _check_frozen(cfg: DictConfig) -> None:
    from al_bench.models.timm_net import TimmNet

    target = _model_target(cfg)
    if not (isinstance(target, type) and issubclass(target, TimmNet)):
        raise ALBenchError(
            f"model.freeze=true needs a timm backbone, not model {cfg.model.get('name')}: use model=timm "
            "model.arch=<timm name> or model=efficientnet_lite0"
        )
    augment = cfg.trainer.get("augment")
    if augment not in (None, "none"):
        raise ALBenchError(
            f"trainer.augment={augment} cannot apply to cached features (model.freeze=true): "
            "set trainer.augment=none, or model.freeze=false to train end to end"
        )


def _frozen_dataset(cfg: DictConfig, dataset: ArrayDataset) -> ArrayDataset:
    """``dataset`` with its images replaced by their cached backbone features (extracted once)."""
    from al_bench.representations.feature_cache import extract_features, features_dataset
    from al_bench.training import resolve_device

    _check_frozen(cfg)
    device = resolve_device(str(cfg.trainer.get("accelerator", "auto")))
    train, test = extract_features(cfg, dataset, device=device, verbose=bool(cfg.get("verbose", True)))
    return features_dataset(dataset, train, test)


def _parameters(target: str) -> set[str]:
    """Names of the parameters of ``target``'s constructor; empty when it cannot be inspected (then
    :func:`_instantiate` reports any problem with the target exactly as for every model)."""
    try:
        return set(inspect.signature(hydra.utils.get_object(str(target))).parameters)
    except Exception:
        return set()


def build_model(
    cfg: DictConfig,
    in_shape: tuple[int, ...],
    num_classes: int,
    data_stats: tuple[Sequence[float] | None, Sequence[float] | None] | None = None,
) -> ALNet:
    """Instantiate ``cfg.model`` for inputs of ``in_shape`` and ``num_classes`` outputs.

    Frozen mode: a :class:`FeatureHead` over ``in_shape == (D,)`` with the config's ``head_hidden`` and
    ``dropout``. A model whose constructor takes ``data_mean``/``data_std`` (TimmNet) gets the dataset's
    normalisation: ``data_stats`` = (mean, std), by default those of ``cfg.dataset`` as built.
    """
    kw = _kwargs(cfg.model, "model")
    if is_frozen(cfg):
        _check_frozen(cfg)
        try:
            model: ALNet = FeatureHead(
                in_shape,
                num_classes,
                hidden=kw.get("head_hidden") or (),
                dropout=float(kw.get("dropout", 0.0)),
            )
        except ValueError as e:
            raise ALBenchError(f"model.head_hidden / model.dropout: {e}") from None
    else:
        extra: dict[str, Any] = {}
        if "data_mean" in _parameters(kw["_target_"]) and kw.get("data_mean") is None:
            mean, std = data_stats if data_stats is not None else _dataset_stats(cfg)
            extra = {"data_mean": mean, "data_std": std}
        model = _instantiate(kw, "model", in_shape=list(in_shape), num_classes=num_classes, **extra)
    model.in_shape = tuple(in_shape)
    return model


def new_model(
    cfg: DictConfig, data: ALDataModule, seed: int, cycle: int, purpose: str = "init_weights"
) -> ALNet:
    """A fresh ``cfg.model`` for ``data`` on its device, its weights drawn from (seed, ``purpose``, cycle)."""
    torch.manual_seed(derive_seed(seed, purpose, cycle))
    return build_model(cfg, data.in_shape, data.num_classes).to(data.device)


def build_strategy(cfg: DictConfig) -> Strategy:
    """Instantiate ``cfg.strategy``; it must be a :class:`Strategy`."""
    strategy = _instantiate(_kwargs(cfg.strategy, "strategy"), "strategy")
    if not isinstance(strategy, Strategy):
        raise ALBenchError(f"strategy {cfg.strategy.name!r} is not an al_bench Strategy: {type(strategy)}")
    return strategy
