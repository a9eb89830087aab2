"""LL4AL's loss-prediction loss (Yoo & Kweon, CVPR 2019, eq. 2): a pairwise margin ranking loss."""

from __future__ import annotations

import torch


def loss_prediction_ranking_loss(
    pred_loss: torch.Tensor, target_loss: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Scalar mean over B // 2 pairs of max(0, -sign(t_i - t_j) * (l_i - l_j) + margin).

    ``pred_loss [B]`` are the predicted losses l, ``target_loss [B]`` the true per-sample losses t (detached:
    no gradient reaches them from here). As the authors' code (Mephisto405/Learning-Loss-for-Active-Learning,
    ``LossPredLoss``), sample i is paired with sample B-1-i (the batch and its flip) for i < B // 2, and the
    sign is +1 when t_i > t_j and -1 otherwise (ties count as -1). Their code asserts an even batch; with the
    same formula an odd batch leaves its middle sample unpaired, which is what we do. A batch of fewer than
    two samples gives a zero that still depends on ``pred_loss`` (so backward works).
    """
    half = len(pred_loss) // 2
    if half == 0:
        return pred_loss.sum() * 0.0
    diff = (pred_loss - pred_loss.flip(0))[:half]
    target_diff = (target_loss - target_loss.flip(0))[:half].detach()
    sign = torch.where(target_diff > 0, 1.0, -1.0).to(diff.dtype)
    return torch.clamp(margin - sign * diff, min=0).sum() / half
