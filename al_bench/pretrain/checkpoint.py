"""Encoder checkpoints (``al_bench-encoder-1``) and pretraining resume states: written atomically, read with
``torch.load(weights_only=True)`` (a checkpoint from someone else cannot run code).

An encoder checkpoint is a dict::

    {"format": "al_bench-encoder-1", "arch": <timm name>, "state_dict": {name: tensor}, "in_chans": int,
     "input_size": int, "mean": [float] * in_chans, "std": [float] * in_chans, "config": <resolved yaml>,
     "epoch": int}

The encoder is ``timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)``; its input is
an image scaled to [0, 1] when uint8 (float images as they are), normalised per channel with mean/std, then
resized bilinearly to input_size x input_size (:func:`al_bench.pretrain.augment.resize_to`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from al_bench.data.transforms import to_float_normalized
from al_bench.errors import ALBenchError, UnreadableStateError
from al_bench.pretrain.augment import resize_to
from al_bench.results import atomic_write_bytes

FORMAT = "al_bench-encoder-1"
STATE_FORMAT = "al_bench-ssl-state-1"
META_KEYS = ("format", "arch", "in_chans", "input_size", "mean", "std", "config", "epoch")


def _save(path: Path, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def _load(path: Path, what: str, fix: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ALBenchError(f"no {what} at {path}: {fix}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or holds objects weights_only refuses
        raise UnreadableStateError(f"{path} is not a readable {what} ({type(e).__name__}): {fix}") from None
    if not isinstance(obj, dict):
        raise UnreadableStateError(f"{path} is not a {what}: {fix}")
    return obj


def plain_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` as detached, contiguous CPU tensors (no views into live parameters)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


def save_encoder(
    path: str | Path,
    encoder: nn.Module,
    *,
    arch: str,
    in_chans: int,
    input_size: int,
    mean: list[float],
    std: list[float],
    config: str,
    epoch: int,
) -> Path:
    """Write ``encoder``'s weights and how to feed it as an ``al_bench-encoder-1`` file (temp + rename)."""
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"mean/std need {in_chans} values, got {mean}, {std}")
    obj = {
        "format": FORMAT,
        "arch": str(arch),
        "state_dict": plain_state_dict(encoder),
        "in_chans": int(in_chans),
        "input_size": int(input_size),
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "config": str(config),
        "epoch": int(epoch),
    }
    _save(Path(path), obj)
    return Path(path)


def read_encoder_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of ``path`` (weights_only), checked to be ``al_bench-encoder-1``."""
    fix = "give model.weights= / the encoder path of a file written by python -m al_bench.pretrain"
    obj = _load(Path(path), "al_bench encoder checkpoint", fix)
    if obj.get("format") != FORMAT:
        raise UnreadableStateError(f"{path} has format {obj.get('format')!r}, not {FORMAT!r}: {fix}")
    missing = [k for k in (*META_KEYS, "state_dict") if k not in obj]
    if missing:
        raise UnreadableStateError(f"{path} lacks {', '.join(missing)}: {fix}")
    return obj


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """(timm encoder in eval mode on ``device``, meta = the checkpoint without its state_dict)."""
    from al_bench.pretrain.simclr import create_encoder

    obj = read_encoder_checkpoint(path)
    with torch.random.fork_rng(devices=[]):  # the throwaway random init must not move the global RNG
        model = create_encoder(obj["arch"], int(obj["in_chans"]))
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UnreadableStateError(f"{path}: weights do not fit timm {obj['arch']!r}: {first}") from None
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    return model.to(device).eval(), meta


def prepare_input(x: torch.Tensor, meta: dict[str, Any]) -> torch.Tensor:
    """Images [B, C, H, W] (uint8 or float) -> the encoder's input [B, C, S, S] float, S = meta input_size."""
    if x.ndim != 4 or x.shape[1] != int(meta["in_chans"]):
        raise ALBenchError(
            f"the encoder takes [N, {meta['in_chans']}, H, W] images, got {tuple(x.shape)}: "
            "pretrain on this dataset (python -m al_bench.pretrain dataset=...)"
        )
    mean = torch.tensor(meta["mean"], device=x.device)
    std = torch.tensor(meta["std"], device=x.device)
    return resize_to(to_float_normalized(x, mean, std), int(meta["input_size"]))


def encode(
    model: nn.Module,
    meta: dict[str, Any],
    images: torch.Tensor,
    batch_size: int = 512,
    *,
    l2_normalize: bool = False,
) -> torch.Tensor:
    """Pooled encoder features [N, D] float32 on CPU of images [N, C, H, W] (uint8 or float, any device).

    Batches of ``batch_size`` on the model's device, in inference mode, the model in eval mode (restored
    after). ``l2_normalize``: rows scaled to unit norm (TypiClust's and ProbCover's SSL embedding).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], int(batch_size)):
                x = prepare_input(images[start : start + int(batch_size)].to(device), meta)
                out.append(model(x).float().cpu())
    finally:
        model.train(was_training)
    feats = torch.cat(out) if out else torch.zeros(0, 0)
    return F.normalize(feats, dim=1) if l2_normalize and len(feats) else feats


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a pretraining resume state (dicts, lists, numbers, strings, tensors only), temp + rename."""
    _save(Path(path), {"format": STATE_FORMAT, **state})


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a resume state written by :func:`save_state` (weights_only)."""
    fix = "delete it or pass overwrite=true to start this pretraining again"
    obj = _load(Path(path), "al_bench pretraining state", fix)
    if obj.get("format") != STATE_FORMAT:
        raise UnreadableStateError(f"{path} is not an {STATE_FORMAT} file: {fix}")
    return obj
