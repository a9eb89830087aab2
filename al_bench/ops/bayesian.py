"""Bayesian (MC-dropout) acquisition scores. Higher = query first.

Layout everywhere in al_bench: ``mc_probs [N, T, C]`` = softmax probabilities of N samples under T
stochastic forward passes (dropout masks) over C classes; each ``mc_probs[n, t]`` sums to 1.
(baal uses ``[N, C, T]``; batchbald_redux uses ``[N, K, C]`` log-probabilities: ours are probabilities.)

Every function computes in float64 (BALD is a small difference of two entropies) and returns float64 [N].
Entropies are in nats with 0 log 0 = 0.
"""

from __future__ import annotations

import torch


def _check(mc_probs: torch.Tensor) -> torch.Tensor:
    if mc_probs.ndim != 3:
        raise ValueError(f"mc_probs must be [N, T, C], got shape {tuple(mc_probs.shape)}")
    if mc_probs.shape[1] == 0:
        raise ValueError("mc_probs needs at least one MC pass (T >= 1)")
    return mc_probs.double()


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """-sum_c p log p over the last axis, 0 log 0 = 0."""
    return torch.special.entr(probs).sum(-1)


def mean_conditional_entropy(mc_probs: torch.Tensor) -> torch.Tensor:
    """E_t H[p(y | x, w_t)]: the mean entropy of the individual passes. [N, T, C] -> [N] (float64)."""
    return _entropy(_check(mc_probs)).mean(-1)


def mc_entropy(mc_probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy H[mean_t p(y | x, w_t)] (max-entropy of the MC mean). [N, T, C] -> [N] (float64)."""
    return _entropy(_check(mc_probs).mean(1))


def bald(mc_probs: torch.Tensor) -> torch.Tensor:
    """BALD mutual information I[y; w | x] = H[mean_t p_t] - mean_t H[p_t] in nats (Houlsby et al. 2011).

    [N, T, C] -> [N] (float64), in [0, log C]; rounding negatives are clamped to 0.
    """
    p = _check(mc_probs)
    return (_entropy(p.mean(1)) - _entropy(p).mean(-1)).clamp_min(0.0)


def variation_ratio(mc_probs: torch.Tensor) -> torch.Tensor:
    """Variation ratio 1 - f_mode / T where f_mode counts the passes voting for the modal class
    (votes = argmax per pass; Freeman 1965, as in Gal et al. 2017). [N, T, C] -> [N] float64 in [0, 1 - 1/C].
    """
    p = _check(mc_probs)
    n, t, c = p.shape
    votes = p.argmax(-1)  # [N, T]
    counts = torch.zeros(n, c, dtype=torch.float64).scatter_add_(
        1, votes, torch.ones(n, t, dtype=torch.float64)
    )
    return 1.0 - counts.max(-1).values / t


def mean_std(mc_probs: torch.Tensor) -> torch.Tensor:
    """Mean standard deviation (Kampffmeyer et al. 2016): mean over classes of the std over passes.

    The std is the population std sigma_c = sqrt(E_t[p_c^2] - E_t[p_c]^2) (divides by T, not T - 1), as in
    Kampffmeyer et al. and Gal et al. 2017. [N, T, C] -> [N] (float64).
    """
    return _check(mc_probs).std(dim=1, correction=0).mean(-1)
