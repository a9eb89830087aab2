"""TimmNet: any timm backbone as an ALNet (input transform, head, dropout in the tail), its weights files, and
how build_model feeds it the dataset's statistics. Tiny timm test models, pretrained=false, small inputs."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from al_bench.build import build_model
from al_bench.errors import ALBenchError
from al_bench.models.base import enable_dropout_only, has_dropout
from al_bench.models.feature_head import FeatureHead
from al_bench.models.timm_net import TimmNet
from al_bench.representations import (
    BackboneInput,
    BackboneSpec,
    create_backbone,
    load_backbone_weights,
    resolve_backbone,
)

ARCH = "test_resnet"  # 0.37 M parameters, batch norm, no dropout; pretrained mean = std = 0.5


def net(**kw) -> TimmNet:
    args = {"arch": ARCH, "input_size": 32, "dropout": 0.3} | kw
    return TimmNet(in_shape=kw.pop("in_shape", (1, 12, 12)), num_classes=3, **args)


def test_stages_agree_and_features_are_the_pooled_pre_logits():
    torch.manual_seed(0)
    model = net().eval()
    x = torch.randn(4, 1, 12, 12)
    with torch.no_grad():
        logits, feats = model.forward_with_features(x)
        direct = model.backbone.model(model.backbone.input(x))  # timm with num_classes=0: pooled pre-logits
    assert model.feature_dim == timm.create_model(ARCH, num_classes=0).num_features == feats.shape[1]
    torch.testing.assert_close(feats, direct)
    torch.testing.assert_close(model.tail(model.trunk(x)), logits)
    torch.testing.assert_close(model.head(feats), logits)
    assert logits.shape == (4, 3)


def test_input_transform_undoes_the_dataset_normalisation_and_uses_the_backbones_statistics():
    """A constant grey image of pixel value v, normalised with the dataset's (m, s), reaches the backbone as
    3 channels of (v - mean_c) / std_c at the backbone's input size."""
    v, m, s = 0.8, 0.3, 0.2
    adapter = BackboneInput(3, 7, mean=(0.5, 0.4, 0.3), std=(0.25, 0.5, 1.0), data_mean=(m,), data_std=(s,))
    x = torch.full((2, 1, 5, 5), (v - m) / s)
    out = adapter(x)
    assert out.shape == (2, 3, 7, 7)
    expected = torch.tensor([(v - 0.5) / 0.25, (v - 0.4) / 0.5, (v - 0.3) / 1.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected.expand(2, 3, 7, 7))
    assert not adapter.state_dict(), "statistics are not weights"


def test_end_to_end_trunk_equals_the_backbone_on_raw_pixels():
    """What frozen mode extracts from [0, 1] pixels is what the end-to-end trunk computes from normalised
    inputs (same weights): one transform for both modes."""
    torch.manual_seed(0)
    model = net(data_mean=(0.2860,), data_std=(0.3530,), dropout=0.0).eval()
    pixels = torch.rand(3, 1, 12, 12)
    raw = create_backbone(resolve_backbone(BackboneSpec(ARCH, input_size=32)))
    raw.model.load_state_dict(model.backbone.model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.features((pixels - 0.2860) / 0.3530), raw.eval()(pixels))


def test_dropout_lives_in_the_tail():
    model = net(dropout=0.3)
    assert has_dropout(model) and not has_dropout(model.backbone)
    enable_dropout_only(model)
    x = torch.randn(5, 1, 12, 12)
    with torch.no_grad():
        z = model.trunk(x)
        torch.testing.assert_close(z, model.trunk(x))  # deterministic with dropout active
        torch.manual_seed(0)
        a = model.tail(z)
        torch.manual_seed(1)
        assert not torch.allclose(a, model.tail(z)), "MC-dropout samples must differ"
    assert not has_dropout(net(dropout=0.0))


def test_mlp_head_shares_its_layout_with_the_frozen_head():
    model = net(head_hidden=[16, 8], dropout=0.2)
    head = FeatureHead((model.backbone.num_features,), 3, hidden=[16, 8], dropout=0.2)
    assert model.feature_dim == head.feature_dim == 8
    own = {k for k in model.state_dict() if not k.startswith("backbone.")}
    assert own == set(head.state_dict())
    z = torch.randn(2, model.backbone.num_features)
    model.load_state_dict(head.state_dict(), strict=False)
    model.eval(), head.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.tail(model.first(z)), head(z))


def test_vit_with_a_fixed_input_size_is_built_for_the_configured_size():
    model = TimmNet((3, 10, 10), 2, arch="test_vit", input_size=32).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 10, 10)).shape == (2, 2)


def test_unknown_arch_is_one_line_with_close_names():
    with pytest.raises(ALBenchError) as e:
        net(arch="resnet_18")
    msg = str(e.value)
    assert "\n" not in msg and "unknown timm model 'resnet_18'" in msg and "resnet18" in msg


def test_non_image_data_is_refused():
    with pytest.raises(ALBenchError, match="needs images"):
        TimmNet((20,), 3, arch=ARCH)


def test_pretrained_offline_says_what_to_download_and_where(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ALBenchError) as e:
        net(pretrained=True)
    msg = str(e.value)
    assert "\n" not in msg
    assert "huggingface.co/timm/test_resnet" in msg and "model.weights=" in msg
    assert huggingface_hub.constants.HF_HUB_CACHE in msg


