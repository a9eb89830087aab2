"""LL4AL, VAAL, CAL, diverse mini-batch, TypiClust and CEAL on tiny selection contexts."""

from __future__ import annotations

import inspect
from pathlib import Path

import hydra.utils
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.models.base import ALNet
from al_bench.models.loss_prediction import LossPredictionModule
from al_bench.models.mlp import MLP
from al_bench.ops.ranking_loss import loss_prediction_ranking_loss
from al_bench.ops.uncertainty import entropy
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext, Strategy
from al_bench.strategies.learned import _MLPVAE, CAL, CEAL, LL4AL, VAAL, TypiClust, _ConvVAE

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "strategy"
NAMES = ["ll4al", "vaal", "cal", "diverse_minibatch", "typiclust", "ceal"]
#: keep VAAL at test size (its defaults are the authors' 100 epochs of a 128-channel VAE)
FAST = {"vaal": {"epochs": 1, "batch_size": 16, "width": 8}}


def make_ctx(
    budget: int = 5,
    n: int = 80,
    n_labeled: int = 10,
    seed: int = 0,
    in_shape: tuple[int, ...] = (1, 8, 8),
    candidates: np.ndarray | None = None,
    num_classes: int = 3,
    labeled: np.ndarray | None = None,
) -> SelectionContext:
    """Random float data of ``in_shape``, a tiny untrained MLP; ``labeled`` (default: the first ``n_labeled``
    rows) labeled."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *in_shape, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    ds = ArrayDataset("tiny", x, y, x[:10], y[:10], num_classes=num_classes)
    data = ALDataModule(ds, batch_size=16, eval_batch_size=32)
    pool = ActivePool(data.pool_indices, size=n)
    pool.label(np.arange(n_labeled) if labeled is None else labeled, cycle=0)
    torch.manual_seed(seed)
    net = MLP(in_shape, num_classes, hidden=(16, 16))
    return SelectionContext(net, data, pool, budget, 0, np.random.default_rng(seed), candidates=candidates)


def build(name: str) -> Strategy:
    kw = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"))
    kw.pop("name")
    kw.update(FAST.get(name, {}))
    return hydra.utils.instantiate(kw)


def prepare(strategy: Strategy, ctx: SelectionContext) -> None:
    """What the loop does before selection: hooks, then (here) no training."""
    strategy.training_callbacks(ctx.data, ctx.candidates, ctx.cycle)
    strategy.auxiliary_module(ctx.model)


# ---- every strategy ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_yaml_documents_every_constructor_kwarg(name):
    text = (CONFIGS / f"{name}.yaml").read_text()
    kw = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"))
    cls = hydra.utils.get_class(kw.pop("_target_"))
    assert kw.pop("name") == name
    params = inspect.signature(cls.__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value, f"{key}: yaml {value} != default {params[key].default}"
        line = next(line for line in text.splitlines() if line.startswith(f"{key}:"))
        assert "#" in line, f"{key} has no comment"


@pytest.mark.parametrize("subset", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_returns_budget_unique_candidates(name, subset):
    candidates = np.arange(10, 80, 2) if subset else None
    ctx = make_ctx(budget=5, candidates=candidates)
    strategy = build(name)
    prepare(strategy, ctx)
    picked = strategy.select(ctx)
    assert picked.dtype == np.int64 and picked.shape == (5,)
    assert len(np.unique(picked)) == 5
    assert np.isin(picked, ctx.candidates).all()
    assert ctx.pool.n_labeled == 10  # selection never labels


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_is_deterministic_for_a_seed(name):
    picks = []
    for _ in range(2):
        ctx = make_ctx(budget=4, seed=3)
        strategy = build(name)
        prepare(strategy, ctx)
        picks.append(strategy.select(ctx))
    np.testing.assert_array_equal(picks[0], picks[1])


# ---- LL4AL -------------------------------------------------------------------------------------------------
class TinyConvNet(ALNet):
    """A conv trunk ([B, 4, 4, 4] intermediate) and a linear tail, to exercise global average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.lin = nn.Linear(64, 6)
        self.feature_dim, self.num_classes = 6, 3
        self.head = nn.Linear(6, 3)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.lin(z.flatten(1)))

    def intermediate_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.trunk(x)
        return [z, self.tail_features(z)]


def test_loss_module_is_built_with_parameters_from_the_net_shapes():
    torch.manual_seed(0)
    mlp = MLP((1, 8, 8), 3, hidden=(16, 12))
    module = LossPredictionModule(mlp, (1, 8, 8), hidden=7)
    assert [b[0].in_features for b in module.branches] == [16, 12]
    assert module.out.in_features == 14
    conv = LossPredictionModule(TinyConvNet(), (1, 8, 8), hidden=5)
    assert [b[0].in_features for b in conv.branches] == [4, 6]  # [B, 4, 4, 4] pooled to 4 channels
    x = torch.randn(6, 1, 8, 8)
    assert conv.predict(TinyConvNet().intermediate_features(x)).shape == (6,)


