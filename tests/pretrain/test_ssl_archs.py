"""The CIFAR-stem ResNets registered with timm for SCAN / TypiClust's SimCLR setting."""

from __future__ import annotations

import pytest
import timm
import torch

import al_bench.pretrain  # noqa: F401  (registers resnet18_cifar / resnet34_cifar)


def test_resnet18_cifar_is_scans_backbone():
    model = timm.create_model("resnet18_cifar", pretrained=False, num_classes=0, in_chans=3)
    # SCAN's models/resnet_cifar.resnet18 without its head: 11,168,832 parameters, 512 features
    assert sum(p.numel() for p in model.parameters()) == 11_168_832
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 512)
    assert model.forward_features(x).shape[-2:] == (4, 4)  # stride 8 overall; timm's resnet18 gives 1x1
    assert timm.create_model("resnet18", num_classes=0).forward_features(x).shape[-2:] == (1, 1)


def test_grey_input_and_no_pretrained_weights():
    model = timm.create_model("resnet34_cifar", num_classes=0, in_chans=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 512)
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("resnet18_cifar", pretrained=True)
