"""The README's foundation-model commands (DINOv2, CLIP's image tower, ResNet-50) with the real timm archs at
random init: no hub here, so what is checked is everything but the downloaded numbers: the arch names resolve,
the documented input sizes build (ViT position embeddings for 98 / 224 px), the transform takes each model's
own normalisation, features have the model's width, a weights file saved from the same arch loads (the offline
route the README gives) and the hub route fails in one line naming the exact repository."""

from __future__ import annotations

import pytest
import timm
import torch

from al_bench.errors import ALBenchError
from al_bench.representations import BackboneSpec, create_backbone, resolve_backbone

pytestmark = pytest.mark.slow

#: (arch as in the README, model.input_size, feature width, normalisation mean of timm's pretrained config)
FOUNDATION = [
    ("vit_small_patch14_dinov2.lvd142m", 98, 384, (0.485, 0.456, 0.406)),
    ("vit_base_patch16_clip_224.openai", 224, 768, (0.48145466, 0.4578275, 0.40821073)),
    ("resnet50.a1_in1k", 224, 2048, (0.485, 0.456, 0.406)),
]


@pytest.mark.parametrize(("arch", "size", "width", "mean"), FOUNDATION, ids=[a for a, *_ in FOUNDATION])
def test_documented_foundation_archs_give_features_of_their_width(tmp_path, arch, size, width, mean):
    resolved = resolve_backbone(BackboneSpec(arch, pretrained=False, input_size=size, init_seed=0))
    assert resolved.input_size == size
    torch.testing.assert_close(torch.tensor(resolved.mean), torch.tensor(mean))
    backbone = create_backbone(resolved, seed=0).eval()
    assert backbone.num_features == width
    generator = torch.Generator().manual_seed(0)
    grey = torch.randint(0, 256, (2, 1, 28, 28), generator=generator, dtype=torch.uint8)
    with torch.inference_mode():
        features = backbone(grey.float() / 255)
    assert features.shape == (2, width) and torch.isfinite(features).all()

    # the offline route: the same arch's weights as a file (here: another random init) give those weights
    other = timm.create_model(arch, pretrained=False, num_classes=0, **_size_kwargs(resolved))
    path = tmp_path / "weights.pt"
    torch.save(other.state_dict(), path)
    spec = BackboneSpec(arch, weights=str(path), input_size=size)
    from_file = create_backbone(resolve_backbone(spec)).eval()
    with torch.inference_mode():
        expected = other.eval()(from_file.input(grey.float() / 255))
        torch.testing.assert_close(from_file(grey.float() / 255), expected)


@pytest.mark.parametrize("arch", [a for a, *_ in FOUNDATION])
def test_hub_weights_offline_fail_in_one_line_naming_the_repository(monkeypatch, arch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_backbone(BackboneSpec(arch, pretrained=True, input_size=224))
    with pytest.raises(ALBenchError) as e:
        create_backbone(resolved)
    msg = str(e.value)
    assert "\n" not in msg and f"huggingface.co/timm/{arch}" in msg and "model.weights=" in msg


def _size_kwargs(resolved) -> dict:
    return {"img_size": resolved.input_size} if resolved.fixed_input_size else {}
