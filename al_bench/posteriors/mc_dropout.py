"""Consistent MC dropout: T dropout functions of one trained network, each applied to every input.

Pass t is ONE function: every dropout layer draws one mask per pass, shared by every input, every batch and
every index set that the same :class:`MCDropoutPosterior` scores (batchbald_redux's ``ConsistentMCDropout``).
Joint quantities over several inputs (BatchBALD's joint mutual information, EPIG's predictive information)
need exactly this: with a fresh mask per (input, pass), two identical images get two different "weight
samples" and look like independent evidence.

Speed: the deterministic trunk of an :class:`~al_bench.models.base.ALNet` runs once per batch; the tail,
which holds every dropout layer, runs on the trunk output repeated T times in one batch ([B * T, ...],
sample-major). Each dropout layer is put in eval mode (the identity) and a forward hook multiplies its
output by the pass's mask, viewed as [B, T, *mask_shape]. Batch norm stays in eval mode throughout.

Mask shapes per layer, for an input [B * T, *S] to the layer:

- ``nn.Dropout``: elementwise, [T, *S];
- ``nn.Dropout1d`` / ``nn.Dropout2d`` / ``nn.Dropout3d``: one draw per channel, [T, S[0], 1, ...];

each entry Bernoulli(1 - p) / (1 - p) (inverted dropout, as in training). Masks are drawn lazily, the first
time a layer is reached, from the posterior's own ``torch.Generator`` (layers in forward order), then kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from al_bench.data.base import ALDataModule
from al_bench.inference import autocast
from al_bench.models.base import ALNet

_CHANNEL_DROPOUT = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)

#: elements of the repeated trunk output [rows * T, ...] fed to the tail at once (128 MiB in float32): a conv
#: trunk output such as BatchBALD's CNN's [32, 24, 24] at T = 100 would otherwise take 7 GiB per 1,024 inputs.
MAX_TAIL_ELEMENTS = 1 << 21


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """Every dropout layer of ``model`` with p > 0, in module order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


class MCDropoutPosterior:
    """T consistent MC-dropout functions of ``model``; ``probs(data, indices)`` -> [N, T, C].

    Args:
        model: a trained :class:`ALNet` whose dropout layers all sit in its tail.
        n_samples: T, the number of functions (passes).
        generator: a seeded CPU ``torch.Generator`` (the selection generator's child); the masks are drawn
            from it once and reused for every index set scored by this object.
        bf16: tail and trunk in bf16 autocast (CUDA only).
    """

    def __init__(self, model: ALNet, n_samples: int, generator: torch.Generator, bf16: bool = False) -> None:
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        layers = dropout_layers(model)
        if not layers:
            raise ValueError("MC dropout needs a model with dropout p > 0; this model has none")
        for m in layers:
            if not isinstance(m, (nn.Dropout, *_CHANNEL_DROPOUT)):
                raise ValueError(f"consistent MC dropout supports nn.Dropout and nn.DropoutNd, not {m}")
        self.model = model
        self.n_samples = int(n_samples)
        self.generator = generator
        self.bf16 = bf16
        self._layers = layers
        self._masks: dict[int, torch.Tensor] = {}  # layer position -> [T, *mask_shape]
        self._in_tail = False

    # ---- masks ---------------------------------------------------------------------------------------
    def mask(self, position: int, sample_shape: torch.Size, device: torch.device) -> torch.Tensor:
        """The [T, *mask_shape] mask of dropout layer ``position`` (drawn on first use, then fixed)."""
        layer = self._layers[position]
        shape = _mask_shape(layer, sample_shape)
        if position not in self._masks:
            keep = 1.0 - float(layer.p)
            draw = torch.rand((self.n_samples, *shape), generator=self.generator) < keep
            self._masks[position] = draw.float().div_(keep)
        m = self._masks[position]
        if tuple(m.shape[1:]) != shape:
            raise ValueError(
                f"dropout layer {position} got inputs of shape {tuple(sample_shape)} after masks of shape "
                f"{tuple(m.shape[1:])}: one posterior serves inputs of one shape"
            )
        return m.to(device)

    def _hook(self, position: int):
        def apply(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            if not self._in_tail:
                raise ValueError(
                    "a dropout layer ran in the model's trunk: consistent MC dropout needs every dropout "
                    "layer in ALNet.tail (see al_bench.models.base.ALNet)"
                )
            x = inputs[0]
            b = x.shape[0] // self.n_samples
            mask = self.mask(position, x.shape[1:], x.device)
            return (x.view(b, self.n_samples, *x.shape[1:]) * mask.to(x.dtype)).view_as(x)

        return apply

    @contextmanager
    def _active(self) -> Iterator[None]:
        """Eval mode everywhere (dropout = identity, batch norm frozen) with the mask hooks installed."""
        was_training = self.model.training
        self.model.eval()
        handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(self._layers)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)

    # ---- sampling ------------------------------------------------------------------------------------
    def logits_from_trunk(self, z: torch.Tensor) -> torch.Tensor:
        """Tail logits [B, T, C] of trunk outputs ``z`` [B, ...] under the T functions (hooks active).

        Rows go through the tail in chunks of at most :data:`MAX_TAIL_ELEMENTS` repeated elements.
        """
        t = self.n_samples
        rows = max(1, MAX_TAIL_ELEMENTS // max(1, t * z[0].numel())) if len(z) else 1
        out = []
        self._in_tail = True
        try:
            for chunk in z.split(rows):
                b = chunk.shape[0]
                zt = chunk.unsqueeze(1).expand(b, t, *chunk.shape[1:]).reshape(b * t, *chunk.shape[1:])
                out.append(self.model.tail(zt).view(b, t, -1))
        finally:
            self._in_tail = False
        return torch.cat(out) if out else z.new_zeros(0, t, self.model.num_classes)

    @torch.inference_mode()
    def probs_of(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities [B, T, C] (float32) of a batch of normalised inputs ``x``."""
        with self._active(), autocast(x.device, self.bf16):
            return self.logits_from_trunk(self.model.trunk(x)).float().softmax(-1)

    @torch.inference_mode()
    def probs(self, data: ALDataModule, indices: np.ndarray, split: str = "train") -> torch.Tensor:
        """Softmax probabilities [N, T, C] float32 on CPU for global ``indices`` of ``split``."""
        out = []
        with self._active(), autocast(data.device, self.bf16):
            for x, _, _ in data.eval_batches(indices, split=split):
                out.append(self.logits_from_trunk(self.model.trunk(x)).float().softmax(-1).cpu())
        if not out:
            return torch.zeros(0, self.n_samples, self.model.num_classes)
        return torch.cat(out)


def _mask_shape(layer: nn.Module, sample_shape: torch.Size) -> tuple[int, ...]:
    """Per-pass mask shape of ``layer`` for one input of ``sample_shape``: elementwise or per channel."""
    if isinstance(layer, _CHANNEL_DROPOUT):
        return (int(sample_shape[0]),) + (1,) * (len(sample_shape) - 1)
    return tuple(int(s) for s in sample_shape)


def mc_dropout_probs(
    model: ALNet,
    data: ALDataModule,
    indices: np.ndarray,
    n_samples: int,
    generator_seed: int,
    bf16: bool = False,
) -> torch.Tensor:
    """Consistent MC-dropout probabilities [N, T, C] (float32, CPU) of ``indices``; masks from the seed."""
    generator = torch.Generator().manual_seed(int(generator_seed))
    return MCDropoutPosterior(model, n_samples, generator, bf16).probs(data, indices)
