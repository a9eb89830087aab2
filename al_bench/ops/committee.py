"""Query-by-committee disagreement scores (Settles, "Active Learning Literature Survey", 2009, sec. 3.2).

Layout: ``member_probs [M, N, C]`` = softmax probabilities of M committee members for N samples over C
classes (member-major: one member's whole prediction is contiguous). Each ``member_probs[m, n]`` sums to 1.
Every function computes in float64 and returns float64 [N]; higher = query first; entropies in nats.
"""

from __future__ import annotations

import torch


def _check(member_probs: torch.Tensor) -> torch.Tensor:
    if member_probs.ndim != 3:
        raise ValueError(f"member_probs must be [M, N, C], got shape {tuple(member_probs.shape)}")
    if member_probs.shape[0] == 0:
        raise ValueError("a committee needs at least one member")
    return member_probs.double()


def vote_entropy(member_probs: torch.Tensor) -> torch.Tensor:
    """-sum_y V(y)/M log V(y)/M where V(y) counts the members whose argmax is y. [M, N, C] -> [N]."""
    p = _check(member_probs)
    m, n, c = p.shape
    votes = p.argmax(-1).T  # [N, M]
    counts = torch.zeros(n, c, dtype=torch.float64).scatter_add_(
        1, votes, torch.ones(n, m, dtype=torch.float64)
    )
    return torch.special.entr(counts / m).sum(-1)


def consensus_entropy(member_probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the consensus P_C(y|x) = mean_m P_m(y|x) (soft vote entropy). [M, N, C] -> [N]."""
    return torch.special.entr(_check(member_probs).mean(0)).sum(-1)


def kl_divergence_to_consensus(member_probs: torch.Tensor) -> torch.Tensor:
    """mean_m KL(P_m || P_C) with P_C the consensus (McCallum & Nigam 1998). [M, N, C] -> [N], >= 0.

    Where P_m(y) > 0 the consensus is >= P_m(y) / M > 0, so the terms stay finite; 0 log 0 = 0.
    """
    p = _check(member_probs)
    consensus = p.mean(0, keepdim=True)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, consensus)).sum(-1)  # [M, N]
    return kl.mean(0).clamp_min(0.0)
