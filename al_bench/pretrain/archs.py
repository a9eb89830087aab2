"""timm names for the CIFAR-stem ResNets of SimCLR / SCAN (TypiClust's self-supervised backbone).

timm's ``resnet18`` has the ImageNet stem (7x7 stride-2 conv + max-pool): a 32x32 image reaches layer1 at
8x8. SimCLR's CIFAR experiments (Chen et al. 2020, appendix B.9) and SCAN's ``resnet_cifar`` use a 3x3
stride-1 conv and no max-pool instead. Importing this module registers ``resnet18_cifar`` / ``resnet34_cifar``
with timm: ``timm.create_model("resnet18_cifar", num_classes=0, in_chans=C)`` builds it like any timm model.
"""

from __future__ import annotations

from typing import Any

import timm
from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

_TIMM_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _cifar_resnet(layers: tuple[int, ...], pretrained: bool, **kwargs: Any) -> ResNet:
    if pretrained:
        raise ValueError(
            "the CIFAR-stem ResNets have no pretrained weights: pretrain them with al_bench.pretrain"
        )
    for key in _TIMM_ONLY:
        kwargs.pop(key, None)
    in_chans = int(kwargs.get("in_chans", 3))
    model = ResNet(block=BasicBlock, layers=layers, **kwargs)
    model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    model.feature_info[0]["reduction"] = 1
    for info in model.feature_info[1:]:
        info["reduction"] //= 4
    return model


if not timm.is_model("resnet18_cifar"):  # a second import (e.g. a reload) must not register twice

    @register_model
    def resnet18_cifar(pretrained: bool = False, **kwargs: Any) -> ResNet:
        """ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool): SCAN's and SimCLR's backbone."""
        return _cifar_resnet((2, 2, 2, 2), pretrained, **kwargs)

    @register_model
    def resnet34_cifar(pretrained: bool = False, **kwargs: Any) -> ResNet:
        """ResNet-34 with the CIFAR stem."""
        return _cifar_resnet((3, 4, 6, 3), pretrained, **kwargs)
