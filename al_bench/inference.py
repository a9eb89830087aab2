"""Batched inference over index sets: logits, features and MC-dropout probabilities, no augmentation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import numpy as np
import torch

from al_bench.data.base import ALDataModule
from al_bench.models.base import ALNet, enable_dropout_only


@contextmanager
def _mode(model: ALNet, mc_dropout: bool = False) -> Iterator[None]:
    """Eval mode (MC dropout: eval with dropout on) for the block, then the previous mode again."""
    was_training = model.training
    if mc_dropout:
        enable_dropout_only(model)
    else:
        model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def logits_and_features(
    model: ALNet, data: ALDataModule, indices: np.ndarray, split: str = "train", bf16: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, C], features [N, D]) float32 on CPU for global ``indices``, model in eval mode."""
    logits, feats = [], []
    with _mode(model), _autocast(data.device, bf16):
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
    with _mode(model), _autocast(data.device, bf16):
        for x, _, _ in data.eval_batches(indices):
            out.append(model(x).argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=data.device)


@torch.inference_mode()
def evaluate(
    model: ALNet, data: ALDataModule, split: str = "test", indices: np.ndarray | None = None
) -> dict:
    """{'acc', 'loss'} of ``model`` on a split (the whole test set by default)."""
    batches = data.test_batches() if indices is None else data.eval_batches(indices, split=split)
    correct, loss_sum, n = 0, 0.0, 0
    with _mode(model):
        for x, y, _ in batches:
            out = model(x).float()
            loss_sum += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            n += len(y)
    return {"acc": correct / max(n, 1), "loss": loss_sum / max(n, 1)}


@torch.inference_mode()
def mc_dropout_probs(
    model: ALNet,
    data: ALDataModule,
    indices: np.ndarray,
    n_samples: int,
    generator_seed: int,
    bf16: bool = False,
) -> torch.Tensor:
    """MC-dropout softmax probabilities [N, T, C] float32 on CPU.

    The deterministic trunk runs once per batch; the tail (which holds every dropout layer) runs on the
    trunk output repeated T times in one batch. Batch norm stays in eval mode. Dropout masks come from
    the global torch RNG, seeded with ``generator_seed`` for reproducibility.
    """
    out = []
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with _mode(model, mc_dropout=True), torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(generator_seed)  # the caller's global RNG state comes back after the block
        with _autocast(data.device, bf16):
            for x, _, _ in data.eval_batches(indices):
                z = model.trunk(x)
                b = z.shape[0]
                zt = z.unsqueeze(1).expand(b, n_samples, *z.shape[1:]).reshape(b * n_samples, *z.shape[1:])
                probs = model.tail(zt).float().softmax(-1).view(b, n_samples, -1)
                out.append(probs.cpu())
    if not out:
        return torch.zeros(0, n_samples, model.num_classes)
    return torch.cat(out)