@pytest.mark.parametrize("net_factory", [lambda: MLP((1, 8, 8), 3, hidden=(16, 16)), TinyConvNet])
def test_loss_module_stops_the_backbone_gradient_after_the_fraction(net_factory):
    torch.manual_seed(1)
    net = net_factory()
    module = LossPredictionModule(net, (1, 8, 8), stop_grad_fraction=0.6)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))

    def grads(epoch: int) -> tuple[float, float]:
        net.zero_grad()
        module.zero_grad()
        inter = net.intermediate_features(x)
        logits = net.head(inter[-1])
        per_sample = nn.functional.cross_entropy(logits, y, reduction="none")
        module.training_loss(inter, logits, per_sample, y, epoch, 10).backward()
        g_net = sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)
        g_mod = sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)
        return g_net, g_mod

    for epoch in (0, 6):  # epoch > 0.6 * 10 stops: 0..6 still train the backbone (the authors' epoch > 120)
        g_net, g_mod = grads(epoch)
        assert g_net > 0 and g_mod > 0
    for epoch in (7, 9):
        g_net, g_mod = grads(epoch)
        assert g_net == 0 and g_mod > 0


def test_loss_module_loss_is_weighted_ranking_loss():
    torch.manual_seed(2)
    net = MLP((4,), 2, hidden=(8,))
    module = LossPredictionModule(net, (4,), weight=2.5, margin=0.7)
    inter = net.intermediate_features(torch.randn(6, 4))
    per_sample = torch.rand(6)
    expected = 2.5 * loss_prediction_ranking_loss(module(inter), per_sample, 0.7)
    got = module.training_loss(inter, net.head(inter[-1]), per_sample, None, 0, None)
    assert torch.allclose(got, expected)


def test_ll4al_scores_are_the_module_predictions_on_the_candidates():
    ctx = make_ctx()
    strategy = LL4AL(hidden=8)
    prepare(strategy, ctx)
    module = strategy._module
    scores = strategy.score(ctx)
    assert module.training and ctx.model.training  # modes restored as they were
    ctx.model.eval()
    module.eval()
    with torch.no_grad():
        x = ctx.data.get_batch(torch.as_tensor(ctx.candidates))[0]
        expected = module(ctx.model.intermediate_features(x))
    assert torch.allclose(scores, expected, atol=1e-6)


def test_ll4al_builds_a_fresh_module_each_cycle_and_reads_in_shape_from_the_net():
    ctx = make_ctx()
    strategy = LL4AL()
    ctx.model.in_shape = (1, 8, 8)
    first = strategy.auxiliary_module(ctx.model)
    second = strategy.auxiliary_module(ctx.model)
    assert first is not second and strategy._module is second


def test_ll4al_refuses_without_a_module_or_a_shape():
    ctx = make_ctx()
    with pytest.raises(RuntimeError, match="loss module"):
        LL4AL().score(ctx)
    with pytest.raises(RuntimeError, match="input shape"):
        LL4AL().auxiliary_module(ctx.model)


# ---- VAAL --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 12, 10), (2, 4, 4)])
def test_conv_vae_reconstructs_the_input_shape(shape):
    vae = _ConvVAE(shape, latent_dim=5, width=4)
    x = torch.randn(3, *shape)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (3, 5)
    assert vae.decode(mu).shape == x.shape


def test_conv_vae_has_the_authors_channels_on_cifar_shapes():
    vae = _ConvVAE((3, 32, 32), latent_dim=32, width=128)
    convs = [m.out_channels for m in vae.encoder if isinstance(m, nn.Conv2d)]
    assert convs == [128, 256, 512, 1024] and vae.fc_mu.in_features == 1024 * 2 * 2


def test_mlp_vae_for_flat_inputs():
    vae = _MLPVAE((20,), latent_dim=4)
    x = torch.randn(3, 20)
    assert vae.decode(vae.encode(x)[0]).shape == x.shape


def test_vaal_mlp_vae_is_deterministic_and_keeps_the_global_rng():
    picks = []
    for _ in range(2):
        ctx = make_ctx(budget=6, in_shape=(20,), seed=5)
        state = torch.random.get_rng_state()
        picks.append(VAAL(epochs=1, batch_size=16).select(ctx))
        assert torch.equal(state, torch.random.get_rng_state())
    assert len(np.unique(picks[0])) == 6 and np.isin(picks[0], make_ctx().candidates).all()
    np.testing.assert_array_equal(picks[0], picks[1])


def test_vaal_queries_the_lowest_discriminator_outputs(monkeypatch):
    ctx = make_ctx(budget=3)
    logits = torch.linspace(1.0, -1.0, len(ctx.candidates))  # the last candidates look least labeled
    monkeypatch.setattr(VAAL, "_train", lambda *a: None)
    monkeypatch.setattr(VAAL, "_discriminator_logits", lambda *a: logits)
    np.testing.assert_array_equal(np.sort(VAAL().select(ctx)), ctx.candidates[-3:])


# ---- CAL, TypiClust: index mapping on crafted outputs ------------------------------------------------------
def set_outputs(ctx: SelectionContext, which: str, logits: torch.Tensor, feats: torch.Tensor) -> None:
    ctx._cache[("outputs", which)] = (logits, feats)


