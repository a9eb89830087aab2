"""SimCLR augmentations on whole batches of images in [0, 1], every random draw from an explicit generator.

The pipeline of Chen et al. 2020 (and SCAN's CIFAR pretext task): random resized crop, horizontal flip,
colour jitter applied with probability p (brightness, contrast, saturation, hue in a random order per sample),
random grayscale, optional Gaussian blur. Saturation, hue and grayscale need RGB and are skipped for other
channel counts (as torchvision does for one-channel images). Randomness is drawn on the generator's device
in shapes that depend only on the batch size, so one generator state gives one result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: ITU-R 601-2 luma weights, the ones torchvision's rgb_to_grayscale uses.
LUMA = (0.2989, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device):
    """[n] uniform draws in [low, high) from ``generator`` (on its device), moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=gen_device).to(device)
    return low + (high - low) * u


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of [B, C, H, W] to [B, C, size, size] (antialiased when shrinking); same size: x.

    This is the evaluation-time input transform of an encoder trained with :class:`SimCLRAugment` (whose crop
    of the whole image samples the same grid).
    """
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-1] or size < x.shape[-2]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None,
    device: torch.device,
    tries: int = 10,
) -> torch.Tensor:
    """Random-resized-crop boxes [n, 4] as (top, left, h, w) in pixels, torchvision's sampling rule.

    Area fraction ~ U(scale), log aspect ratio ~ U(log ratio); the first of ``tries`` candidates that fits
    the image is kept, placed uniformly. Boxes are continuous (no rounding to whole pixels); a sample whose
    candidates all fail gets the whole image.
    """
    area = height * width * _uniform(n * tries, scale[0], scale[1], generator, device).view(n, tries)
    log_r = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), generator, device).view(n, tries)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r)
    h = torch.sqrt(area / r)
    ok = (w <= width) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, device=device))
    rows = torch.arange(n, device=device)
    pick = first.clamp(min=0)
    h = torch.where(first >= 0, h[rows, pick], torch.full((n,), float(height), device=device))
    w = torch.where(first >= 0, w[rows, pick], torch.full((n,), float(width), device=device))
    top = _uniform(n, 0.0, 1.0, generator, device) * (height - h)
    left = _uniform(n, 0.0, 1.0, generator, device) * (width - w)
    return torch.stack([top, left, h, w], dim=1)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None):
    """Crop each image of [B, C, H, W] to its box [B, 4] (top, left, h, w) and resample to [B, C, size, size].

    Bilinear, pixel centres mapped as ``F.interpolate(align_corners=False)`` does, sampled from the whole
    image (the outermost output pixels blend with the image just outside the box, where torchvision's
    crop-then-resize repeats the box's edge), the image's border values repeated (never zero padding).
    ``flip`` [B] bool mirrors those samples left-right in the same pass.
    """
    b, _, height, width = x.shape
    top, left, h, w = boxes.to(x.dtype).unbind(1)
    sx = w / width
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma [B, 1, H, W] of RGB [B, 3, H, W]; other channel counts: the channel mean."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """clamp(f x) per sample; x [B, C, H, W] in [0, 1], f [B]."""
    return (x * f.view(-1, 1, 1, 1)).clamp_(0, 1)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean luma: clamp(f x + (1 - f) mean); f [B]."""
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    f = f.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * mean).clamp_(0, 1)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend RGB with its per-pixel luma: clamp(f x + (1 - f) gray); f [B]. Non-RGB input is returned."""
    if x.shape[1] != 3:
        return x
    f = f.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * grayscale(x)).clamp_(0, 1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB [B, 3, H, W] in [0, 1] -> HSV [B, 3, H, W], hue in [0, 1)."""
    r, g, b = x.unbind(1)
    maxc, argmax = x.max(1)
    minc = x.min(1).values
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-12), torch.zeros_like(maxc))
    d = delta.clamp(min=1e-12)
    h = torch.where(argmax == 0, (g - b) / d, torch.where(argmax == 1, 2 + (b - r) / d, 4 + (r - g) / d))
    h = torch.where(delta > 0, (h / 6) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV [B, 3, H, W] (hue in [0, 1)) -> RGB [B, 3, H, W]."""
    h, s, v = x.unbind(1)
    k = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = (k + 6 * h.unsqueeze(1)) % 6
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def adjust_hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by f [B] (fractions of a turn, in [-0.5, 0.5]). Non-RGB input is returned."""
    if x.shape[1] != 3:
        return x
    hsv = rgb_to_hsv(x)
    hsv[:, 0] = (hsv[:, 0] + f.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(hsv).clamp_(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W], per-sample sigma [B], odd ``kernel_size``, reflect padding."""
    b, c, h, w = x.shape
    half = kernel_size // 2
    t = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.view(-1, 1).to(x.dtype) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, K]
    y = x.reshape(1, b * c, h, w)
    pad = min(half, h - 1, w - 1)
    y = F.pad(y, (pad, pad, pad, pad), mode="reflect") if pad > 0 else y
    if pad < half:  # tiny images: replicate the rest
        y = F.pad(y, (half - pad,) * 4, mode="replicate")
    y = F.conv2d(y, k.view(b * c, 1, kernel_size, 1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, 1, kernel_size), groups=b * c)
    return y.view(b, c, h, w)


@dataclass(frozen=True)
class SimCLRAugment:
    """One random SimCLR view of each image: [B, C, H, W] in [0, 1] -> [B, C, size, size] in [0, 1].

    Defaults are SCAN's CIFAR settings (= SimCLR's colour distortion of strength 0.5, no blur).
    """

    size: int
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: float = 0.1  # kernel side as a fraction of ``size`` (SimCLR: 10%), made odd and >= 3

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"crop ratio must satisfy 0 < low <= high, got {self.ratio}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must lie in [0, 0.5], got {self.hue}")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dtype == torch.uint8:
            raise TypeError("SimCLRAugment takes float images in [0, 1]; divide uint8 images by 255 first")
        b, c, h, w = x.shape
        dev = x.device
        draw = lambda n, lo=0.0, hi=1.0: _uniform(n, lo, hi, generator, dev)  # noqa: E731
        boxes = crop_boxes(b, h, w, self.scale, self.ratio, generator, dev)
        flip = draw(b) < self.flip_p
        x = resized_crop(x, boxes, self.size, flip)
        # colour jitter: draws for all four factors and the order, whatever the channel count
        jitter = draw(b) < self.jitter_p
        factors = [
            draw(b, max(0.0, 1 - self.brightness), 1 + self.brightness),
            draw(b, max(0.0, 1 - self.contrast), 1 + self.contrast),
            draw(b, max(0.0, 1 - self.saturation), 1 + self.saturation),
            draw(b, -self.hue, self.hue),
        ]
        order = draw(4 * b).view(b, 4).argsort(1)  # a random permutation of the four ops per sample
        ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        for step in range(4):
            for op_id, op in enumerate(ops):
                rows = torch.nonzero(jitter & (order[:, step] == op_id)).flatten()
                if len(rows):
                    x[rows] = op(x[rows], factors[op_id][rows])
        gray = draw(b) < self.grayscale_p
        if c == 3 and bool(gray.any()):
            x = torch.where(gray.view(-1, 1, 1, 1), grayscale(x).expand_as(x), x)
        blur = draw(b) < self.blur_p
        sigma = draw(b, *self.blur_sigma)
        if bool(blur.any()):
            k = max(3, int(self.blur_kernel * self.size) // 2 * 2 + 1)
            rows = torch.nonzero(blur).flatten()
            x[rows] = gaussian_blur(x[rows], sigma[rows], k)
        return x
