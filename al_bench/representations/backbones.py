"""timm backbones for al_bench: which network, which weights, and how a dataset's images are fed to it.

A :class:`BackboneSpec` is what the model config says (arch, pretrained, weights, input size, init seed);
:func:`resolve_backbone` turns it into a :class:`ResolvedBackbone` -- the transform and the identity of the
weights, enough to key a feature cache -- without building the network (a cache hit never builds it, never
touches the Hugging Face hub); :func:`create_backbone` builds it: a :class:`Backbone` module mapping images
[B, C, H, W] to timm's pooled pre-logit features [B, D].

Input transform (:class:`BackboneInput`), the same for end-to-end training and for frozen features:
undo the dataset's normalisation (``x * data_std + data_mean``: back to [0, 1] pixels; float datasets without
statistics are taken as they are), grey -> 3 channels by repetition (3 -> 1 by the channel mean), resize to
``input_size`` x ``input_size`` (``interpolation``, antialiased when shrinking), normalise with the backbone's
mean/std (timm's pretrained config, or the al_bench encoder checkpoint's).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

import al_bench.pretrain.archs  # noqa: F401  (registers the CIFAR-stem ResNets of ssl=simclr_paper with timm)
from al_bench.errors import ALBenchError
from al_bench.representations.weights import WeightsFile, load_backbone_weights, read_weights

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area")


@dataclass(frozen=True)
class BackboneSpec:
    """The backbone part of a model config.

    Attributes:
        arch: a timm model name (``timm.list_models()``), e.g. ``resnet18``, ``vit_small_patch14_dinov2``.
        pretrained: timm's hub weights (needs internet once, then the Hugging Face cache); ignored when
            ``weights`` is given.
        weights: a weights file or source (see :mod:`al_bench.representations.weights`); an al_bench encoder
            checkpoint also sets arch (when ``arch`` is empty), in_chans, input_size, mean and std.
        input_size: side of the square input images are resized to; None: the arch's pretrained size.
        init_seed: the random initialisation of a backbone without weights (frozen mode: fixed, so that every
            AL seed shares one feature cache).
        interpolation: resize mode, one of :data:`INTERPOLATIONS`.
    """

    arch: str
    pretrained: bool = False
    weights: str | None = None
    input_size: int | None = 96
    init_seed: int = 0
    interpolation: str = "bilinear"

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any]) -> BackboneSpec:
        """The spec of a ``configs/model/timm.yaml``-style node (other keys are ignored)."""
        get = model_cfg.get
        size = get("input_size", 96)
        return cls(
            arch=str(get("arch") or ""),
            pretrained=bool(get("pretrained", False)),
            weights=None if get("weights") in (None, "") else str(get("weights")),
            input_size=None if size is None else int(size),
            init_seed=int(get("init_seed", 0) or 0),
            interpolation=str(get("interpolation", "bilinear")),
        )


@dataclass
class ResolvedBackbone:
    """A spec with everything known that does not need the network: transform and weight identity."""

    spec: BackboneSpec
    arch: str
    in_chans: int
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: dict[str, Any]  # identity of the weights (file hash, hub id, or random-init seed + versions)
    fixed_input_size: bool = False
    pretrained_size: int = 224
    weights: WeightsFile | None = field(default=None, repr=False)

    @property
    def transform(self) -> dict[str, Any]:
        """The input transform as plain data (part of the feature-cache key)."""
        return {
            "in_chans": self.in_chans,
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.spec.interpolation,
        }


def _pretrained_cfg(arch: str) -> dict[str, Any]:
    if not timm.is_model(arch):
        stem = arch.split(".")[0]
        close = difflib.get_close_matches(stem, timm.list_models(), n=4, cutoff=0.6)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ALBenchError(
            f"unknown timm model {arch!r}{hint}; list them with "
            f"python -c \"import timm; print(timm.list_models('*{stem[:8]}*'))\""
        )
    cfg = timm.models.get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


def resolve_backbone(spec: BackboneSpec) -> ResolvedBackbone:
    """Resolve ``spec``: read its weights file (if any), the arch's pretrained config, the transform.

    An al_bench encoder checkpoint's arch must equal ``spec.arch`` when that is given (else it is taken from
    the checkpoint); its in_chans, input_size, mean and std define the transform. Raises ALBenchError (one
    line) for an unknown arch, an unreadable file or an unknown interpolation mode.
    """
    if spec.interpolation not in INTERPOLATIONS:
        raise ALBenchError(
            f"model.interpolation={spec.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
        )
    wf = read_weights(spec.weights) if spec.weights else None
    arch = spec.arch
    if wf is not None and wf.is_encoder:
        saved = str(wf.meta["arch"])
        if arch and arch != saved:
            raise ALBenchError(
                f"model.weights={spec.weights} is an encoder of timm arch {saved!r}, not "
                f"model.arch={arch!r}: set model.arch={saved} (or leave it empty)"
            )
        arch = saved
    if not arch:
        raise ALBenchError("model.arch is empty: give a timm model name, e.g. model.arch=resnet18")
    pcfg = _pretrained_cfg(arch)
    pretrained_size = int((pcfg.get("input_size") or (3, 224, 224))[-1])
    if wf is not None and wf.is_encoder:
        in_chans, size = int(wf.meta["in_chans"]), int(wf.meta["input_size"])
        mean = tuple(float(m) for m in wf.meta["mean"])
        std = tuple(float(s) for s in wf.meta["std"])
    else:
        in_chans = 3
        size = pretrained_size if spec.input_size is None else int(spec.input_size)
        mean = tuple(float(m) for m in pcfg.get("mean", (0.485, 0.456, 0.406)))
        std = tuple(float(s) for s in pcfg.get("std", (0.229, 0.224, 0.225)))
    if size < 1:
        raise ALBenchError(f"model.input_size must be a positive integer (or null), got {size}")
    if wf is not None:
        source: dict[str, Any] = {"weights_sha256": wf.sha256}
    elif spec.pretrained:
        source = {"timm_hub": pcfg.get("hf_hub_id") or pcfg.get("url") or arch, "tag": pcfg.get("tag")}
    else:  # random init: timm's initialisers may change between versions
        source = {"random_init_seed": spec.init_seed, "timm": timm.__version__, "torch": torch.__version__}
    return ResolvedBackbone(
        spec=spec,
        arch=arch,
        in_chans=in_chans,
        input_size=size,
        mean=mean,
        std=std,
        source=source,
        fixed_input_size=bool(pcfg.get("fixed_input_size", False)),
        pretrained_size=pretrained_size,
        weights=wf,
    )


def _hub_error(arch: str, err: Exception) -> ALBenchError:
    from huggingface_hub.constants import HF_HUB_CACHE

    pcfg = _pretrained_cfg(arch)
    hub = pcfg.get("hf_hub_id")
    where = f"https://huggingface.co/{hub}" if hub else (pcfg.get("url") or "its source")
    first = " ".join(str(err).split())[:100]
    return ALBenchError(
        f"could not fetch timm's pretrained weights of {arch!r} ({type(err).__name__}: {first}); on a "
        f"machine with internet run python -c \"import timm; timm.create_model('{arch}', pretrained=True)\" "
        f"and copy its Hugging Face cache into {HF_HUB_CACHE} here, or download the weights file from "
        f"{where} and pass model.weights=<file>"
    )


def create_timm_backbone(resolved: ResolvedBackbone, seed: int | None = None) -> nn.Module:
    """The timm network of ``resolved`` with ``num_classes=0`` (its forward gives pooled pre-logits [B, D]).

    ``seed``: the random initialisation is drawn under ``torch.manual_seed(seed)`` in a forked RNG (the global
    RNG is left as it was); None draws from the global RNG as it stands (the loop seeds it per cycle).
    """
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": resolved.in_chans}
    if resolved.fixed_input_size and resolved.input_size != resolved.pretrained_size:
        kwargs["img_size"] = resolved.input_size  # ViT-like: position embeddings for this size
    hub = resolved.spec.pretrained and resolved.weights is None
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        try:
            model = timm.create_model(resolved.arch, pretrained=hub, **kwargs)
        except (OSError, RuntimeError, ValueError) as e:
            if hub:
                raise _hub_error(resolved.arch, e) from None
            raise ALBenchError(f"could not build timm model {resolved.arch!r}: {e}") from None
    if resolved.weights is not None:
        load_backbone_weights(model, resolved.weights, resolved.arch)
    active = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
    if active:
        raise ALBenchError(
            f"timm model {resolved.arch!r} has dropout inside its backbone ({active[0]}); al_bench keeps "
            "every dropout layer in the tail (model.dropout): build it without (drop_rate=0)"
        )
    return model


class BackboneInput(nn.Module):
    """Dataset-normalised images [B, C, H, W] -> the backbone's input [B, in_chans, S, S] (see module doc).

    ``data_mean``/``data_std`` (per channel, of [0, 1] pixels; None: inputs are [0, 1] pixels or float data
    taken as it is). Statistics are non-persistent buffers: they never enter a state dict.
    """

    def __init__(
        self,
        in_chans: int,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        data_mean: Sequence[float] | None = None,
        data_std: Sequence[float] | None = None,
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        self.in_chans = int(in_chans)
        self.input_size = int(input_size)
        self.interpolation = interpolation
        self.undo = data_mean is not None and data_std is not None
        if self.undo:
            self.register_buffer("data_mean", _column(data_mean), persistent=False)
            self.register_buffer("data_std", _column(data_std), persistent=False)
        self.register_buffer("mean", _column(mean), persistent=False)
        self.register_buffer("std", _column(std), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.undo:
            x = x * self.data_std + self.data_mean
        c = x.shape[1]
        if c != self.in_chans:
            if c == 1:
                x = x.expand(-1, self.in_chans, -1, -1)
            elif self.in_chans == 1:
                x = x.mean(1, keepdim=True)
            else:
                raise ALBenchError(f"the backbone takes {self.in_chans}-channel images, the data has {c}")
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            smaller = min(x.shape[-2:]) > self.input_size
            align = False if self.interpolation in ("bilinear", "bicubic") else None
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode=self.interpolation,
                align_corners=align,
                antialias=smaller and self.interpolation in ("bilinear", "bicubic"),
            )
        return (x - self.mean) / self.std


def _column(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float32).view(1, -1, 1, 1)


class Backbone(nn.Module):
    """``input`` (:class:`BackboneInput`) then the timm network: images [B, C, H, W] -> features [B, D]."""

    def __init__(self, input: BackboneInput, model: nn.Module) -> None:
        super().__init__()
        self.input = input
        self.model = model
        self.num_features = int(model.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.input(x))


def create_backbone(
    resolved: ResolvedBackbone,
    data_mean: Sequence[float] | None = None,
    data_std: Sequence[float] | None = None,
    seed: int | None = None,
) -> Backbone:
    """:class:`Backbone` of ``resolved`` for inputs normalised with ``data_mean``/``data_std`` (see
    :class:`BackboneInput`); ``seed`` as in :func:`create_timm_backbone`."""
    adapter = BackboneInput(
        resolved.in_chans,
        resolved.input_size,
        resolved.mean,
        resolved.std,
        data_mean,
        data_std,
        resolved.spec.interpolation,
    )
    return Backbone(adapter, create_timm_backbone(resolved, seed))
