"""Bayes by backprop (Blundell et al. 2015) on the model's head: mean-field Gaussian weights, trained with
the ELBO; T functions = T weight samples of the head on the network's (point-estimate) features.

A fresh network (``ctx.fit_model``) gets its ``head`` replaced by :class:`BayesLinear` before training:
every weight and bias w ~ N(mu, sigma^2) independently, sigma = softplus(rho), prior N(0, prior_sigma^2).
The loss per minibatch is the mean cross-entropy under one sample plus KL(q || prior) / N, N = labeled-set
size: Blundell et al.'s minibatch weighting pi_i = 1 / M with their sum over the batch divided by its size.
The KL is closed form (Gaussian prior: no scale mixture, so no sampled KL estimate is needed).

Sampling: training uses the local reparameterisation trick (Kingma et al. 2015: sample the pre-activations,
mean x mu^T + b_mu, variance x^2 sigma_W^2^T + sigma_b^2, one draw per input); the posterior draws T explicit
weight samples once and applies sample t to every input, so the T functions are consistent (joint quantities
such as BatchBALD stay right). Deviation: only the head is Bayesian (the trunk and tail are point
estimates), which keeps it one training of the run's length and CPU-friendly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.inference import logits_and_features
from al_bench.models.base import ALNet
from al_bench.posteriors.base import PosteriorSource, fit_member, member_seeds

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, prior_sigma^2)) summed over elements (any equal shapes) -> scalar."""
    ratio = sigma / prior_sigma
    return (-torch.log(ratio) + (ratio**2 + (mu / prior_sigma) ** 2) / 2 - 0.5).sum()


class BayesLinear(nn.Module):
    """A linear layer [D -> C] with mean-field Gaussian weights (see the module docstring).

    ``forward`` samples with local reparameterisation in training mode (noise from its own generator,
    seeded by ``seed``) and returns the mean-weight output in eval mode.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prior_sigma: float = 0.1,
        init_rho: float = -5.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.prior_sigma = float(prior_sigma)
        self.weight_mu = nn.Parameter(torch.zeros(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.full((out_features, in_features), float(init_rho)))
        self.bias_mu = nn.Parameter(torch.zeros(out_features))
        self.bias_rho = nn.Parameter(torch.full((out_features,), float(init_rho)))
        self.seed = int(seed)
        self._generator: torch.Generator | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, prior_sigma: float, init_rho: float, seed: int) -> BayesLinear:
        """The Bayesian variant of ``linear``: means start at its weights, on its device."""
        layer = cls(linear.in_features, linear.out_features, prior_sigma, init_rho, seed)
        layer.to(linear.weight.device)
        with torch.no_grad():
            layer.weight_mu.copy_(linear.weight)
            layer.bias_mu.copy_(linear.bias)
        return layer

    @property
    def weight_sigma(self) -> torch.Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor:
        return F.softplus(self.bias_rho)

    def kl(self) -> torch.Tensor:
        """KL(q || prior) of all weights and biases (scalar)."""
        return gaussian_kl(self.weight_mu, self.weight_sigma, self.prior_sigma) + gaussian_kl(
            self.bias_mu, self.bias_sigma, self.prior_sigma
        )

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device).manual_seed(self.seed)
        return torch.randn(like.shape, generator=self._generator, device=like.device, dtype=like.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D] -> [B, C]: one local-reparameterisation sample per row (training) or the mean (eval)."""
        mean = F.linear(x, self.weight_mu, self.bias_mu)
        if not self.training:
            return mean
        var = F.linear(x * x, self.weight_sigma**2, self.bias_sigma**2)
        return mean + var.sqrt() * self._noise(mean)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` weight samples on the CPU: (W [n, C, D], b [n, C]), float32."""
        w_mu, w_sigma = self.weight_mu.float().cpu(), self.weight_sigma.float().cpu()
        b_mu, b_sigma = self.bias_mu.float().cpu(), self.bias_sigma.float().cpu()
        w = w_mu + w_sigma * torch.randn((n, *w_mu.shape), generator=generator)
        b = b_mu + b_sigma * torch.randn((n, *b_mu.shape), generator=generator)
        return w, b


class KLTerm(nn.Module):
    """The ELBO's ``weight * KL(q || prior)`` of ``layers`` as an auxiliary module of
    :func:`al_bench.training.train_model`; it registers no parameters (the layers' are the network's)."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = float(weight)
        self.layers: list[BayesLinear] = []  # a plain list: the parameters are not registered twice

    def training_loss(
        self,
        inter: list[torch.Tensor],
        logits: torch.Tensor,
        per_sample_loss: torch.Tensor,
        y: torch.Tensor,
        epoch: int,
        max_epochs: int,
    ) -> torch.Tensor:
        return self.weight * sum((layer.kl() for layer in self.layers), logits.new_zeros(()))


class BBBPosterior:
    """T weight samples of ``net.head`` (a :class:`BayesLinear`) on ``net.features``: [N, T, C] (CPU)."""

    def __init__(self, net: ALNet, n_samples: int, generator: torch.Generator, bf16: bool = False) -> None:
        if not isinstance(net.head, BayesLinear):
            raise ValueError("BBBPosterior needs a network whose head is a BayesLinear")
        self.net = net
        self.n_samples = int(n_samples)
        self.weights, self.biases = net.head.sample(self.n_samples, generator)  # [T, C, D], [T, C]
        self.bf16 = bf16

    @torch.inference_mode()
    def probs(self, data: ALDataModule, indices: np.ndarray, split: str = "train") -> torch.Tensor:
        _, features = logits_and_features(self.net, data, indices, split=split, bf16=self.bf16)  # [N, D]
        logits = torch.einsum("nd,tcd->ntc", features, self.weights) + self.biases  # [N, T, C]
        return logits.softmax(-1)


class BBBSource(PosteriorSource):
    """``strategy.posterior=bbb``: one fresh network with a Bayes-by-backprop head; T = the strategy's
    ``n_samples`` weight samples (cheap: the features are computed once)."""

    name = "bbb"
    t_is_members = False

    def __init__(self, prior_sigma: float = 0.1, init_rho: float = -5.0) -> None:
        if not (math.isfinite(float(prior_sigma)) and float(prior_sigma) > 0):
            raise ALBenchError(f"posterior bbb: prior_sigma must be > 0, got {prior_sigma}")
        self.prior_sigma = float(prior_sigma)
        self.init_rho = float(init_rho)

    def draw(self, ctx: SelectionContext, n_samples: int) -> BBBPosterior:
        seed, noise_seed = member_seeds(ctx, 2)
        kl_term = KLTerm(1.0 / max(1, len(ctx.labeled)))

        def bayesian_head(net: ALNet) -> None:
            net.head = BayesLinear.from_linear(net.head, self.prior_sigma, self.init_rho, noise_seed)
            kl_term.layers.append(net.head)

        net = fit_member(ctx, self.name, seed, prepare=bayesian_head, aux=kl_term)
        return BBBPosterior(net, n_samples, ctx.torch_generator(), bf16=ctx.bf16)
