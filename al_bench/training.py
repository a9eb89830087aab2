"""Training one model on the labeled set: a fresh Lightning Trainer per call, quiet, on the run's device."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import hydra.utils
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.module import ALModule, StopAtTrainAccuracy
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
) -> ALModule:
    """Fit ``net`` on global ``indices`` with the run's recipe; a fresh Lightning Trainer per call."""
    tcfg = cfg.trainer
    torch.manual_seed(derive_seed(seed, purpose, cycle))
    batches = data.train_batches(
        indices,
        torch_generator(seed, "shuffle:" + purpose, cycle),
        labels=labels,
        drop_last=bool(tcfg.get("drop_last", False)),
    )
    optimizer = hydra.utils.instantiate(tcfg.optimizer)
    scheduler = hydra.utils.instantiate(tcfg.scheduler) if tcfg.get("scheduler") else None
    if data.device.type == "cuda" and tcfg.get("channels_last", True) and len(data.in_shape) == 3:
        net = net.to(memory_format=torch.channels_last)
    module = ALModule(net, optimizer, scheduler, aux=aux, gradient_clip_val=tcfg.get("gradient_clip_val"))
    all_callbacks = list(callbacks or [])
    if tcfg.get("stop_at_train_acc"):
        all_callbacks.append(StopAtTrainAccuracy(float(tcfg.stop_at_train_acc)))
    trainer = pl.Trainer(
        max_epochs=int(tcfg.max_epochs),
        min_epochs=int(tcfg.get("min_epochs") or 0) or None,
        accelerator="gpu" if data.device.type == "cuda" else "cpu",
        devices=tcfg.get("devices", 1),
        strategy=tcfg.get("strategy", "auto"),
        precision=tcfg.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=bool(tcfg.get("progress_bar", False)),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=all_callbacks,
        default_root_dir=str(Path(cfg.paths.run_dir)),
    )
    if tcfg.get("compile", False):
        net.compile()
    trainer.fit(module, train_dataloaders=batches)
    net.to(data.device)  # Lightning's teardown moves the module to the CPU
    if aux is not None:
        aux.to(data.device)
    return module


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
