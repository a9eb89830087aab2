"""Encoder checkpoints: the agreed format, loadable with weights_only=True, and the loaded encoder gives the
trained encoder's features; resume states load with weights_only too."""

from __future__ import annotations

import pytest
import torch

from al_bench.errors import ALBenchError, UnreadableStateError
from al_bench.pretrain import encode, load_encoder
from al_bench.pretrain.augment import resize_to
from al_bench.pretrain.checkpoint import FORMAT, prepare_input, save_encoder
from al_bench.pretrain.runner import STATE_FILE, run
from al_bench.pretrain.simclr import build_simclr
from tests.pretrain.ssl_cases import compose_pretrain


def trained_like_encoder(in_chans: int = 3) -> torch.nn.Module:
    """A seeded test_resnet whose batch-norm statistics moved away from their init (as after training)."""
    net = build_simclr("test_resnet", in_chans, None, 8, False, seed=4)
    net.train()
    with torch.no_grad():
        net.encoder(torch.rand(16, in_chans, 16, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1)
    return net.encoder.eval()


def test_round_trip_reproduces_features(tmp_path):
    encoder = trained_like_encoder()
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    path = save_encoder(
        tmp_path / "enc.pt", encoder, arch="test_resnet", in_chans=3, input_size=16, mean=mean, std=std,
        config="seed: 4\n", epoch=7,
    )  # fmt: skip
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT == "al_bench-encoder-1"
    assert {k: raw[k] for k in ("arch", "in_chans", "input_size", "mean", "std", "config", "epoch")} == {
        "arch": "test_resnet", "in_chans": 3, "input_size": 16, "mean": mean, "std": std,
        "config": "seed: 4\n", "epoch": 7,
    }  # fmt: skip
    assert all(isinstance(v, torch.Tensor) for v in raw["state_dict"].values())
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away

    model, meta = load_encoder(path)
    assert not model.training and "state_dict" not in meta and meta["arch"] == "test_resnet"
    images = torch.randint(
        0, 256, (37, 3, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    feats = encode(model, meta, images, batch_size=10)
    x = images.float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = encoder(resize_to(x, 16))
    assert feats.shape == (37, encoder.num_features) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-5)
    unit = encode(model, meta, images, batch_size=64, l2_normalize=True)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(37))


def test_encode_restores_training_mode_and_checks_channels(tmp_path):
    encoder = trained_like_encoder(in_chans=1)
    path = save_encoder(
        tmp_path / "e.pt", encoder, arch="test_resnet", in_chans=1, input_size=16, mean=[0.0], std=[1.0],
        config="", epoch=1,
    )  # fmt: skip
    model, meta = load_encoder(path)
    model.train()
    out = encode(model, meta, torch.randn(4, 1, 8, 8))
    assert model.training and out.shape == (4, encoder.num_features)
    with pytest.raises(ALBenchError, match=r"\[N, 1, H, W\]"):
        prepare_input(torch.zeros(2, 3, 8, 8), meta)


def test_bad_files_are_refused_in_one_line(tmp_path):
    with pytest.raises(ALBenchError, match="no al_bench encoder checkpoint"):
        load_encoder(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UnreadableStateError, match="not a readable"):
        load_encoder(tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(UnreadableStateError, match="format"):
        load_encoder(tmp_path / "other.pt")


def test_pretrained_checkpoint_and_state_load_weights_only(tmp_path):
    result = run(compose_pretrain(tmp_path, "ssl.epochs=2"))
    state = torch.load(result.run_dir / STATE_FILE, weights_only=True)
    assert state["epoch"] == 2 and set(state) >= {"net", "optimizer", "lr", "losses", "config"}
    model, meta = load_encoder(result.encoder_path)
    assert meta["epoch"] == 2 and "ssl:" in meta["config"] and "label" not in meta["config"]
    # the loaded encoder is the trained one: same features as the encoder part of the last resume state
    net = build_simclr("test_resnet", 1, None, 16, False, seed=0)
    net.load_state_dict(state["net"])
    images = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        expected = net.encoder.eval()(resize_to(images, 16))
    torch.testing.assert_close(encode(model, meta, images), expected)
