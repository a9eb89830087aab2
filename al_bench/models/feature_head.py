"""A classifier head over feature vectors: the whole model of frozen mode, and the tail of :class:`TimmNet`.

``hidden == ()`` (linear probe): trunk = identity, tail = Dropout(p), head = Linear(D, C).
``hidden == (h1, ..., hk)`` (small MLP): trunk = Linear(D, h1) + ReLU (deterministic), tail =
Dropout -> [Linear -> ReLU -> Dropout] per further width, head = Linear(hk, C). Every dropout layer sits in
the tail, so MC-dropout strategies (BALD, BatchBALD with consistent masks) work whenever ``dropout > 0``.
The dropout layers are :class:`~al_bench.models.fast_dropout.FastDropout` (an ``nn.Dropout`` whose CPU
training masks come from PCG64: a head step on cached features is mostly mask drawing otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import ALNet
from al_bench.models.fast_dropout import FastDropout


def head_layers(in_dim: int, hidden: Sequence[int], dropout: float) -> tuple[nn.Module, nn.Module, int]:
    """(deterministic first part, dropout-holding rest, output width) of the head stack described above."""
    widths = [int(h) for h in hidden]
    if any(h < 1 for h in widths):
        raise ValueError(f"head widths must be positive, got {list(hidden)}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    drop = FastDropout(dropout) if dropout > 0 else nn.Identity()
    if not widths:
        return nn.Identity(), drop, int(in_dim)
    first = nn.Sequential(nn.Linear(in_dim, widths[0]), nn.ReLU())
    rest: list[nn.Module] = [drop]
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        rest += [nn.Linear(d_in, d_out), nn.ReLU(), FastDropout(dropout) if dropout > 0 else nn.Identity()]
    return first, nn.Sequential(*rest), widths[-1]


class FeatureHead(ALNet):
    """Feature vectors [B, D] (``in_shape == (D,)``; other shapes are flattened) -> logits [B, C].

    ``features(x)`` is [B, D] for the linear head (the input features themselves, in eval mode) and [B, hk]
    with hidden layers; ``intermediate_features`` = [trunk output, features].
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_dim = int(math.prod(in_shape))
        self.flatten = nn.Flatten()
        self.first, self.rest, width = head_layers(in_dim, hidden, dropout)
        self.feature_dim = int(width)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(self.flatten(x))

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(z)
