"""Minimax-entropy pieces of MAL (Ebrahimi et al. 2021), after MME (Saito et al., ICCV 2019).

A cosine classifier scores L2-normalised features z [B, D] against class prototypes W [C, D] at temperature
T: logits = cos(z, w_c) / T [B, C]. On unlabeled data the classifier *maximises* the conditional entropy
(its prototypes move towards the unlabeled features) while the encoder *minimises* it (the features cluster
around the prototypes). One loss, :func:`minimax_entropy_loss` = -mean entropy, does both when a gradient
reversal layer sits between the encoder and the classifier: the classifier descends on -H, the encoder on +H.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; the backward pass multiplies the gradient by -``scale``. [*] -> [*]."""
    return _GradReverse.apply(x, float(scale))


def cosine_logits(features: torch.Tensor, prototypes: torch.Tensor, temperature: float) -> torch.Tensor:
    """cos(features_b, prototypes_c) / temperature: features [B, D], prototypes [C, D] -> logits [B, C]."""
    return F.normalize(features, dim=1) @ F.normalize(prototypes, dim=1).T / temperature


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of softmax(logits), computed from log-softmax. [B, C] -> [B]."""
    log_p = logits.log_softmax(-1)
    return -(log_p.exp() * log_p).sum(-1)


def minimax_entropy_loss(logits_unlabeled: torch.Tensor) -> torch.Tensor:
    """-mean_b H(softmax(logits_b)): minimising it maximises the entropy. [B, C] -> scalar.

    Put :func:`grad_reverse` on the features before the classifier: the classifier then maximises the
    entropy and the encoder minimises it, in one backward pass.
    """
    return -entropy_from_logits(logits_unlabeled).mean()
