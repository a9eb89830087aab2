"""Diversity kernels: BADGE's k-means++ seeding on factored gradient embeddings and core-set k-center greedy.

Shapes: ``N`` points, ``K`` classes, ``D`` feature dimensions, ``B`` budget. Every function works on the
device and in the dtype of its inputs (float64 in -> float64 arithmetic) and keeps one running distance
vector [N]; neither the ``K * D`` gradient embedding nor an ``N x N`` distance matrix is ever built.
"""

from __future__ import annotations

import torch


# ---- BADGE ---------------------------------------------------------------------------------------------
def badge_factors(probs: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of BADGE's gradient embedding ``g = a (outer) h``.

    probs [N, K] softmax, features [N, D] penultimate
    -> (a [N, K] = p - onehot(argmax p), h [N, D] = features).
    ``g`` is the gradient of the cross-entropy at the predicted label w.r.t. the last layer's weights
    (the sign is irrelevant for distances).
    """
    if probs.ndim != 2 or features.ndim != 2 or len(probs) != len(features):
        raise ValueError(
            f"probs [N, K] and features [N, D] expected, got {tuple(probs.shape)}, {tuple(features.shape)}"
        )
    a = probs.clone()
    a[torch.arange(len(a), device=a.device), probs.argmax(1)] -= 1.0
    return a, features


def badge_sq_dist_to(
    a: torch.Tensor,
    h: torch.Tensor,
    ai: torch.Tensor,
    hi: torch.Tensor,
    a_sq: torch.Tensor | None = None,
    h_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared distances [N] from every ``g_n = a_n (outer) h_n`` to one point ``g_i = ai (outer) hi``.

    ``||g_n - g_i||^2 = |a_n|^2 |h_n|^2 + |a_i|^2 |h_i|^2 - 2 (a_n . a_i)(h_n . h_i)``, clamped at 0.
    a [N, K], h [N, D], ai [K], hi [D]; ``a_sq``/``h_sq`` [N]: precomputed squared row norms (optional).
    """
    a_sq = (a * a).sum(1) if a_sq is None else a_sq
    h_sq = (h * h).sum(1) if h_sq is None else h_sq
    d2 = a_sq * h_sq
    d2 += (ai @ ai) * (hi @ hi)
    d2 -= 2.0 * (a @ ai) * (h @ hi)
    return d2.clamp_(min=0.0)


def _draw_proportional(weights: torch.Tensor, generator: torch.Generator) -> int | None:
    """One index drawn with probability ``weights / weights.sum()`` (weights >= 0); None when they sum to 0.

    Inverse-CDF sampling on a float64 cumulative sum: an index of zero weight can never be drawn.
    """
    cum = torch.cumsum(weights, 0, dtype=torch.float64)
    u = torch.rand(1, generator=generator, device=generator.device, dtype=torch.float64).to(cum.device)
    u *= cum[-1]
    j, total = torch.cat(
        [torch.searchsorted(cum, u, right=True).to(cum.dtype), cum[-1:]]
    ).tolist()  # one sync
    j = int(j)
    if total <= 0.0:
        return None
    if j >= len(cum):  # u rounded up to the total: take the last index of positive weight
        j = int(torch.searchsorted(cum, cum[-1:], right=False))
    return j


def badge_kmeanspp(a: torch.Tensor, h: torch.Tensor, budget: int, generator: torch.Generator) -> torch.Tensor:
    """BADGE selection: k-means++ seeding on ``g_n = a_n (outer) h_n``; rows of a/h -> LongTensor [budget].

    The first centre is ``argmax ||g|| = ||a|| ||h||``; each next centre is drawn with probability
    proportional to D^2, the squared distance to the nearest centre chosen so far (one running min vector,
    updated in place from factored distances). Chosen rows get D^2 = 0 and are never drawn again; when every
    remaining D^2 is 0 (duplicates of centres), the next centre is drawn uniformly among unchosen rows.
    ``generator`` drives every draw (any device; draws are moved to the data's device).
    """
    n = len(a)
    if budget > n:
        raise ValueError(f"cannot select {budget} of {n} points")
    chosen = torch.empty(budget, dtype=torch.long, device=a.device)
    if budget <= 0:
        return chosen
    a_sq = (a * a).sum(1)
    h_sq = (h * h).sum(1)
    norm_sq = a_sq * h_sq
    ht = h.T.contiguous()  # [D, N]: ``h_i @ ht`` is several times faster than ``h @ h_i`` on CPU
    i = int(torch.argmax(norm_sq))
    is_chosen = torch.zeros(n, dtype=torch.bool, device=a.device)
    d2 = torch.full((n,), float("inf"), dtype=a.dtype, device=a.device)
    for t in range(budget):
        chosen[t] = i
        is_chosen[i] = True
        if t == budget - 1:
            break
        ai, hi = a[i], ht[:, i]
        new = (a @ ai).mul_(hi @ ht).mul_(-2.0)  # -2 (a_n . a_i)(h_n . h_i)
        new.add_(norm_sq).add_(norm_sq[i]).clamp_(min=0.0)
        torch.minimum(d2, new, out=d2)
        d2[i] = 0.0
        drawn = _draw_proportional(d2, generator)
        if drawn is None:  # every remaining point coincides with a centre
            free = torch.nonzero(~is_chosen).squeeze(1)
            drawn = int(
                free[int(torch.randint(len(free), (1,), generator=generator, device=generator.device))]
            )
        i = drawn
    return chosen


def kmeanspp_potential(
    a: torch.Tensor, h: torch.Tensor, centres: torch.Tensor, chunk_size: int = 1024
) -> float:
    """k-means potential of ``centres`` (rows) in BADGE's gradient space: sum_n min_c ||g_n - g_c||^2.

    a [N, K], h [N, D], centres LongTensor [B]. Computed from factors with centre chunks: O(N * chunk) memory.
    """
    a_sq = (a * a).sum(1)
    h_sq = (h * h).sum(1)
    best = torch.full((len(a),), float("inf"), dtype=a.dtype, device=a.device)
    for start in range(0, len(centres), chunk_size):
        c = centres[start : start + chunk_size].to(a.device)
        cross = (a @ a[c].T) * (h @ h[c].T)  # [N, chunk]
        d2 = (a_sq * h_sq)[:, None] + (a_sq[c] * h_sq[c])[None, :] - 2.0 * cross
        torch.minimum(best, d2.clamp_(min=0.0).min(1).values, out=best)
    return float(best.sum())


# ---- core-set k-center greedy ----------------------------------------------------------------------------
def _min_sq_dist_to_rows(
    x: torch.Tensor, x_sq: torch.Tensor, rows: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    """min over ``rows`` of squared distances [N] from every row of x [N, D]; O(chunk^2) extra memory."""
    out = torch.full((len(x),), float("inf"), dtype=x.dtype, device=x.device)
    for r0 in range(0, len(rows), chunk_size):
        c = rows[r0 : r0 + chunk_size]
        xc, c_sq = x[c], x_sq[c]
        for s in range(0, len(x), chunk_size):
            d2 = x_sq[s : s + chunk_size, None] + c_sq[None, :] - 2.0 * (x[s : s + chunk_size] @ xc.T)
            torch.minimum(out[s : s + chunk_size], d2.min(1).values, out=out[s : s + chunk_size])
    return out.clamp_(min=0.0)


def kcenter_greedy(
    features: torch.Tensor, labeled_idx: torch.Tensor, budget: int, chunk_size: int = 1024
) -> torch.Tensor:
    """Sener & Savarese's k-center greedy: rows of ``features`` -> LongTensor [budget].

    features [N, D] (labeled and candidate rows together), labeled_idx LongTensor [L] (rows already centres).
    Repeat ``budget`` times: u = argmax_n min_{s in S} ||x_n - x_s||, S += u, with S starting as the labeled
    rows. One running min squared-distance vector; the initial distances to the labeled rows come from
    chunked matmuls (O(N * D + chunk^2) memory). Ties go to the lowest row (``argmax``).

    With no labeled rows the first centre is the row of largest norm ``argmax ||x||`` (deterministic, like
    BADGE's first centre; the Google reference code draws it at random instead).
    Labeled and chosen rows are never returned, even when every remaining distance is 0.
    """
    n = len(features)
    labeled_idx = torch.as_tensor(labeled_idx, dtype=torch.long, device=features.device)
    is_centre = torch.zeros(n, dtype=torch.bool, device=features.device)
    is_centre[labeled_idx] = True
    n_free = n - int(is_centre.sum())
    if budget > n_free:
        raise ValueError(f"cannot select {budget} of {n_free} unlabeled points")
    chosen = torch.empty(max(budget, 0), dtype=torch.long, device=features.device)
    if budget <= 0:
        return chosen
    x = features
    x_sq = (x * x).sum(1)
    xt = x.T.contiguous()  # [D, N]: ``x_i @ xt`` is several times faster than ``x @ x_i`` on CPU
    if len(labeled_idx):
        min_d2 = _min_sq_dist_to_rows(x, x_sq, labeled_idx, chunk_size)
        min_d2[is_centre] = -1.0  # centres can never win the argmax
        i = int(torch.argmax(min_d2))
    else:
        min_d2 = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
        i = int(torch.argmax(x_sq))
    for t in range(budget):
        chosen[t] = i
        if t == budget - 1:
            break
        d2 = (xt[:, i] @ xt).mul_(-2.0)
        d2.add_(x_sq).add_(x_sq[i]).clamp_(min=0.0)
        torch.minimum(min_d2, d2, out=min_d2)
        min_d2[i] = -1.0
        i = int(torch.argmax(min_d2))
    return chosen


def coverage_radius(features: torch.Tensor, centre_rows: torch.Tensor, chunk_size: int = 1024) -> float:
    """max_n min_{c in centres} ||x_n - x_c||: the k-center objective of ``centre_rows`` (LongTensor)."""
    x_sq = (features * features).sum(1)
    return float(
        _min_sq_dist_to_rows(features, x_sq, centre_rows.to(features.device), chunk_size).max().sqrt()
    )