# ---- weights files -----------------------------------------------------------------------------------------
def _timm_state(seed: int, num_classes: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model(ARCH, num_classes=num_classes).state_dict()


@pytest.mark.parametrize("kind", ["raw", "with_classifier", "wrapped", "safetensors"])
def test_weights_file_is_loaded_exactly(tmp_path, kind):
    state = _timm_state(seed=7, num_classes=1000 if kind == "with_classifier" else 0)
    path = tmp_path / ("w.safetensors" if kind == "safetensors" else "w.pt")
    if kind == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(
            {"state_dict": {f"module.{k}": v for k, v in state.items()}} if kind == "wrapped" else state, path
        )
    torch.manual_seed(0)
    model = net(weights=str(path))
    loaded = model.backbone.model.state_dict()
    for k, v in loaded.items():
        torch.testing.assert_close(v, state[k], msg=k)
    assert not any(k.startswith("fc.") for k in loaded)


def test_weights_of_another_arch_are_one_line_naming_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(timm.create_model("test_efficientnet", num_classes=0).state_dict(), path)
    with pytest.raises(ALBenchError) as e:
        net(weights=str(path))
    msg = str(e.value)
    assert "\n" not in msg and "does not fit timm model 'test_resnet'" in msg and "missing" in msg


def test_unreadable_or_missing_weights_are_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    for weights, words in ((bad, "not a readable weights file"), (tmp_path / "none.pt", "no such file")):
        with pytest.raises(ALBenchError) as e:
            net(weights=str(weights))
        assert words in str(e.value) and "\n" not in str(e.value)


def _encoder(tmp_path, arch: str = ARCH, in_chans: int = 1) -> str:
    torch.manual_seed(3)
    enc = timm.create_model(arch, num_classes=0, in_chans=in_chans)
    path = tmp_path / "encoder.pt"
    torch.save(
        {
            "format": "al_bench-encoder-1",
            "arch": arch,
            "state_dict": enc.state_dict(),
            "in_chans": in_chans,
            "input_size": 24,
            "mean": [0.1] * in_chans,
            "std": [0.2] * in_chans,
            "config": "{}",
            "epoch": 5,
        },
        path,
    )
    return str(path)


def test_al_bench_encoder_defines_arch_and_transform(tmp_path):
    path = _encoder(tmp_path)
    resolved = resolve_backbone(BackboneSpec("", weights=path, input_size=96))
    assert (resolved.arch, resolved.in_chans, resolved.input_size) == (ARCH, 1, 24)
    assert resolved.mean == (0.1,) and resolved.std == (0.2,)
    model = TimmNet((1, 12, 12), 3, arch="", weights=path).eval()  # the arch comes from the checkpoint
    adapter = model.backbone.input
    assert (adapter.in_chans, adapter.input_size) == (1, 24)
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    with pytest.raises(
        ALBenchError, match="is an encoder of timm arch 'test_resnet', not model.arch='resnet18'"
    ):
        TimmNet((1, 12, 12), 3, arch="resnet18", weights=path)


def test_load_backbone_weights_is_reusable_on_a_bare_timm_model(tmp_path):
    state = _timm_state(seed=11)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    model = timm.create_model(ARCH, num_classes=0)
    load_backbone_weights(model, str(path), ARCH)
    torch.testing.assert_close(model.state_dict()["conv1.0.weight"], state["conv1.0.weight"])


# ---- build_model ---------------------------------------------------------------------------------------
def test_build_model_passes_the_datasets_statistics(make_cfg):
    cfg = make_cfg("model=timm", f"model.arch={ARCH}", "model.input_size=16", "dataset.as_uint8=true")
    model = build_model(cfg, (1, 8, 8), 4)
    adapter = model.backbone.input
    assert adapter.undo  # synthetic uint8 data: mean 0.5, std 0.25 (the loader's)
    torch.testing.assert_close(adapter.data_mean.flatten(), torch.tensor([0.5]))
    torch.testing.assert_close(adapter.data_std.flatten(), torch.tensor([0.25]))
    explicit = build_model(cfg, (1, 8, 8), 4, data_stats=((0.1,), (0.2,)))
    torch.testing.assert_close(explicit.backbone.input.data_std.flatten(), torch.tensor([0.2]))
    float_cfg = make_cfg("model=timm", f"model.arch={ARCH}", "model.input_size=16")  # float data, no stats
    assert not build_model(float_cfg, (1, 8, 8), 4).backbone.input.undo


def test_other_models_are_built_as_before(make_cfg):
    cfg = make_cfg("model=mlp")
    torch.manual_seed(0)
    a = build_model(cfg, (1, 8, 8), 4)
    assert type(a).__name__ == "MLP" and a.in_shape == (1, 8, 8)


def test_vit_weights_saved_at_another_size_are_resampled(tmp_path):
    """A ViT state dict at its pretrained size (test_vit: 160 px, 10x10 patches) loads into the ViT built for
    input_size=32 (2x2 patches): timm's own checkpoint filter resamples the position embeddings."""
    path = tmp_path / "vit160.pt"
    torch.save(timm.create_model("test_vit", num_classes=0).state_dict(), path)
    model = TimmNet((1, 8, 8), 3, arch="test_vit", weights=str(path), input_size=32).eval()
    assert model.backbone.model.pos_embed.shape[1] == 1 + 2 * 2
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 1, 8, 8))).all()


def test_end_to_end_runs_through_the_loop_with_mc_dropout(make_cfg):
    from al_bench.loop import run

    cfg = make_cfg(
        "model=timm", f"model.arch={ARCH}", "model.input_size=16", "dataset.as_uint8=true", "strategy=bald"
    )
    result = run(cfg)
    assert result.curve["n_labeled"].tolist() == [8, 12, 16] and result.curve["model"].iloc[0] == "timm"
