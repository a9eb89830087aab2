"""Batched inference over index sets: logits, features, predictions and evaluation, no augmentation.

MC-dropout probabilities come from :class:`al_bench.posteriors.MCDropoutPosterior` (consistent masks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

import numpy as np
import torch

from al_bench.data.base import ALDataModule
from al_bench.models.base import ALNet

if TYPE_CHECKING:
    from al_bench.posteriors.mc_dropout import MCDropoutPosterior


@contextmanager
def _mode(model: ALNet) -> Iterator[None]:
    """Eval mode for the block, then the previous mode again."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA when asked, else a no-op context."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def logits_and_features(
    model: ALNet, data: ALDataModule, indices: np.ndarray, split: str = "train", bf16: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, C], features [N, D]) float32 on CPU for global ``indices``, model in eval mode."""
    logits, feats = [], []
    with _mode(model), autocast(data.device, bf16):
        for x, _, _ in data.eval_batches(indices, split=split):
            out, h = model.forward_with_features(x)
            logits.append(out.float().cpu())
            feats.append(h.float().cpu())
    if not logits:
        return torch.zeros(0, model.num_classes), torch.zeros(0, model.feature_dim)
    return torch.cat(logits), torch.cat(feats)


@torch.inference_mode()
def predicted_labels(
    model: ALNet, data: ALDataModule, indices: np.ndarray, bf16: bool = False
) -> torch.Tensor:
    """argmax predictions [N] (int64, on the data device) for global ``indices``; no copy to CPU."""
    out = []
    with _mode(model), autocast(data.device, bf16):
        for x, _, _ in data.eval_batches(indices):
            out.append(model(x).argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=data.device)


@torch.inference_mode()
def evaluate(
    model: ALNet,
    data: ALDataModule,
    split: str = "test",
    indices: np.ndarray | None = None,
    posterior: MCDropoutPosterior | None = None,
) -> dict:
    """{'acc', 'loss'} of ``model`` on a split (the whole test set by default).

    With a ``posterior`` (e.g. consistent MC dropout), predictions are its probabilities averaged over the
    T functions (Kirsch et al. 2019 test that way) and the loss is the NLL of that mean.
    """
    batches = data.test_batches() if indices is None else data.eval_batches(indices, split=split)
    correct, loss_sum, n = 0, 0.0, 0
    with _mode(model):
        for x, y, _ in batches:
            if posterior is None:
                logp = torch.log_softmax(model(x).float(), -1)
            else:
                logp = posterior.probs_of(x).mean(1).clamp_min(1e-12).log()
            loss_sum += float(torch.nn.functional.nll_loss(logp, y, reduction="sum"))
            correct += int((logp.argmax(1) == y).sum())
            n += len(y)
    return {"acc": correct / max(n, 1), "loss": loss_sum / max(n, 1)}
