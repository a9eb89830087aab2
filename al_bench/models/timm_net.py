"""Any timm backbone as an :class:`ALNet`: pooled pre-logit features -> dropout (or an MLP) -> linear head.

``model=timm model.arch=<timm name> model.pretrained=true|false model.weights=<file or null>``. The trunk is
the input transform (:class:`~al_bench.representations.backbones.BackboneInput`: undo the dataset's
normalisation, grey -> 3 channels, resize to ``input_size``, the backbone's own mean/std) and the timm network
built with ``num_classes=0`` (+ the first hidden layer of an MLP head); the tail holds every dropout layer
(:func:`~al_bench.models.feature_head.head_layers`). The backbone may contain no active dropout.

This is the end-to-end network (every parameter trains). ``model.freeze=true`` makes :mod:`al_bench.build`
train a :class:`~al_bench.models.feature_head.FeatureHead` with the same head on cached features instead;
``freeze``, ``init_seed`` and ``extract_batch_size`` are read there and accepted and ignored here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.models.feature_head import head_layers
from al_bench.representations.backbones import BackboneSpec, create_backbone, resolve_backbone


class TimmNet(ALNet):
    """A timm backbone with an al_bench head, for images ``in_shape`` = [C, H, W].

    Args:
        arch, pretrained, weights, input_size, interpolation: the backbone (see
            :class:`~al_bench.representations.backbones.BackboneSpec`).
        dropout: dropout before the head (and after each hidden layer); > 0 for MC-dropout strategies.
        head_hidden: widths of hidden layers between the pooled features and the head ([] = linear head).
        data_mean, data_std: the dataset's per-channel statistics (of [0, 1] pixels) that the data module
            normalised with; :func:`al_bench.build.build_model` passes them. None: inputs are [0, 1] pixels.

    ``trunk(x)`` -> [B, D] pooled backbone features (or the first hidden layer); ``features(x)`` -> [B, D']
    the head's input; ``intermediate_features`` -> [trunk output, features] (LL4AL).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        arch: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        input_size: int | None = 96,
        dropout: float = 0.2,
        head_hidden: Sequence[int] = (),
        interpolation: str = "bilinear",
        data_mean: Sequence[float] | None = None,
        data_std: Sequence[float] | None = None,
        freeze: bool = False,
        init_seed: int = 0,
        extract_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ALBenchError(
                f"model=timm needs images [C, H, W]; this dataset's inputs are {list(in_shape)}"
            )
        spec = BackboneSpec(arch or "", bool(pretrained), weights, input_size, int(init_seed), interpolation)
        resolved = resolve_backbone(spec)
        channels = int(in_shape[0])
        if channels not in (1, resolved.in_chans) and resolved.in_chans != 1:
            raise ALBenchError(
                f"{resolved.arch} takes {resolved.in_chans}-channel images, the data has {channels} channels"
            )
        self.arch = resolved.arch
        self.backbone = create_backbone(resolved, data_mean, data_std, seed=None)
        self.first, self.rest, width = head_layers(self.backbone.num_features, head_hidden, dropout)
        self.feature_dim = int(width)
        self.num_classes = int(num_classes)
        self.head = torch.nn.Linear(self.feature_dim, self.num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(self.backbone(x))

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(z)
