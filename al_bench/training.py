"""Training one model on the labeled set: a fresh Lightning Trainer per call (or the plain loop of
:mod:`al_bench.plain_fit`, see :func:`fit_engine`), quiet, on the run's device."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from al_bench.callbacks.early_stopping import ValidationEarlyStopping, val_accuracy
from al_bench.data.base import ALDataModule
from al_bench.data.sampled_batches import SampledBatches
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.models.feature_head import FeatureHead
from al_bench.module import CLIP_ALGORITHMS, ALModule, StopAtTrainAccuracy
from al_bench.plain_fit import plain_fit
from al_bench.seeding import derive_seed, torch_generator


def train_model(
    cfg: DictConfig,
    net: ALNet,
    data: ALDataModule,
    indices: np.ndarray,
    seed: int,
    cycle: int,
    callbacks: list | None = None,
    aux: torch.nn.Module | None = None,
    labels: torch.Tensor | None = None,
    purpose: str = "train",
    epochs_fraction: float | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    prepare: Callable[[ALNet], None] | None = None,
    early_stopping: bool = True,
) -> ALModule:
    """Fit ``net`` on global ``indices`` with the run's recipe; a fresh Lightning Trainer per call.

    ``trainer.samples_per_epoch`` (int) makes each epoch that many draws with replacement from ``indices``;
    ``trainer.early_stopping_patience`` stops on validation accuracy and restores the best epoch's weights;
    ``trainer.l2_over_n`` = c adds ``(c / N) * sum(w ** 2)`` over ``trainer.l2_params`` with N = len(indices).

    Options of the posterior sources (:mod:`al_bench.posteriors`), all off by default:
    ``epochs_fraction`` trains ``max(1, round(f * trainer.max_epochs))`` epochs (``min_epochs`` capped to it);
    ``init_state`` loads these weights into ``net`` first (DEE members start from the base network);
    ``prepare(net)`` then changes ``net`` in place before the optimizer sees it (BBB swaps in a Bayesian
    head); ``early_stopping=False`` drops ``trainer.stop_at_train_acc`` and
    ``trainer.early_stopping_patience`` (a snapshot run must finish its learning-rate cycles).
    """
    tcfg = cfg.trainer
    check_trainer_config(tcfg, len(data.val_indices))
    max_epochs, min_epochs = int(tcfg.max_epochs), int(tcfg.get("min_epochs") or 0)
    if epochs_fraction is not None:
        if not 0 < float(epochs_fraction) <= 1:
            raise ALBenchError(f"epochs_fraction must be in (0, 1], got {epochs_fraction}")
        max_epochs = max(1, round(float(epochs_fraction) * max_epochs))
        min_epochs = min(min_epochs, max_epochs)
    if init_state is not None:
        net.load_state_dict(init_state)
    if prepare is not None:
        prepare(net)
    torch.manual_seed(derive_seed(seed, purpose, cycle))
    generator = torch_generator(seed, "shuffle:" + purpose, cycle)
    drop_last = bool(tcfg.get("drop_last", False))
    batches: Any
    if tcfg.get("samples_per_epoch") is not None:
        n = int(tcfg.samples_per_epoch)
        batches = SampledBatches(
            data, indices, n, data.batch_size, generator, data.augment, labels=labels, drop_last=drop_last
        )
    else:
        batches = data.train_batches(indices, generator, labels=labels, drop_last=drop_last)
    optimizer = hydra.utils.instantiate(tcfg.optimizer)
    scheduler = hydra.utils.instantiate(tcfg.scheduler) if tcfg.get("scheduler") else None
    if data.device.type == "cuda" and tcfg.get("channels_last", True) and len(data.in_shape) == 3:
        net = net.to(memory_format=torch.channels_last)
    l2_over_n = tcfg.get("l2_over_n")
    l2_params = tcfg.get("l2_params")
    module = ALModule(
        net,
        optimizer,
        scheduler,
        aux=aux,
        gradient_clip_val=tcfg.get("gradient_clip_val"),
        gradient_clip_algorithm=tcfg.get("gradient_clip_algorithm") or "norm",
        l2=None if l2_over_n is None else float(l2_over_n) / max(len(indices), 1),
        l2_params=None if l2_params is None else [str(p) for p in l2_params],
    )
    all_callbacks = list(callbacks or [])
    if early_stopping and tcfg.get("stop_at_train_acc"):
        all_callbacks.append(StopAtTrainAccuracy(float(tcfg.stop_at_train_acc)))
    if early_stopping and tcfg.get("early_stopping_patience") is not None:
        all_callbacks.append(ValidationEarlyStopping(int(tcfg.early_stopping_patience), val_accuracy(data)))
    if tcfg.get("compile", False):
        net.compile()
    engine = fit_engine(tcfg, net)
    if engine != "lightning":
        fused = "off" if engine == "plain" else ("require" if tcfg.get("engine") == "fused" else "auto")
        plain_fit(
            module,
            batches,
            data.device,
            max_epochs,
            min_epochs,
            all_callbacks,
            progress=progress_bar_enabled(tcfg.get("progress_bar", False)),
            fused=fused,
        )
        return module
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        min_epochs=min_epochs or None,
        accelerator="gpu" if data.device.type == "cuda" else "cpu",
        devices=tcfg.get("devices", 1),
        strategy=tcfg.get("strategy", "auto"),
        precision=tcfg.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar_enabled(tcfg.get("progress_bar", False)),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=all_callbacks,
        default_root_dir=str(Path(cfg.paths.run_dir)),
    )
    trainer.fit(module, train_dataloaders=batches)
    net.to(data.device)  # Lightning's teardown moves the module to the CPU
    if aux is not None:
        aux.to(data.device)
    return module


def callback_results(callbacks: Sequence[Any]) -> dict[str, Any]:
    """What the recording callbacks of a fit hold, by their ``key`` (``ctx.dynamics`` of a selection)."""
    return {cb.key: cb.result() for cb in callbacks if hasattr(cb, "key") and hasattr(cb, "result")}


ENGINES = ("auto", "lightning", "plain", "fused")
_PLAIN_PRECISIONS = ("32-true", "32", 32)


def fit_engine(trainer_cfg: Mapping[str, Any] | DictConfig, net: torch.nn.Module | None = None) -> str:
    """``trainer.engine`` resolved to ``"lightning"``, ``"plain"`` (:func:`al_bench.plain_fit.plain_fit` with
    autograd's steps) or ``"fused"`` (the same loop with :class:`al_bench.linear_step.LinearHeadStep`'s steps,
    bit for bit autograd's, where they apply).

    ``auto``: fused for a :class:`FeatureHead` (frozen mode, where Lightning's per-step overhead and then
    autograd's are most of the cycle; a fit the fused step does not reproduce, e.g. with a scheduler or an MLP
    head, takes autograd's steps) when the fit is on one device in full precision, Lightning otherwise.
    ``plain`` or ``fused`` with several devices, a Lightning strategy or another precision is refused in one
    line; ``fused`` for a fit it does not reproduce is refused when the fit starts.
    """
    engine = trainer_cfg.get("engine") or "auto"
    if engine not in ENGINES:
        raise ALBenchError(f"unknown trainer.engine {engine!r}; valid: {', '.join(ENGINES)}")
    devices, strategy = trainer_cfg.get("devices", 1), trainer_cfg.get("strategy", "auto")
    precision = trainer_cfg.get("precision", "32-true")
    plain_ok = devices in (1, None) and strategy in ("auto", None) and precision in _PLAIN_PRECISIONS
    if engine in ("plain", "fused") and not plain_ok:
        raise ALBenchError(
            f"trainer.engine={engine} fits on one device in full precision; this run asks for "
            f"devices={devices}, strategy={strategy}, precision={precision}: "
            "use trainer.engine=lightning (or auto)"
        )
    if engine == "auto":
        return "fused" if plain_ok and isinstance(net, FeatureHead) else "lightning"
    return str(engine)


def check_trainer_config(trainer_cfg: Mapping[str, Any] | DictConfig, n_val: int) -> None:
    """Refuse, with one line, trainer options that cannot work (before any training).

    ``n_val``: the size of the validation split (``len(data.val_indices)``); early stopping needs one.
    """
    get = trainer_cfg.get
    fit_engine(trainer_cfg)
    patience = get("early_stopping_patience")
    if patience is not None:
        if not _is_int(patience) or patience < 1:
            raise ALBenchError(
                f"trainer.early_stopping_patience must be null or an integer >= 1 (epochs without a better "
                f"validation accuracy), got {patience!r}"
            )
        if n_val <= 0:
            raise ALBenchError(
                "trainer.early_stopping_patience needs a validation split: set dataset.val_size "
                "(BatchBALD: 1024), or trainer.early_stopping_patience=null"
            )
    samples = get("samples_per_epoch")
    if samples is not None and (not _is_int(samples) or samples < 1):
        raise ALBenchError(f"trainer.samples_per_epoch must be null or an integer >= 1, got {samples!r}")
    algorithm = get("gradient_clip_algorithm") or "norm"
    if algorithm not in CLIP_ALGORITHMS:
        raise ALBenchError(
            f"unknown trainer.gradient_clip_algorithm {algorithm!r}; valid: {', '.join(CLIP_ALGORITHMS)}"
        )
    clip = get("gradient_clip_val")
    if clip is not None and (not _is_number(clip) or clip < 0):
        raise ALBenchError(f"trainer.gradient_clip_val must be null or a number >= 0, got {clip!r}")
    _check_l2(trainer_cfg)


def _check_l2(trainer_cfg: Mapping[str, Any] | DictConfig) -> None:
    c, params = trainer_cfg.get("l2_over_n"), trainer_cfg.get("l2_params")
    if c is not None and (not _is_number(c) or c < 0):
        raise ALBenchError(f"trainer.l2_over_n must be null or a number >= 0, got {c!r}")
    if params is not None:
        if (
            not isinstance(params, Sequence)
            or isinstance(params, str)
            or not all(isinstance(p, str) and p for p in params)
        ):
            raise ALBenchError(
                f"trainer.l2_params must be null or a list of parameter-name prefixes, got {params!r}"
            )
        if c is None:
            raise ALBenchError(
                "trainer.l2_params has no effect without trainer.l2_over_n: set both or neither"
            )
    if c is not None:
        opt = trainer_cfg.get("optimizer") or {}
        target = str(opt.get("_target_", ""))
        if target.endswith("AdamW") or opt.get("decoupled_weight_decay", False):
            raise ALBenchError(
                f"trainer.l2_over_n is an L2 loss term, which {target}'s decoupled weight decay is not: "
                "use torch.optim.Adam or SGD, or set trainer.l2_over_n=null"
            )


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def resolve_device(accelerator: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'gpu'/'cuda' require CUDA; 'cpu' is cpu."""
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ALBenchError(
                "trainer.accelerator=gpu but no CUDA device is available: use trainer.accelerator=cpu"
            )
        return torch.device("cuda")
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator == "cpu":
        return torch.device("cpu")
    raise ALBenchError(f"unknown trainer.accelerator {accelerator!r}; valid: auto, cpu, gpu")


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=r".*number of training batches.*")
    warnings.filterwarnings("ignore", message=r".*`training_step` returned.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")


def progress_bar_enabled(setting: bool | str | None) -> bool:
    """``trainer.progress_bar``: true / false, or ``auto`` = on when stderr is a terminal outside CI (the
    CLI turns ``auto`` off in multirun sweeps, whose jobs share one terminal)."""
    if isinstance(setting, str):
        if setting != "auto":
            raise ALBenchError(f"trainer.progress_bar={setting!r}: choose true, false or auto")
        return sys.stderr.isatty() and not os.environ.get("CI")
    return bool(setting)
