"""Bayes by backprop: the closed-form KL, weight samples, local reparameterisation, a toy posterior."""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.models.mlp import MLP
from al_bench.ops.bayesian import bald
from al_bench.pool import ActivePool
from al_bench.posteriors.bbb import BayesLinear, BBBPosterior, gaussian_kl
from al_bench.posteriors.sources import build_source
from al_bench.strategies.base import SelectionContext
from al_bench.training import quiet_lightning, train_model
from tests.conftest import TINY, compose_config


def _layer(prior_sigma: float = 0.5) -> BayesLinear:
    g = torch.Generator().manual_seed(0)
    layer = BayesLinear(4, 3, prior_sigma=prior_sigma, seed=7)
    with torch.no_grad():
        layer.weight_mu.copy_(torch.randn(3, 4, generator=g))
        layer.weight_rho.copy_(torch.randn(3, 4, generator=g) - 1)
        layer.bias_mu.copy_(torch.randn(3, generator=g))
        layer.bias_rho.copy_(torch.randn(3, generator=g) - 1)
    return layer


def test_kl_matches_the_closed_form_of_torch_distributions():
    layer = _layer(prior_sigma=0.5)
    expected = sum(
        kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), 0.5)).sum()
        for mu, sigma in ((layer.weight_mu, layer.weight_sigma), (layer.bias_mu, layer.bias_sigma))
    )
    torch.testing.assert_close(layer.kl(), expected)
    zero = gaussian_kl(torch.zeros(5), torch.full((5,), 0.5), 0.5)  # q = prior
    torch.testing.assert_close(zero, torch.tensor(0.0))
    torch.testing.assert_close(layer.weight_sigma, torch.log1p(torch.exp(layer.weight_rho)))  # softplus


def test_weight_samples_have_the_posterior_mean_and_variance():
    layer = _layer()
    w, b = layer.sample(40_000, torch.Generator().manual_seed(1))
    assert w.shape == (40_000, 3, 4) and b.shape == (40_000, 3)
    sigma = layer.weight_sigma.detach()
    torch.testing.assert_close(w.mean(0), layer.weight_mu.detach(), rtol=0, atol=float(4 * sigma.max() / 200))
    torch.testing.assert_close(w.var(0), sigma**2, rtol=0.05, atol=0)
    torch.testing.assert_close(b.var(0), layer.bias_sigma.detach() ** 2, rtol=0.05, atol=0)


def test_local_reparameterisation_has_the_output_mean_and_variance_and_eval_is_the_mean():
    layer = _layer()
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]]).expand(40_000, 4)
    with torch.no_grad():
        out = layer.train()(x)
        mean = x[0] @ layer.weight_mu.T + layer.bias_mu
        var = (x[0] ** 2) @ (layer.weight_sigma**2).T + layer.bias_sigma**2
        torch.testing.assert_close(out.mean(0), mean, rtol=0, atol=float(4 * var.sqrt().max() / 200))
        torch.testing.assert_close(out.var(0), var, rtol=0.05, atol=0)
        torch.testing.assert_close(layer.eval()(x[:2]), mean.expand(2, 3))


def test_posterior_functions_are_consistent_weight_samples():
    torch.manual_seed(0)
    net = MLP((4,), 3, hidden=(6,), dropout=0.0)
    net.head = BayesLinear.from_linear(net.head, 0.5, -1.0, seed=0)
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(2))
    data = ALDataModule(ArrayDataset("t", x, torch.zeros(9, dtype=torch.long), x, torch.zeros(9).long(), 3))
    post = BBBPosterior(net, 5, torch.Generator().manual_seed(3))
    probs = post.probs(data, np.arange(9))
    with torch.no_grad():
        h = net.features(x)
    for t in range(5):  # function t = the head with weight sample t, for every input
        torch.testing.assert_close(probs[:, t], (h @ post.weights[t].T + post.biases[t]).softmax(-1))


def test_a_bbb_net_is_more_uncertain_off_the_data_than_on_it(tmp_path):
    """Two clusters at (-2, 0) and (2, 0); off the data = between and above/below them, (0, +-4), (0, +-6)."""
    quiet_lightning()
    g = torch.Generator().manual_seed(0)
    n = 40
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) * 0.3 + torch.stack([(y * 4 - 2).float(), torch.zeros(n)], 1)
    off = torch.tensor([[0.0, 4], [0, -4], [0, 6], [0, -6]])
    xs, ys = torch.cat([x, off]), torch.cat([y, torch.zeros(len(off), dtype=torch.long)])
    data = ALDataModule(ArrayDataset("toy", xs, ys, x[:4], y[:4], 2), batch_size=8)
    pool = ActivePool(np.arange(len(xs)), size=len(xs))
    pool.label(np.arange(n), cycle=0)
    cfg = compose_config(
        [*TINY, "trainer.max_epochs=60", "trainer.accelerator=cpu", "trainer.optimizer.lr=0.01"], tmp_path
    )

    def fit_model(seed: int, **options) -> MLP:
        torch.manual_seed(seed % 2**31)
        net = MLP((2,), 2, hidden=(32, 32), dropout=0.0)
        train_model(cfg, net, data, np.arange(n), seed, 1, purpose="committee", **options)
        return net

    torch.manual_seed(0)
    model = MLP((2,), 2, hidden=(32, 32), dropout=0.0)
    rng = np.random.default_rng(0)
    ctx = SelectionContext(model, data, pool, 2, 1, rng, candidates=np.arange(len(xs)), fit_model=fit_model)
    probs = ctx.posterior_probs(build_source("bbb", {"prior_sigma": 0.1}), 200)
    assert (probs[:n].mean(1).argmax(-1) == y).all()
    mutual_information = bald(probs)
    assert mutual_information[n:].min() > 3 * mutual_information[:n].max()
