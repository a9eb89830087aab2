"""Shared by the pretraining tests: the real ``pretrain`` config composed tiny, and a k-NN probe."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.conftest import CONFIGS

#: seconds-long SimCLR: 40 synthetic 8x8 images, tiny timm ResNet at 16x16, 3 epochs of 2 batches.
TINY_SSL = [
    "dataset=synthetic",
    "dataset.n_train=40",
    "dataset.n_test=10",
    "dataset.num_classes=4",
    "ssl.arch=test_resnet",
    "ssl.input_size=16",
    "ssl.batch_size=16",
    "ssl.epochs=3",
    "ssl.head.out_dim=16",
    "ssl.accelerator=cpu",
    "verbose=false",
]


def compose_pretrain(tmp_path: Path, *overrides: str, tiny: bool = True) -> DictConfig:
    """The real ``pretrain`` config with ``overrides`` (after TINY_SSL), files under ``tmp_path``."""
    base = [f"paths.results_dir={tmp_path}/results", f"paths.data_dir={tmp_path}/data"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("pretrain", overrides=base + (TINY_SSL if tiny else []) + list(overrides))
    GlobalHydra.instance().clear()
    return cfg


def knn_accuracy(
    train: torch.Tensor, y_train: torch.Tensor, test: torch.Tensor, y_test: torch.Tensor, k: int = 20
) -> float:
    """Accuracy of a cosine k-NN majority vote: features [N, D] / [M, D], labels [N] / [M]."""
    sim = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    votes = F.one_hot(y_train[sim.topk(k, dim=1).indices], int(y_train.max()) + 1).sum(1)
    return float((votes.argmax(1) == y_test).float().mean())