def test_cal_queries_the_candidate_that_disagrees_with_its_labeled_neighbours():
    ctx = make_ctx(budget=1, n=14, n_labeled=4)  # candidates: global 4..13
    set_outputs(ctx, "labeled", torch.tensor([[5.0, 0.0, 0.0]] * 4), torch.tensor([[1.0, 0.0]] * 4))
    cand_logits = torch.tensor([[5.0, 0.0, 0.0]] * 10)
    cand_logits[6] = torch.tensor([0.0, 5.0, 0.0])  # global index 10 disagrees
    set_outputs(ctx, "candidates", cand_logits, torch.tensor([[1.0, 0.1]] * 10))
    np.testing.assert_array_equal(CAL(k=2).select(ctx), [10])


def test_typiclust_strategy_maps_positions_to_global_indices():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]) * 10
    feats = torch.cat([c + 0.1 * torch.randn(10, 2, generator=g) for c in centres])  # rows = global 0..39
    order = np.r_[0, 10, np.setdiff1d(np.arange(40), [0, 10])]
    ctx = make_ctx(budget=2, n=40, labeled=np.array([0, 10]))  # one label in blobs 0 and 1
    set_outputs(ctx, "labeled", torch.zeros(2, 3), feats[order[:2]])
    set_outputs(ctx, "candidates", torch.zeros(38, 3), feats[order[2:]])
    picked = TypiClust(normalize=False).select(ctx)
    assert sorted(picked // 10) == [2, 3]  # the two blobs without labels


# ---- CEAL --------------------------------------------------------------------------------------------------
def ceal_ctx(cycle: int = 0) -> SelectionContext:
    ctx = make_ctx(budget=3, n=30, n_labeled=10)  # candidates: global 10..29
    probs = torch.full((20, 3), 1 / 3)
    confident = [0, 4, 7, 12]  # positions -> global 10, 14, 17, 22
    probs[confident] = torch.tensor([1 - 2e-5, 1e-5, 1e-5])
    probs[7] = torch.tensor([1e-5, 1e-5, 1 - 2e-5])
    probs[12] = torch.tensor([1 - 2e-3, 1e-3, 1e-3])  # entropy 0.016: above delta0 = 0.005
    ctx._cache["probs"] = probs
    ctx.cycle = cycle
    return ctx


def test_ceal_selects_top_entropy_and_pseudo_labels_the_confident_rest():
    ctx = ceal_ctx()
    strategy = CEAL()
    picked = strategy.select(ctx)
    ent = entropy(ctx.probs())
    assert ent[picked - 10].min() >= ent.max() - 1e-6
    idx, labels = strategy.pseudo_labels()
    np.testing.assert_array_equal(idx, [10, 14, 17])
    np.testing.assert_array_equal(labels, [0, 0, 2])
    assert not np.isin(idx, picked).any()
    assert not ctx.pool.is_labeled(idx).any() and ctx.pool.n_labeled == 10


def test_ceal_pseudo_labels_never_include_selected_indices():
    ctx = ceal_ctx()
    ctx.budget = 19  # everything but one candidate is selected, confident ones included
    strategy = CEAL()
    picked = strategy.select(ctx)
    idx, _ = strategy.pseudo_labels()
    assert len(idx) <= 1 and not np.isin(idx, picked).any()


def test_ceal_threshold_decays_per_cycle_and_clamps_at_zero():
    strategy = CEAL(delta0=0.005, decay=0.00033)
    assert strategy.threshold(0) == pytest.approx(0.005)
    assert strategy.threshold(10) == pytest.approx(0.005 - 0.0033)
    assert strategy.threshold(20) == 0.0
    strategy.select(ceal_ctx(cycle=20))
    assert len(strategy.pseudo_labels()[0]) == 0


def test_ceal_max_pseudo_keeps_the_lowest_entropy():
    ctx = ceal_ctx()
    probs = ctx.probs()
    probs[4] = torch.tensor([1 - 2e-7, 1e-7, 1e-7])  # global 14 is the most confident
    strategy = CEAL(max_pseudo=1)
    strategy.select(ctx)
    np.testing.assert_array_equal(strategy.pseudo_labels()[0], [14])


def test_ceal_state_round_trip():
    strategy = CEAL()
    assert strategy.state_dict() == {} and strategy.pseudo_labels() is None
    strategy.select(ceal_ctx())
    restored = CEAL()
    restored.load_state_dict(strategy.state_dict())
    for a, b in zip(strategy.pseudo_labels(), restored.pseudo_labels()):
        np.testing.assert_array_equal(a, b)
    restored.load_state_dict({})
    assert restored.pseudo_labels() is None


def test_vaal_width_auto_scales_the_authors_network_to_the_image():
    auto = VAAL()
    assert auto.vae_width((3, 32, 32)) == 128 and auto.vae_width((3, 64, 64)) == 128  # their CIFAR network
    assert auto.vae_width((1, 8, 8)) == 16 and auto.vae_width((1, 28, 28)) == 98
    assert VAAL(width=32).vae_width((1, 8, 8)) == 32
    with pytest.raises(ValueError, match="width"):
        VAAL(width=0)
