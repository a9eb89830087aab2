"""Uncertainty scores from softmax probabilities ``probs [N, C]`` (rows sum to 1). Higher = query first."""

from __future__ import annotations

import torch


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats: -sum_c p_c log p_c, with 0 log 0 = 0. [N, C] -> [N]."""
    return -torch.special.xlogy(probs, probs).sum(-1)


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 - max_c p_c. [N, C] -> [N]."""
    return 1.0 - probs.max(-1).values


def margin(probs: torch.Tensor) -> torch.Tensor:
    """Negative margin between the two most probable classes: -(p_(1) - p_(2)), so that a small margin
    scores high. [N, C] -> [N], in [-1, 0]."""
    if probs.shape[-1] < 2:
        raise ValueError("margin needs at least two classes")
    top2 = probs.topk(2, dim=-1).values
    return -(top2[..., 0] - top2[..., 1])
