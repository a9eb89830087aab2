"""LL4AL's loss-prediction module (Yoo & Kweon, CVPR 2019), trained jointly with the classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from al_bench.models.base import ALNet
from al_bench.ops.ranking_loss import loss_prediction_ranking_loss


def _pooled(t: torch.Tensor) -> torch.Tensor:
    """[B, C, *spatial] -> [B, C] by global average pooling; [B, D] unchanged."""
    return t.flatten(2).mean(-1) if t.ndim > 2 else t


class LossPredictionModule(nn.Module):
    """Predicts each sample's loss from the net's intermediate features.

    For every tensor of ``net.intermediate_features(x)`` (a list of [B, ...]): global average pooling
    when it has spatial dims ([B, C, H, W] -> [B, C]), then Linear(dim, ``hidden``) -> ReLU; the
    concatenation goes through Linear(len * hidden, 1). The authors' LossNet does this on the four ResNet
    block outputs with hidden = 128.

    The layer sizes come from one probe forward of ``net`` (eval mode, no grad) on a zero input
    [2, *in_shape], so every parameter exists at construction and joins the optimizer.

    Training (see :meth:`training_loss`): ``weight`` * ranking loss (margin ``margin``) between predicted and
    true per-sample losses. The features fed to this module are detached once ``epoch > stop_grad_fraction *
    max_epochs`` (0-based epochs), as the authors' ``if epoch > epoch_loss`` with epoch_loss = 120 of 200:
    until then the ranking loss also trains the backbone, afterwards only this module.
    """

    def __init__(
        self,
        net: ALNet,
        in_shape: Sequence[int],
        hidden: int = 128,
        margin: float = 1.0,
        weight: float = 1.0,
        stop_grad_fraction: float = 0.6,
    ) -> None:
        super().__init__()
        self.margin = float(margin)
        self.weight = float(weight)
        self.stop_grad_fraction = float(stop_grad_fraction)
        param = next(net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                inter = net.intermediate_features(torch.zeros(2, *in_shape, device=device))
        finally:
            net.train(was_training)
        dims = [int(_pooled(t).shape[1]) for t in inter]
        self.branches = nn.ModuleList(nn.Sequential(nn.Linear(d, hidden), nn.ReLU()) for d in dims)
        self.out = nn.Linear(len(dims) * hidden, 1)
        self.to(device)

    def forward(self, inter: list[torch.Tensor]) -> torch.Tensor:
        """Predicted losses [B] from the intermediate features (a list of [B, ...])."""
        if len(inter) != len(self.branches):
            raise ValueError(f"expected {len(self.branches)} intermediate features, got {len(inter)}")
        h = torch.cat([branch(_pooled(t)) for branch, t in zip(self.branches, inter)], dim=1)
        return self.out(h).squeeze(1)

    def predict(self, inter: list[torch.Tensor]) -> torch.Tensor:
        """Predicted losses [B] (the caller chooses eval mode and inference mode)."""
        return self.forward(inter)

    def gradient_stopped(self, epoch: int, max_epochs: int | None) -> bool:
        """True when the features reaching this module are detached at ``epoch`` (0-based)."""
        if max_epochs is None or max_epochs <= 0:  # no epoch limit (e.g. max_steps only): never stopped
            return False
        return epoch > self.stop_grad_fraction * max_epochs

    def training_loss(
        self,
        inter: list[torch.Tensor],
        logits: torch.Tensor,
        per_sample_loss: torch.Tensor,
        y: torch.Tensor,
        epoch: int,
        max_epochs: int | None,
    ) -> torch.Tensor:
        """``weight`` * ranking loss of the predicted losses against ``per_sample_loss [B]`` (a scalar).

        The classification loss is added by the training module; this is only the auxiliary term.
        """
        if self.gradient_stopped(epoch, max_epochs):
            inter = [t.detach() for t in inter]
        pred = self.forward(inter)
        return self.weight * loss_prediction_ranking_loss(pred, per_sample_loss, self.margin)
