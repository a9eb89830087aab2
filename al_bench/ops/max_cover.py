"""Suggestive Annotation's kernels (Yang et al., MICCAI 2017): bootstrap disagreement and greedy max-cover.

Representativeness of a selected set S_a for the unlabeled set S_u (their eq. 1):
    F(S_a, S_u) = sum_{j in S_u} max_{i in S_a} sim(x_i, x_j),    sim = cosine similarity in [-1, 1].
Maximising F over |S_a| = k subsets of the candidates S_c is a facility-location (generalised max-cover)
problem: NP-hard, monotone submodular once F(empty) is set to the floor -|S_u| (every max starts at the
cosine's lower bound -1, so F is unchanged for non-empty sets), hence greedy is within 1 - 1/e of the optimum
of F - F(empty). Shapes: candidates [K, D], pool [N, D] (S_u), similarity [K, N].
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: the lower bound of the cosine similarity: F(empty) = COSINE_FLOOR * N.
COSINE_FLOOR = -1.0


def bootstrap_variance(member_probs: torch.Tensor) -> torch.Tensor:
    """Disagreement of a bootstrap ensemble: the variance across the M members of each class probability,
    averaged over the C classes (population variance, float64). [M, N, C] -> [N], >= 0."""
    if member_probs.ndim != 3 or member_probs.shape[0] < 2:
        raise ValueError(f"member_probs must be [M >= 2, N, C], got shape {tuple(member_probs.shape)}")
    return member_probs.double().var(0, unbiased=False).mean(-1)


def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [K, N] of rows a [K, D] and b [N, D] (a zero row has similarity 0 to all)."""
    return F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).T


def cover_value(sim: torch.Tensor, picks: Sequence[int] | torch.Tensor, floor: float = COSINE_FLOOR) -> float:
    """F(S_a, S_u) = sum_j max(floor, max_{i in picks} sim[i, j]) for sim [K, N]; ``floor`` * N when empty.

    With sim >= floor (cosine: floor -1) this is the paper's F for every non-empty ``picks``.
    """
    idx = torch.as_tensor(picks, dtype=torch.long, device=sim.device).reshape(-1)
    best = torch.full((sim.shape[1],), float(floor), dtype=torch.float64, device=sim.device)
    if len(idx):
        best = torch.maximum(best, sim[idx].double().max(0).values)
    return float(best.sum())


def greedy_max_cover(candidates: torch.Tensor, pool: torch.Tensor, k: int, batch: int = 64) -> torch.Tensor:
    """Greedy maximisation of F(S_a, S_u) with cosine similarity: positions [k] into ``candidates`` [K, D],
    in the order picked; ``pool`` [N, D] is S_u (it may contain the candidates themselves).

    Each step adds the candidate of largest gain F(S_a + i) - F(S_a) = sum_j max(0, sim_ij - best_j), where
    best_j = max(-1, max_{s in S_a} sim_sj); ties go to the lowest position (callers order the candidates
    by priority). Exactly the plain greedy, evaluated lazily (Minoux 1978): gains only shrink as S_a grows
    (submodularity), so a candidate whose fresh gain still tops every other stale upper bound is the argmax;
    within a step, stale bounds are refreshed 1, 2, 4, ... up to ``batch`` at a time (one [b, N] product).
    The first gains come from sum_j sim_ij = x_i . sum_j x_j (unit rows): the [K, N] similarity matrix is
    never materialised. Works on any device.
    """
    n_cand = len(candidates)
    if not 0 <= k <= n_cand:
        raise ValueError(f"cannot pick {k} of {n_cand} candidates")
    if k == 0:
        return torch.zeros(0, dtype=torch.long)
    cand = F.normalize(candidates.float(), dim=1)
    unit_pool = F.normalize(pool.float().to(cand.device), dim=1)
    n = len(unit_pool)
    first = (cand @ unit_pool.sum(0)).double() - COSINE_FLOOR * n  # exact gains from the empty set
    best = torch.full((n,), COSINE_FLOOR, dtype=cand.dtype, device=cand.device)
    heap = [(-g, i, 0) for i, g in enumerate(first.tolist())]  # (-gain bound, position, step evaluated at)
    heapq.heapify(heap)
    picks: list[int] = []
    for step in range(k):
        size = 1
        while heap[0][2] != step:  # the top bound is stale: refresh the top ``size`` stale ones
            stale = [heapq.heappop(heap)[1]]
            while heap and len(stale) < size and heap[0][2] != step:
                stale.append(heapq.heappop(heap)[1])
            size = min(2 * size, batch)
            rows = cand[torch.as_tensor(stale, device=cand.device)] @ unit_pool.T  # [b, N]
            gains = (rows - best).clamp_min(0).double().sum(1).tolist()
            for i, g in zip(stale, gains):
                heapq.heappush(heap, (-g, i, step))
        i = heapq.heappop(heap)[1]  # fresh and above every other bound: the argmax
        picks.append(i)
        best = torch.maximum(best, unit_pool @ cand[i])
    return torch.as_tensor(picks, dtype=torch.long)
