"""BatchBALD (Kirsch, van Amersfoort & Gal, NeurIPS 2019): greedy batches that maximise the joint mutual
information I[y_1, ..., y_k; w] between the labels of the batch and the model parameters.

Inputs are ``mc_probs [N, T, C]`` (see :mod:`al_bench.ops.bayesian`). Greedy step k adds the candidate x with
the highest

    a(x) = H[y_1:k-1, y_x] - sum_{i in batch + x} E_t H[y_i | w_t]

where the joint of the batch is p(y_1:k) = mean_t prod_i p(y_i | w_t). The joint entropy is exact over the
C^k configurations while C^k <= ``exact_limit``; beyond, ``num_samples`` configurations are drawn from the
batch's joint (stratified: the same number from each pass t, as batchbald_redux does) and the entropy is the
importance-weighted estimate  H ~= (1/S) sum_s sum_c -p(y_s, c) log p(y_s, c) / p(y_s).

Numerics. A configuration s keeps its log-probabilities log p(y_s | w_t) [S, T]; with a_s = max_t p(y_s | w_t)
and r_st = p(y_s | w_t) / a_s in [0, 1], every entropy is written

    H[batch + x] = sum_s v_s (sum_c entr(r_sc) - rq_s log a_s),  r_sc = mean_t r_st p(c | x, w_t),
    rq_s = mean_t r_st,   v_s = a_s (exact)   or   v_s = 1 / (S rq_s) (sampled),

so nothing underflows however many points the batch holds, and the candidate-dependent part is one matrix
product [chunk * C, T] x [T, S] per chunk of candidates, x log x in place, and one weighted sum (a GEMV).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: elements of the [chunk * C, S] work matrix per chunk on CPU (8 MiB in float64). Measured on 2 shared cores:
#: single-threaded 2^18..2^20 run ~2x faster per element than 2^22..2^23 (cache); with 2 threads on an
#: oversubscribed CPU smaller chunks lose to per-op synchronisation. 2^20 is the compromise.
DEFAULT_CHUNK_ELEMENTS = 1 << 20
#: the same on an accelerator, where fewer, larger kernels win (256 MiB in float64).
DEVICE_CHUNK_ELEMENTS = 1 << 25


def conditional_entropies(mc_probs: torch.Tensor) -> torch.Tensor:
    """E_t H[y | x, w_t] per sample: [N, T, C] -> [N] in the input dtype."""
    return torch.special.entr(mc_probs).sum(-1).mean(-1)


@dataclass
class JointConfigurations:
    """Label configurations of the chosen batch and their probability under every MC pass.

    log_probs: [S, T] log p(y_s | w_t) = sum_i log p(y_{s,i} | x_i, w_t).
    sampled: False when the rows enumerate all configurations with non-zero probability (exact entropy);
        True when they are draws from the batch's joint (importance-weighted estimate).
    pass_of_sample: [S] the pass each sampled configuration was drawn from (sampled only), so that a new
        point extends every configuration with a label drawn from that same pass.
    """

    log_probs: torch.Tensor
    sampled: bool = False
    pass_of_sample: torch.Tensor | None = None

    @classmethod
    def empty(cls, n_passes: int, dtype: torch.dtype = torch.float64, device=None) -> JointConfigurations:
        """The joint of an empty batch: one configuration of probability 1."""
        return cls(torch.zeros(1, n_passes, dtype=dtype, device=device))

    @classmethod
    def exact(cls, probs: torch.Tensor) -> JointConfigurations:
        """All C^k configurations of ``probs [k, T, C]`` (k points)."""
        joint = cls.empty(probs.shape[1], probs.dtype, probs.device)
        for p in probs:
            joint = joint.extend_exact(p)
        return joint

    @classmethod
    def sample(cls, probs: torch.Tensor, num_samples: int, generator: torch.Generator) -> JointConfigurations:
        """``num_samples // T`` configurations per pass (>= 1) from the joint of ``probs [k,T,C]``."""
        n_passes = probs.shape[1]
        per_pass = max(1, int(num_samples) // n_passes)
        passes = torch.arange(n_passes, device=probs.device).repeat_interleave(per_pass)
        joint = cls(
            torch.zeros(len(passes), n_passes, dtype=probs.dtype, device=probs.device),
            sampled=True,
            pass_of_sample=passes,
        )
        for p in probs:
            joint = joint.extend_sampled(p, generator)
        return joint

    @property
    def n_configurations(self) -> int:
        return self.log_probs.shape[0]

    def extend_exact(self, probs: torch.Tensor) -> JointConfigurations:
        """Add one point ``probs [T, C]``: every configuration times every label (impossible ones dropped)."""
        if self.sampled:
            raise ValueError("a sampled joint is extended with extend_sampled")
        s, t = self.log_probs.shape
        log_p = torch.log(probs).T  # [C, T]
        new = (self.log_probs[:, None, :] + log_p[None]).reshape(s * probs.shape[1], t)
        keep = new.max(1).values > float("-inf")
        return JointConfigurations(new if bool(keep.all()) else new[keep])

    def extend_sampled(self, probs: torch.Tensor, generator: torch.Generator) -> JointConfigurations:
        """Add one point ``probs [T, C]``: each configuration draws its label from its own pass."""
        if not self.sampled or self.pass_of_sample is None:
            raise ValueError("an exact joint is extended with extend_exact")
        n_passes = probs.shape[0]
        per_pass = self.n_configurations // n_passes
        labels = torch.multinomial(probs, per_pass, replacement=True, generator=generator).reshape(-1)  # [S]
        log_p = torch.log(probs)[:, labels].T  # [S, T]: log p(label_s | w_t)
        return JointConfigurations(self.log_probs + log_p, True, self.pass_of_sample)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(r / T [S, T], weights v [S], offset) with H[batch + x] = v . sum_c entr((r/T) @ p_x) + offset."""
        log_a = self.log_probs.max(1).values  # [S], finite
        rel = torch.exp(self.log_probs - log_a[:, None])  # [S, T] in [0, 1]
        rq = rel.mean(1)
        weights = 1.0 / (self.n_configurations * rq) if self.sampled else torch.exp(log_a)
        offset = -(weights * rq * log_a).sum()
        return rel / rel.shape[1], weights, offset

    def entropy(self) -> torch.Tensor:
        """Joint entropy H[y_1:k] of the batch (exact or estimated), a scalar."""
        rel_t, weights, offset = self.factors()
        return weights @ torch.special.entr(rel_t.sum(1)) + offset

    def entropies_with(self, probs: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """H[y_1:k, y_x] for every candidate ``probs [N, T, C]`` -> [N]."""
        return joint_entropies_with(self, candidate_rows(probs), probs.shape[2], chunk_size)


def _xlogx(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = x log x`` with 0 log 0 = 0 (x >= 0, same shape, contiguous).

    On CPU through numpy: its SIMD float64 log is ~3x faster than torch's, and single-threaded element-wise
    passes avoid an OpenMP barrier per small op, which cost up to 10x on a shared (oversubscribed) CPU.
    """
    tiny = torch.finfo(x.dtype).tiny
    if x.device.type == "cpu" and x.is_contiguous() and out.is_contiguous():
        xa, oa = x.numpy(), out.numpy()
        np.maximum(xa, tiny, out=oa)
        np.log(oa, out=oa)
        np.multiply(oa, xa, out=oa)
        return out
    return torch.clamp_min(x, tiny, out=out).log_().mul_(x)


def candidate_rows(mc_probs: torch.Tensor) -> torch.Tensor:
    """[N, T, C] -> [N * C, T] for :func:`joint_entropies_with`: row n * C + c is p(c | x_n, w_t) over t."""
    n, t, c = mc_probs.shape
    return mc_probs.permute(0, 2, 1).reshape(n * c, t)


def joint_entropies_with(
    joint: JointConfigurations, cand_rows: torch.Tensor, n_classes: int, chunk_size: int | None = None
) -> torch.Tensor:
    """H[batch, y_x] for the candidates ``cand_rows [N * C, T]`` (see :func:`candidate_rows`) -> [N].

    Per chunk of candidates: one GEMM [chunk * C, T] x [T, S], then x log x into a second buffer (clamp,
    log, multiply: vectorised, unlike ``torch.special.entr`` on CPU) and the weighted sum over configurations
    as one GEMV. The log is the dominant cost.
    """
    rel_t, weights, offset = joint.factors()
    rel_t_t = rel_t.T.contiguous()  # [T, S]
    s = rel_t_t.shape[1]
    n = cand_rows.shape[0] // n_classes
    if chunk_size is None:
        budget = DEFAULT_CHUNK_ELEMENTS if rel_t.device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
        chunk_size = max(1, budget // (s * n_classes))
    chunk_size = max(1, min(chunk_size, n))
    work = torch.empty(chunk_size * n_classes, s, dtype=rel_t.dtype, device=rel_t.device)
    xlogx = torch.empty_like(work)
    out = torch.empty(n, dtype=rel_t.dtype, device=rel_t.device)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        rows = (stop - start) * n_classes
        w, xl = work[:rows], xlogx[:rows]
        torch.matmul(cand_rows[start * n_classes : stop * n_classes], rel_t_t, out=w)  # p(y_s, c) / a_s
        _xlogx(w, out=xl)
        out[start:stop] = (xl @ weights).view(stop - start, n_classes).sum(1)
    return offset - out


def batchbald(
    mc_probs: torch.Tensor,
    budget: int,
    num_samples: int = 10000,
    *,
    generator: torch.Generator,
    exact_limit: int | None = None,
    dtype: torch.dtype = torch.float64,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy BatchBALD over ``mc_probs [N, T, C]``.

    Args:
        budget: batch size k <= N.
        num_samples: configurations drawn once C^k > ``exact_limit`` (rounded down to a multiple of T).
        generator: draws the sampled configurations (on the device of ``mc_probs``).
        exact_limit: largest C^k computed exactly; default ``num_samples`` (batchbald_redux's rule).
        dtype: compute dtype (float64 by default).
        chunk_size: candidates per GEMM (default: a [chunk * C, S] work matrix of 2^20 elements on CPU).

    Returns:
        (positions [budget] int64 in pick order, scores [budget]) where ``scores[i]`` is the (estimated)
        joint mutual information I[y_1:i+1; w] of the first i+1 picks. The first pick is the BALD argmax and
        ``scores[0]`` its BALD score. Ties go to the lowest position (permute the input to randomise them).
    """
    if mc_probs.ndim != 3:
        raise ValueError(f"mc_probs must be [N, T, C], got shape {tuple(mc_probs.shape)}")
    n, t, c = mc_probs.shape
    budget = int(budget)
    if not 0 <= budget <= n:
        raise ValueError(f"cannot select {budget} of {n} candidates")
    limit = int(num_samples if exact_limit is None else exact_limit)
    probs = mc_probs.to(dtype)
    cond = conditional_entropies(probs)  # [N]
    cand = candidate_rows(probs)  # [N * C, T], built once
    joint = JointConfigurations.empty(t, dtype, probs.device)
    chosen: list[int] = []
    scores: list[torch.Tensor] = []
    cond_batch = torch.zeros((), dtype=dtype, device=probs.device)
    taken = torch.zeros(n, dtype=torch.bool, device=probs.device)
    for k in range(budget):
        if k > 0:
            last = probs[chosen[-1]]
            if joint.sampled:
                joint = joint.extend_sampled(last, generator)
            elif c**k <= limit:
                joint = joint.extend_exact(last)
            else:
                joint = JointConfigurations.sample(probs[chosen], num_samples, generator)
        gain = joint_entropies_with(joint, cand, c, chunk_size) - cond - cond_batch
        gain.masked_fill_(taken, float("-inf"))
        best = int(torch.argmax(gain))
        chosen.append(best)
        scores.append(gain[best])
        taken[best] = True
        cond_batch = cond_batch + cond[best]
    positions = torch.tensor(chosen, dtype=torch.long)
    return positions, (torch.stack(scores).cpu() if scores else torch.zeros(0, dtype=dtype))
