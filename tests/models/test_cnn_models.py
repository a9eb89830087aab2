"""Every model config builds an ALNet whose stages agree: forward == tail(trunk) == head(features)."""

from __future__ import annotations

from typing import Any

import hydra.utils
import pytest
import torch
import yaml
from torch import nn

from al_bench.models.base import ALNet, enable_dropout_only, has_dropout
from al_bench.models.resnet import ResNet18
from al_bench.models.vgg import VGG, VGG11, VGG16
from tests.conftest import CONFIGS, config_names

MODELS = config_names("model")
#: the input each model is meant for; a model config not listed here is tried on CIFAR-shaped inputs.
IN_SHAPE = {
    "resnet18": (3, 32, 32),
    "vgg11": (3, 32, 32),
    "vgg16": (3, 32, 32),
    "dbal_cnn": (1, 28, 28),
    "batchbald_cnn": (1, 28, 28),
    "lenet": (1, 28, 28),
    "mlp": (1, 8, 8),
}
#: whether the default config must support MC dropout (None: not asserted for unknown configs).
NEEDS_DROPOUT = {
    "resnet18": False,
    "vgg11": True,
    "vgg16": True,
    "dbal_cnn": True,
    "batchbald_cnn": True,
    "lenet": True,
    "mlp": True,
}
#: SGD step of the tiny-batch fit (default 0.05): p = 0.5 channel dropout on 4 images needs smaller steps.
FIT_LR = {"batchbald_cnn": 0.01}
NUM_CLASSES = 5


def build(name: str, in_shape: tuple[int, ...] | None = None, **overrides: Any) -> ALNet:
    node = yaml.safe_load((CONFIGS / "model" / f"{name}.yaml").read_text())
    assert node.pop("name") == name
    node.update(overrides)
    shape = in_shape or IN_SHAPE.get(name, (3, 32, 32))
    model = hydra.utils.instantiate(node, in_shape=list(shape), num_classes=NUM_CLASSES, _convert_="all")
    assert isinstance(model, ALNet)
    return model


def batch(name: str, size: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, *IN_SHAPE.get(name, (3, 32, 32)), generator=g)


@pytest.mark.parametrize("name", MODELS)
def test_stages_agree_in_eval(name: str) -> None:
    torch.manual_seed(0)
    model = build(name).eval()
    x = batch(name)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        inter = model.intermediate_features(x)
        both = model.forward_with_features(x)
        via_trunk = model.tail(model.trunk(x))
    assert logits.shape == (2, NUM_CLASSES)
    assert feats.shape == (2, model.feature_dim)
    assert model.head.in_features == model.feature_dim and model.head.out_features == NUM_CLASSES
    torch.testing.assert_close(model.head(feats), logits)
    torch.testing.assert_close(via_trunk, logits)
    torch.testing.assert_close(inter[-1], feats)
    torch.testing.assert_close(both[0], logits)
    torch.testing.assert_close(both[1], feats)
    assert all(t.ndim == 2 and t.shape[0] == 2 for t in inter)


@pytest.mark.parametrize("name", MODELS)
def test_intermediate_features_give_the_training_logits(name: str) -> None:
    """One training pass serves an auxiliary module: head(intermediate[-1]) == forward (same masks)."""
    model = build(name).train()
    x = batch(name, size=4)
    torch.manual_seed(1)
    logits = model(x)
    torch.manual_seed(1)
    inter = model.intermediate_features(x)
    torch.testing.assert_close(model.head(inter[-1]), logits)


@pytest.mark.parametrize("name", MODELS)
def test_dropout_lives_in_the_tail(name: str) -> None:
    model = build(name)
    if NEEDS_DROPOUT.get(name) is not None:
        assert has_dropout(model) == NEEDS_DROPOUT[name]
    enable_dropout_only(model)
    x = batch(name, size=4)
    with torch.no_grad():
        z1, z2 = model.trunk(x), model.trunk(x)
        torch.testing.assert_close(z1, z2)  # the trunk is deterministic with dropout active
        if has_dropout(model):
            torch.manual_seed(0)
            a = model.tail(z1)
            torch.manual_seed(1)
            b = model.tail(z1)
            assert not torch.allclose(a, b), "MC-dropout samples must differ"


