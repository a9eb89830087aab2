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
    """{'acc', 'loss', 'balanced_acc', 'worst_class_acc', 'macro_f1'} of ``model`` on a split (the whole test
    set by default); the class metrics as :func:`class_metrics` defines them.

    With a ``posterior`` (e.g. consistent MC dropout), predictions are its probabilities averaged over the
    T functions (Kirsch et al. 2019 test that way) and the loss is the NLL of that mean.
    """
    batches = data.test_batches() if indices is None else data.eval_batches(indices, split=split)
    correct, loss_sum, n = 0, 0.0, 0
    confusion: torch.Tensor | None = None
    with _mode(model):
        for x, y, _ in batches:
            if posterior is None:
                logp = torch.log_softmax(model(x).float(), -1)
            else:
                logp = posterior.probs_of(x).mean(1).clamp_min(1e-12).log()
            loss_sum += float(torch.nn.functional.nll_loss(logp, y, reduction="sum"))
            pred = logp.argmax(1)
            correct += int((pred == y).sum())
            n += len(y)
            batch_confusion = confusion_matrix(y, pred, logp.shape[1])
            confusion = batch_confusion if confusion is None else confusion + batch_confusion
    out = {"acc": correct / max(n, 1), "loss": loss_sum / max(n, 1)}
    return out | class_metrics(confusion if confusion is not None else torch.zeros(0, 0, dtype=torch.long))


def confusion_matrix(target: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts [C, C] (int64, CPU): entry [i, j] = samples of true class i predicted as j; target, pred [N]."""
    flat = target.long().cpu() * num_classes + pred.long().cpu()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def class_metrics(confusion: torch.Tensor) -> dict[str, float]:
    """Per-class summaries of a confusion matrix [C, C] (rows = true class), as scikit-learn defines them.

    balanced_acc: mean recall over the classes present in the targets (``balanced_accuracy_score``);
    worst_class_acc: the smallest of those recalls; macro_f1: mean F1 = 2 TP / (2 TP + FP + FN) over the
    classes that occur as target or prediction (``f1_score(average="macro")``, 0 where TP = 0). NaN when
    there are no samples.
    """
    cm = confusion.double()
    tp, support, predicted = cm.diagonal(), cm.sum(1), cm.sum(0)
    present = support > 0
    if not bool(present.any()):
        nan = float("nan")
        return {"balanced_acc": nan, "worst_class_acc": nan, "macro_f1": nan}
    recall = tp[present] / support[present]
    occurs = (support + predicted) > 0
    f1 = 2 * tp[occurs] / (support[occurs] + predicted[occurs])
    return {
        "balanced_acc": float(recall.mean()),
        "worst_class_acc": float(recall.min()),
        "macro_f1": float(f1.mean()),
    }
