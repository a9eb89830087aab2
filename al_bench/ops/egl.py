"""Expected gradient length (Settles, Craven & Ray 2008) for the last linear layer of a classifier.

For logits z = W h + b and cross-entropy loss at label y, the gradients are
dL/dW = (p - e_y) h^T and dL/db = p - e_y, so with ||p - e_y||^2 = ||p||^2 - 2 p_y + 1:

    ||grad_W|| = ||p - e_y|| ||h||,   ||grad_(W, b)|| = ||p - e_y|| sqrt(||h||^2 + 1).

EGL(x) = sum_y p(y|x) ||grad L(x, y)||: the gradient norm expected under the model's own label distribution.
"""

from __future__ import annotations

import torch


def expected_gradient_length(probs: torch.Tensor, features: torch.Tensor, bias: bool = True) -> torch.Tensor:
    """EGL of the head's parameters: ``probs [N, C]`` (softmax of the head's logits), ``features [N, D]``
    (the head's input h) -> [N] float64.

    ``bias=True`` takes the gradient over (W, b), the whole ``nn.Linear`` head; ``bias=False`` over W only.
    """
    if probs.ndim != 2 or features.ndim != 2 or len(probs) != len(features):
        raise ValueError(
            f"need probs [N, C] and features [N, D], got {tuple(probs.shape)}, {tuple(features.shape)}"
        )
    p = probs.double()
    h_sq = features.double().square().sum(-1)  # [N]
    if bias:
        h_sq = h_sq + 1.0
    residual_sq = (p.square().sum(-1, keepdim=True) - 2.0 * p + 1.0).clamp_min(0.0)  # [N, C]: ||p - e_y||^2
    return (p * residual_sq.sqrt()).sum(-1) * h_sq.sqrt()