def test_resnet_dropout_is_opt_in() -> None:
    assert not has_dropout(build("resnet18", dropout=0.0))
    model = build("resnet18", dropout=0.3)
    assert has_dropout(model)
    assert not any(isinstance(m, nn.Dropout) for m in [*model.stem.modules(), *model.stages.modules()])


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_parameter(name: str) -> None:
    model = build(name).train()
    x = batch(name, size=3)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("name", MODELS)
def test_a_few_sgd_steps_fit_a_tiny_batch(name: str) -> None:
    """12 SGD steps on 4 small images (12x12 keeps ResNet/VGG fast; the layers are the same)."""
    torch.manual_seed(0)
    shape = (IN_SHAPE.get(name, (3, 32, 32))[0], 12, 12)
    model = build(name, in_shape=shape)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=FIT_LR.get(name, 0.05), momentum=0.9)

    def loss_without_dropout() -> float:
        for m in model.modules():  # dropout off, batch norm on batch statistics
            m.train(not isinstance(m, nn.modules.dropout._DropoutNd))
        with torch.no_grad():
            return float(nn.functional.cross_entropy(model(x), y))

    before = loss_without_dropout()
    model.train()
    for _ in range(12):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    after = loss_without_dropout()
    assert after < 0.9 * before


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("in_shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_any_image_shape(name: str, in_shape: tuple[int, ...]) -> None:
    model = build(name, in_shape=in_shape).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()


def test_resnet18_is_the_cifar_variant() -> None:
    model = ResNet18([3, 32, 32], 10)
    first = model.stem[0]
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert [len(s) for s in model.stages] == [2, 2, 2, 2]
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # the usual CIFAR ResNet-18 count
    dims = [t.shape[1] for t in model.eval().intermediate_features(torch.zeros(1, 3, 32, 32))]
    assert dims == [64, 128, 256, 512]


def test_vgg_depths() -> None:
    def convs(m: nn.Module) -> int:
        return sum(isinstance(c, nn.Conv2d) for c in m.modules())

    assert convs(VGG11([3, 32, 32], 10)) == 8 and convs(VGG16([3, 32, 32], 10)) == 13
    assert isinstance(VGG11([1, 28, 28], 10), VGG)
    with pytest.raises(ValueError, match="depth"):
        VGG([3, 32, 32], 10, depth=13)


def test_dbal_cnn_matches_gal_et_al() -> None:
    model = build("dbal_cnn", in_shape=(1, 28, 28))
    assert model.trunk(torch.zeros(1, 1, 28, 28)).shape == (1, 32 * 11 * 11)
    assert model.feature_dim == 128
    rates = sorted(m.p for m in model.modules() if isinstance(m, nn.Dropout))
    assert rates == [0.25, 0.5]


def test_batchbald_cnn_matches_kirsch_et_al() -> None:
    """batchbald_redux's BayesianCNN: 1024 inputs to fc128, channel dropout in the convolutions, p = 0.5."""
    model = build("batchbald_cnn", in_shape=(1, 28, 28))
    assert model.trunk(torch.zeros(1, 1, 28, 28)).shape == (1, 32, 24, 24)  # conv1 only: no dropout in it
    assert model.fc1.in_features == 1024 and model.feature_dim == 128
    drops = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    assert [type(m) for m in drops] == [nn.Dropout2d, nn.Dropout2d, nn.Dropout]
    assert all(m.p == 0.5 for m in drops)
    ten_classes = sum(p.numel() for p in model.parameters()) + (10 - NUM_CLASSES) * 129
    assert ten_classes == 832 + 51_264 + 131_200 + 1_290
