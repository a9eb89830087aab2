"""EPIG, expected predictive information gain (Bickford Smith, Kirsch, Farquhar, Gal, Foster & Rainforth,
AISTATS 2023). Higher = query first.

EPIG scores a candidate x by how much its label y tells about the labels y* of target inputs x* drawn from
the target distribution p*(x*), rather than about the parameters (BALD):

    EPIG(x) = E_{x* ~ p*(x*)} [ I(y; y* | x, x*) ]
            = E_{x*} KL[ p(y, y* | x, x*) || p(y | x) p(y* | x*) ].

Inputs are probabilities of T *consistent* posterior samples (pass t is one function for every input; see
:mod:`al_bench.posteriors.mc_dropout`): ``probs_pool [N, T, C]`` = p_t(y | x_n), ``probs_targ [M, T, C]`` =
p_t(y* | x*_m) under the same T functions. With them

    p(y = c, y* = d | x, x*) = (1/T) sum_t p_t(c | x) p_t(d | x*)          (joint [C, C])
    p(y = c | x) = (1/T) sum_t p_t(c | x),   p(y* = d | x*) likewise      (its exact marginals)
    I(y; y* | x, x*) = sum_{c,d} p(c, d) log[ p(c, d) / (p(c) p(d)) ]
                     = H[y | x] + H[y* | x*] - H[y, y* | x, x*]
    EPIG(x) ~= (1/M) sum_m I(y; y* | x, x*_m)

in nats with 0 log 0 = 0. The two lines of I are the same number because the joint's marginals are exactly
the MC marginals (each p_t(. | x*) sums to 1); the entropy form is used (one x log x over the joint). Each
I(y; y* | x, x*) lies in [0, min(BALD(x), BALD(x*))] (data processing: y and y* are independent given t).

Computed in float64 (EPIG is a small difference of entropies of up to 2 log C) in chunks of candidates: a
chunk of n candidates builds its joints [n, C, M, C] with one matrix product [n * C, T] x [T, M * C], so
memory is bounded by ``chunk_elements`` however large N and M are ([N, M, C, C] is never built).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

#: float64 elements of one chunk's joint [n, C, M, C] on CPU (8 MiB), as in :mod:`al_bench.ops.batchbald`.
DEFAULT_CHUNK_ELEMENTS = 1 << 20
#: the same on an accelerator, where fewer, larger kernels win (256 MiB in float64).
DEVICE_CHUNK_ELEMENTS = 1 << 25


def _check(probs_pool: torch.Tensor, probs_targ: torch.Tensor) -> None:
    if probs_pool.ndim != 3 or probs_targ.ndim != 3:
        raise ValueError(
            f"probs_pool and probs_targ must be [N, T, C] and [M, T, C], got shapes "
            f"{tuple(probs_pool.shape)} and {tuple(probs_targ.shape)}"
        )
    if probs_pool.shape[1:] != probs_targ.shape[1:]:
        raise ValueError(
            f"probs_pool {tuple(probs_pool.shape)} and probs_targ {tuple(probs_targ.shape)} need the same "
            f"T functions and C classes"
        )
    if probs_pool.shape[1] == 0:
        raise ValueError("EPIG needs at least one posterior sample (T >= 1)")
    if probs_targ.shape[0] == 0:
        raise ValueError("EPIG needs at least one target input (M >= 1)")


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """-sum p log p over the last axis, 0 log 0 = 0."""
    return torch.special.entr(probs).sum(-1)


def _conditional_chunks(
    probs_pool: torch.Tensor, probs_targ: torch.Tensor, chunk_size: int | None
) -> Iterator[torch.Tensor]:
    """I(y; y* | x_n, x*_m) [n, M] (float64) for successive chunks of n candidates."""
    _check(probs_pool, probs_targ)
    n_pool, t, c = probs_pool.shape
    m = probs_targ.shape[0]
    if chunk_size is None:
        budget = DEFAULT_CHUNK_ELEMENTS if probs_pool.device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
        chunk_size = max(1, budget // (m * c * c))
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    targ = probs_targ.to(probs_pool.device, torch.float64)
    h_targ = _entropy(targ.mean(1))  # [M]
    targ_flat = targ.permute(1, 0, 2).reshape(t, m * c)  # [T, M * C]
    for start in range(0, n_pool, int(chunk_size)):
        pool = probs_pool[start : start + int(chunk_size)].double()  # [n, T, C]
        n = pool.shape[0]
        h_pool = _entropy(pool.mean(1))  # [n]
        joint = pool.transpose(1, 2).reshape(n * c, t) @ targ_flat  # [n * C, M * C] = T p(c, d)
        joint = joint.div_(t).view(n, c, m, c)  # [n, C, M, C]: p(y = c, y*_m = d | x_n, x*_m)
        h_joint = torch.special.entr(joint).sum((1, 3))  # [n, M]
        yield (h_pool[:, None] + h_targ[None, :] - h_joint).clamp_min_(0.0)


def conditional_epig_from_probs(
    probs_pool: torch.Tensor, probs_targ: torch.Tensor, chunk_size: int | None = None
) -> torch.Tensor:
    """I(y; y* | x_n, x*_m) for every candidate and target: [N, T, C], [M, T, C] -> [N, M] (float64).

    See the module docstring for the formula; ``chunk_size`` candidates at a time (None: as many as fit
    :data:`DEFAULT_CHUNK_ELEMENTS`, or :data:`DEVICE_CHUNK_ELEMENTS` off the CPU). Rounding negatives are
    clamped to 0.
    """
    chunks = list(_conditional_chunks(probs_pool, probs_targ, chunk_size))
    if not chunks:
        return torch.zeros(0, probs_targ.shape[0], dtype=torch.float64, device=probs_pool.device)
    return torch.cat(chunks)


def epig_from_probs(
    probs_pool: torch.Tensor, probs_targ: torch.Tensor, chunk_size: int | None = None
) -> torch.Tensor:
    """EPIG(x_n) = (1/M) sum_m I(y; y* | x_n, x*_m): [N, T, C], [M, T, C] -> [N] (float64, nats).

    ``probs_pool`` and ``probs_targ`` must come from the same T functions (pass t of both = one posterior
    sample). Memory: one chunk's joint [chunk_size, C, M, C], never [N, M, C, C].
    """
    chunks = [s.mean(1) for s in _conditional_chunks(probs_pool, probs_targ, chunk_size)]
    if not chunks:
        return torch.zeros(0, dtype=torch.float64, device=probs_pool.device)
    return torch.cat(chunks)
