"""SimCLR (Chen et al. 2020): a timm encoder, a 2-layer projection head, the NT-Xent loss and one epoch of
training on two augmented views of every image."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from al_bench.errors import ALBenchError, TrainingDivergedError
from al_bench.pretrain import archs  # noqa: F401  (registers the CIFAR-stem ResNets with timm)
from al_bench.seeding import derive_seed


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised-temperature cross entropy of SimCLR, averaged over all 2N anchors.

    z1, z2 [N, d]: projections of two views of the same N images (row i of z1 and of z2 are a positive pair).
    With u = L2-normalised cat(z1, z2) [2N, d] and s = u u^T / temperature [2N, 2N], anchor k's loss is
    -log softmax over j != k of s[k, j], taken at its positive j = (k + N) mod 2N. Returns a scalar.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent wants two [N, d] tensors of one shape, got {tuple(z1.shape)}, {z2.shape}")
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    s = u @ u.T / temperature
    s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=s.device), float("-inf"))
    positives = (torch.arange(2 * n, device=s.device) + n) % (2 * n)
    return F.cross_entropy(s, positives)


class ProjectionHead(nn.Sequential):
    """Projection g [B, D] -> [B, out]: Linear(D, hidden) -> [BatchNorm] -> ReLU -> Linear(hidden, out).

    SCAN's CIFAR head (TypiClust's pretext model) has no batch norm; SimCLR's own code has one.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, batch_norm: bool = False) -> None:
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
        super().__init__(*layers)


class SimCLRNet(nn.Module):
    """Encoder f (pooled features [B, D]) followed by the projection head g: forward gives z [B, out]."""

    def __init__(self, encoder: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def create_encoder(arch: str, in_chans: int) -> nn.Module:
    """``timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)``: features [B, D].

    Unknown names raise ALBenchError with the closest registered names. Uses torch's global RNG for the
    initial weights: call it inside :func:`build_simclr` (seeded, global state restored) for a seeded init.
    """
    import timm

    check_arch(arch)
    return timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)


def check_arch(arch: str) -> None:
    """Raise ALBenchError unless ``arch`` is a registered timm model name (with close names as a hint)."""
    import timm

    if not timm.is_model(arch):
        close = [m for m in timm.list_models() if arch.lower() in m or m in arch.lower()][:8]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ALBenchError(f"unknown timm architecture ssl.arch={arch!r}{hint}; see timm.list_models()")


def build_simclr(
    arch: str, in_chans: int, hidden_dim: int | None, out_dim: int, batch_norm: bool, seed: int
) -> SimCLRNet:
    """Encoder + head with initial weights that depend only on ``seed`` (hidden_dim None: the encoder's D)."""
    with torch.random.fork_rng(devices=[]):  # timm initialises from the global RNG: seed a forked copy
        torch.manual_seed(derive_seed(seed, "ssl_init"))
        encoder = create_encoder(arch, in_chans)
        dim = int(encoder.num_features)
        head = ProjectionHead(dim, int(hidden_dim or dim), int(out_dim), batch_norm)
    return SimCLRNet(encoder, head)


def cosine_lr(epoch: int, epochs: int, base_lr: float, min_ratio: float, warmup_epochs: int = 0) -> float:
    """Learning rate of 0-based ``epoch``: linear warm-up, then cosine from base_lr to base_lr * min_ratio.

    SCAN's schedule with warmup 0 and min_ratio 1e-3 (its lr_decay_rate 0.1 cubed), set once per epoch.
    """
    if epoch < warmup_epochs:
        return base_lr * (epoch + 1) / warmup_epochs
    t = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
    low = base_lr * min_ratio
    return low + (base_lr - low) * (1 + math.cos(math.pi * t)) / 2


def train_epoch(
    net: SimCLRNet,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    batch_size: int,
    views: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    temperature: float,
    generator: torch.Generator,
    autocast: bool = False,
) -> float:
    """One pass over ``images`` [N, C, H, W] (uint8 or float, on the training device) in a random order.

    Each batch of b images becomes two views ``views(x, generator)`` -> [b, C, S, S] (normalised), encoded
    together (batch norm sees both), and takes one optimizer step on :func:`nt_xent`. Batches of
    ``batch_size``; the last partial one is dropped (SCAN's loader does), unless the set is smaller than a
    batch. Returns the mean loss; raises TrainingDivergedError on a non-finite loss.
    """
    n = images.shape[0]
    if n < 2:
        raise ALBenchError(f"SimCLR needs at least 2 training images, the dataset has {n}")
    order = torch.randperm(n, generator=generator, device=generator.device).to(images.device)
    step = min(batch_size, n)
    net.train()
    total, count = 0.0, 0
    for start in range(0, n - step + 1, step):
        x = images[order[start : start + step]]
        v = torch.cat([views(x, generator), views(x, generator)])
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=autocast):
            z = net(v)
        loss = nt_xent(z[:step].float(), z[step:].float(), temperature)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"the SimCLR loss became {loss.item()}: lower ssl.lr or raise ssl.temperature"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
        count += 1
    return total / count
