"""Batched tensor transforms: normalisation and training augmentation on whole batches (any device)."""

from __future__ import annotations

import torch


def to_float_normalized(x: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float in [0, 1], then (x - mean) / std per channel (float input: normalised)."""
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    if mean is not None and std is not None:
        x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    return x


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample random crop after zero padding, like torchvision's RandomCrop(size, padding). [B,C,H,W]."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    xp = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    gen_device = generator.device if generator is not None else x.device
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=gen_device).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=gen_device).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B,1,H,1]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B,1,1,W]
    bidx = torch.arange(b, device=x.device)[:, None, None, None]
    cidx = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return xp[bidx, cidx, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Flip each sample of [B, C, H, W] left-right with probability p."""
    gen_device = generator.device if generator is not None else x.device
    flip = (torch.rand(x.shape[0], generator=generator, device=gen_device) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def augment_batch(
    x: torch.Tensor, kind: str, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply the named training augmentation: 'none', 'flip', 'crop', 'crop_flip'."""
    if kind in ("crop", "crop_flip"):
        x = random_crop(x, padding, generator)
    if kind in ("flip", "crop_flip"):
        x = random_hflip(x, generator)
    if kind not in ("none", "flip", "crop", "crop_flip"):
        raise ValueError(f"unknown augmentation {kind!r}; valid: none, flip, crop, crop_flip")
    return x
