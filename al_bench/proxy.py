"""Selection via proxy (SVP, Coleman et al. ICLR 2020): a cheaper model trains on the labels and selects.

Any strategy can select through a proxy: each selecting cycle the loop trains the target model (``model``,
``trainer``) for the learning curve *and* a proxy on the same training set (labeled indices, the strategy's
pseudo-labels), and the strategy's :class:`~al_bench.strategies.base.SelectionContext` sees the proxy only:

- ``ctx.model`` is the proxy network;
- the strategy's ``training_callbacks`` (label dispersion's per-epoch pool predictions, ...) and its
  ``auxiliary_module`` (LL4AL's loss predictor) are attached to the proxy's fit, not the target's: they
  record or learn the selecting model, and the target is trained with the plain recipe (the curve is what the
  target reaches on the proxy's picks, as in the paper);
- ``ctx.fit_model`` (committees, ensembles, every posterior source) trains members with the proxy's config;
- the proxy has its own seeds (weights ``proxy_init_weights``, batches ``proxy``), so it never replays the
  target's initialisation.

Config group ``proxy`` (configs/proxy/*.yaml; ``proxy=none`` is the default):

- ``name``: ``none`` = the target selects itself (then no other key may be set), else the proxy's name;
- ``model``: null = the target's architecture, or a model node with ``_target_`` as configs/model/*.yaml;
- ``trainer``: options merged onto ``trainer`` for the proxy's fits (``+proxy.trainer.batch_size=64``: the
  node starts empty); a node with ``_target_`` (an optimizer, a scheduler) replaces the target's whole;
- ``epochs_fraction``: f in (0, 1] trains max(1, round(f * trainer.max_epochs)) epochs (min_epochs capped):
  the schedule is truncated, not compressed, as the authors' proxy trained 50 of the target's 181 epochs.

The proxy is re-initialised every cycle (the paper's proxies are retrained from scratch):
``trainer.warm_start`` applies to the target only, ``proxy.trainer.warm_start=true`` is refused, and nothing
of the proxy goes into state.pt (a resume retrains it from its seeds). Curve columns: ``proxy_train_s`` (the
proxy's fit: ``proxy_train_s + select_s`` is the time of selection via proxy, against ``train_s + select_s``
of the target selecting itself) and ``proxy_test_acc``; both NaN without a proxy and in the last cycle
(which selects nothing).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from al_bench.build import is_frozen, new_model
from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.inference import evaluate
from al_bench.models.base import ALNet
from al_bench.posteriors.mc_dropout import dropout_layers
from al_bench.strategies.base import Strategy
from al_bench.training import callback_results, check_trainer_config, train_model

#: ``proxy.name`` of the default: no proxy, the target selects itself
NO_PROXY = "none"
#: the keys a proxy node may hold
PROXY_KEYS = ("name", "model", "trainer", "epochs_fraction")
_NONE = {"name": NO_PROXY, "model": None, "trainer": {}, "epochs_fraction": None}  # configs/proxy/none.yaml
#: seed purposes of the proxy (the target uses "init_weights" and "train")
INIT_PURPOSE, TRAIN_PURPOSE = "proxy_init_weights", "proxy"
#: backbone options of a frozen (cached-feature) model: a frozen proxy reads the target's cached features
_BACKBONE_KEYS = ("arch", "weights", "pretrained", "input_size", "interpolation", "init_seed")


def proxy_name(cfg: DictConfig) -> str:
    """``proxy.name`` ("none" when the config has no proxy group: older configs)."""
    node = cfg.get("proxy")
    return NO_PROXY if node is None else str(node.get("name") or NO_PROXY)


def proxy_config(cfg: DictConfig) -> DictConfig | None:
    """The run's config as the proxy trains with it (``model`` and ``trainer`` replaced, everything else
    resolved from the run's), or None without a proxy. Raises ALBenchError (one line) for a malformed
    proxy."""
    node = cfg.get("proxy")
    if node is None:
        return None
    if not isinstance(node, Mapping):
        raise ALBenchError(f"proxy must be a config node (proxy=fewer_epochs, proxy=mlp), got {node!r}")
    unknown = sorted(set(map(str, node)) - set(PROXY_KEYS))
    if unknown:
        raise ALBenchError(f"unknown proxy option(s) {', '.join(unknown)}; valid: {', '.join(PROXY_KEYS)}")
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    proxy = plain.pop("proxy")
    name, model, overrides = proxy.get("name") or NO_PROXY, proxy.get("model"), proxy.get("trainer") or {}
    fraction = proxy.get("epochs_fraction")
    if name == NO_PROXY:
        if model is not None or overrides or fraction is not None:
            raise ALBenchError(
                "proxy.model / proxy.trainer / proxy.epochs_fraction are set but proxy=none: choose a proxy "
                "(proxy=fewer_epochs, proxy=mlp) or drop those options"
            )
        return None
    plain["model"] = _proxy_model(model, plain["model"], name)
    plain["trainer"] = _proxy_trainer(plain["trainer"], overrides, fraction)
    plain["proxy"] = dict(_NONE)  # the proxy's own config names no proxy
    out = OmegaConf.create(plain)
    _check_frozen(cfg, out)
    return out


def _proxy_model(model: Any, target: dict, name: str) -> dict:
    """``proxy.model`` as a model node (null: a copy of the target's)."""
    if model is None:
        return copy.deepcopy(target)
    if not isinstance(model, dict) or not model.get("_target_"):
        raise ALBenchError(
            f"proxy.model of proxy {name} must be null (the target's architecture) or a model node with "
            f"_target_ as in configs/model/*.yaml, got {model!r}"
        )
    return {"name": f"{name}_model", **model}


def _proxy_trainer(target: dict, overrides: Any, fraction: Any) -> dict:
    """The target's trainer node with ``overrides`` merged on and ``fraction`` of its epochs."""
    if not isinstance(overrides, dict):
        raise ALBenchError(f"proxy.trainer must be a mapping of trainer options, got {overrides!r}")
    unknown = sorted(set(overrides) - set(target))
    if unknown:
        raise ALBenchError(
            f"proxy.trainer.{unknown[0]} is not a trainer option; valid: {', '.join(sorted(target))}"
        )
    if overrides.get("warm_start"):
        raise ALBenchError(
            "proxy.trainer.warm_start=true is not supported: the proxy is retrained from scratch every cycle "
            "(trainer.warm_start applies to the target only)"
        )
    out = copy.deepcopy(target)
    for key, value in overrides.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and "_target_" not in value:
            out[key] = {**old, **value}
        else:
            out[key] = copy.deepcopy(value)
    out["warm_start"] = False
    if fraction is not None:
        if "max_epochs" in overrides:
            raise ALBenchError("set proxy.epochs_fraction or proxy.trainer.max_epochs, not both")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ALBenchError(f"proxy.epochs_fraction must be a number in (0, 1], got {fraction!r}")
        out["max_epochs"] = max(1, round(float(fraction) * int(out["max_epochs"])))
        if out.get("min_epochs"):
            out["min_epochs"] = min(int(out["min_epochs"]), out["max_epochs"])
    return out


def _check_frozen(cfg: DictConfig, proxy_cfg: DictConfig) -> None:
    """A frozen proxy (a head on cached backbone features) reads the target's features: the target must be
    frozen on the same backbone."""
    if not is_frozen(proxy_cfg):
        return
    if not is_frozen(cfg):
        raise ALBenchError(
            "proxy.model.freeze=true needs model.freeze=true: the proxy trains on the run's data, which are "
            "images here (set proxy.model.freeze=false)"
        )
    differ = [k for k in _BACKBONE_KEYS if cfg.model.get(k) != proxy_cfg.model.get(k)]
    if differ:
        raise ALBenchError(
            f"a frozen proxy reads the target's cached features, but proxy.model.{differ[0]} differs from "
            f"model.{differ[0]}: give the proxy the target's backbone or proxy.model.freeze=false"
        )


def check_proxy(cfg: DictConfig, data: ALDataModule, strategy: Strategy, seed: int) -> None:
    """Refuse, before any training, a proxy that cannot run: its trainer options, a model that cannot take
    the dataset's inputs, a strategy's MC dropout on a proxy without dropout. No-op without a proxy."""
    proxy_cfg = proxy_config(cfg)
    if proxy_cfg is None:
        return
    name = proxy_name(cfg)
    try:
        check_trainer_config(proxy_cfg.trainer, len(data.val_indices))
    except ALBenchError as e:
        raise ALBenchError(f"proxy {name}: {e}") from None
    try:
        net = new_model(proxy_cfg, data, seed, 0, purpose=INIT_PURPOSE)
    except ALBenchError as e:
        raise ALBenchError(f"proxy {name}: {e}") from None
    try:
        net.eval()
        with torch.inference_mode():
            out = net(torch.zeros(2, *data.in_shape, device=data.device))
        if tuple(out.shape) != (2, data.num_classes):
            raise ValueError(f"it gives logits of shape {tuple(out.shape)}")
    except Exception as e:
        why = " ".join(str(e).split()) or type(e).__name__
        raise ALBenchError(
            f"proxy {name}: model {proxy_cfg.model.name} cannot classify this dataset's inputs "
            f"{tuple(data.in_shape)} into {data.num_classes} classes ({why}): choose another proxy.model"
        ) from None
    if strategy.needs_mc_dropout and not dropout_layers(net):
        raise ALBenchError(
            f"strategy {cfg.strategy.name} needs MC dropout on the selecting model, but proxy {name}'s model "
            f"{proxy_cfg.model.name} has no dropout layer with p > 0: give it dropout "
            "(e.g. proxy.model.dropout=0.3) or choose another proxy"
        )


@dataclass
class ProxyFit:
    """A proxy trained for one selection: the network, its training seconds, its test accuracy and the
    seconds of that evaluation, what its callbacks recorded."""

    net: ALNet
    train_s: float
    test_acc: float
    eval_s: float
    dynamics: dict[str, Any] = field(default_factory=dict)


def fit_proxy(
    proxy_cfg: DictConfig,
    data: ALDataModule,
    strategy: Strategy,
    train_idx: np.ndarray,
    labels: torch.Tensor | None,
    seed: int,
    cycle: int,
    callbacks: list,
) -> ProxyFit:
    """Train a fresh proxy on global ``train_idx`` (with ``labels`` [n_train] where pseudo-labels replace the
    oracle's) with the strategy's ``callbacks`` and auxiliary module attached, then test it; ``train_s``
    times the fit only (as the target's ``train_s``)."""
    net = new_model(proxy_cfg, data, seed, cycle, purpose=INIT_PURPOSE)
    aux = strategy.auxiliary_module(net)
    t0 = time.perf_counter()
    train_model(
        proxy_cfg, net, data, train_idx, seed, cycle, callbacks=callbacks, aux=aux, labels=labels,
        purpose=TRAIN_PURPOSE,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_acc = evaluate(net, data)["acc"]
    return ProxyFit(net, train_s, test_acc, time.perf_counter() - t0, callback_results(callbacks))
