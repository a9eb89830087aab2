"""BAIT (Ash, Goel, Krishnamurthy & Kakade, "Gone Fishing: Neural Active Learning with Fisher Embeddings",
NeurIPS 2021): forward-backward greedy optimisation of a Fisher-information objective on the last layer.

Shapes: ``N`` candidates, ``L`` labeled points, ``K`` classes, ``D`` penultimate features, ``P = K * D``
last-layer weights (class-major: weight ``(c, d)`` is row ``c * D + d``), ``r = K - 1``, ``b`` budget.

Fisher of one point. With softmax p [K] and features h [D], the last-layer gradient of the cross-entropy
under label k is ``g_k = (e_k - p) (kron) h`` [P], and the Fisher is

    I(x) = sum_k p_k g_k g_k^T = S (kron) h h^T,     S = diag(p) - p p^T   [K, K],  rank <= K - 1.

Any ``B`` [r, K] with ``B^T B = S`` gives a square root ``V_x = B^T (kron) h`` [P, r], ``I(x) = V_x V_x^T``.
The authors use the K rows ``sqrt(p_k) (e_k - p)``; here ``B`` has the ``r = K - 1`` rows of a Householder
basis of the complement of ``sqrt(p)`` (:func:`fisher_sqrt`). Every quantity below depends on ``V_x`` only
through ``V_x V_x^T``, so the two give the same objective; ``r = K - 1`` is ~20% cheaper.

Objective (what the authors' ``bait_sampling.py`` computes; JordanAsh/badge):

    I_U = (1 / (N + L)) sum_{x in candidates and labeled} I(x)              (the mean over the whole pool)
    M_S = lam * I_P + (1 / (L + b)) sum_{x in labeled} I(x) + w sum_{x in S} I(x)
    f(S) = tr[ M_S^{-1} I_U ]                                                 (minimised)

with ``w = b / (L + b)`` in their code (``X * sqrt(K / (nLabeled + K))`` with K their budget, so a selected
point weighs b times a labeled one: ``weighting="authors"``), or ``w = 1 / (L + b)`` for a plain mean over
the final labeled set (``weighting="mean"``). Their default ridge is ``lam = 1`` (1e-2 for CIFAR).

Greedy with Woodbury. For the current inverse ``M^{-1}`` let ``A = M^{-1} I_U M^{-1}`` and, per point,
``G_x = V_x^T M^{-1} V_x`` and ``H_x = V_x^T A V_x`` [r, r]. Adding (sign +1) or removing (-1) x changes

    f -> f - tr[ (sign I_r + G_x)^{-1} H_x ],

so the forward step adds ``argmax_x tr[(I + G_x)^{-1} H_x]`` over unchosen candidates
(``min(N, oversample * b)`` steps), and the backward step removes ``argmax_x tr[(G_x - I)^{-1} H_x]`` over
the chosen ones (each step increases f least) until b remain; ties go to the lowest position. The authors'
code does the same with the materialised ``[N, K, P]`` factors and ``[N, K, P] x [P, P]`` products at every
step.

Factorisation used here (steady memory: two [P, P] matrices, ``M^{-1}`` and ``A``, 2 x 100 MiB at K=10,
D=512 float32, three during the set-up; r x r state per candidate; no [P, P] or [P, r] tensor per candidate):
- ``I_U`` and the labeled Fisher are sums of ``S (kron) h h^T``: block ``(c, c')`` is the [D, D] matrix
  ``sum_x S_x[c, c'] h_x h_x^T``; block row c of a chunk of rows is one [D, n] x [n, (K - c) D] product
  (``N * P^2 / 2`` multiply-adds in all; the authors' ``xt_^T xt_`` builds [batch, P, P], ``N * K * P^2``).
- Initial ``G_x, H_x``: ``V_x^T Q V_x = B_x T_x B_x^T`` with ``T_x[c, c'] = h_x^T Q_{cc'} h_x`` [K, K], from
  ``h @ Q`` by block rows (``N * P^2 / 2``; the authors pay ``2 N * K * P^2`` at every step).
- A step with x: ``U = M^{-1} V_x`` and ``R = A V_x`` [P, r], each a [P, K, D] x [D] product (``P^2``), and
  ``C = sign I + V_x^T U``. Every tracked point y updates ``G_y -= W C^{-1} W^T`` and
  ``H_y -= W C^{-1} Y^T + Y C^{-1} W^T - W C^{-1} (V_x^T R) C^{-1} W^T`` with ``W = V_y^T U``,
  ``Y = V_y^T R`` [r, r], all candidates at once from ``h @ [U | R]`` viewed [D, K * 2r] (``N * D * 2Kr``)
  and batched r x r products; its next score is one batched r x r solve. Then
  ``M^{-1} -= U C^{-1} U^T`` and ``A -= [U | R] [R C^{-1} - U C^{-1} (V_x^T R) C^{-1} | U C^{-1}]^T``.
- Those low-rank updates are kept pending and applied to the [P, P] bases every ``flush_every`` steps: one
  compute-bound rank-``flush_every * r`` product instead of many memory-bound rank-r ones.
Per forward step: ``~2 N D K r + 3 r P^2`` multiply-adds, against ``~4 N K P^2 + P^3`` in the authors' code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

WEIGHTINGS = ("authors", "mean")


# ---- Fisher factors ----------------------------------------------------------------------------------------
def fisher_sqrt(probs: torch.Tensor) -> torch.Tensor:
    """A square root of each point's softmax covariance: probs [N, K] -> B [N, K - 1, K] with
    ``B^T B = S = diag(p) - p p^T``.

    With ``q = sqrt(p)`` (a unit vector), ``diag(p) - p p^T = diag(q) (I - q q^T) diag(q)``; the first K - 1
    columns ``Q'`` of the Householder reflection ``Q = I - v v^T / (1 + q_K)``, ``v = q + e_K``, are an
    orthonormal basis of the complement of q (``Q q = -e_K``), so ``I - q q^T = Q' Q'^T`` and
    ``B = Q'^T diag(q)``. ``1 + q_K >= 1``: no cancellation however peaked p is.
    """
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs [N, K >= 2] expected, got {tuple(probs.shape)}")
    k = probs.shape[1]
    q = probs.clamp(min=0).sqrt()
    v = q.clone()
    v[:, -1] += 1.0
    eye = torch.eye(k, dtype=probs.dtype, device=probs.device)
    house = eye - v[:, :, None] * v[:, None, :] / (1.0 + q[:, -1, None, None])  # [N, K, K], symmetric
    return house[:, : k - 1, :] * q[:, None, :]


def fisher_factor(probs: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Materialised Fisher square roots ``V_x = B_x^T (kron) h_x``: [N, K], [N, D] -> [N, K * D, K - 1].

    ``V[n, c * D + d, j] = B[n, j, c] h[n, d]``; ``V_x V_x^T = I(x)``. For tests and small references only:
    BAIT itself never builds it.
    """
    b = fisher_sqrt(probs)
    n, r, k = b.shape
    return (b.transpose(1, 2)[:, :, None, :] * feats[:, None, :, None]).reshape(n, k * feats.shape[1], r)


def _check(probs: torch.Tensor, feats: torch.Tensor, what: str) -> None:
    if probs.ndim != 2 or feats.ndim != 2 or len(probs) != len(feats):
        raise ValueError(
            f"{what}: probs [N, K] and feats [N, D] expected, got {tuple(probs.shape)}, {tuple(feats.shape)}"
        )


def _accumulate_fisher(out: torch.Tensor, probs: torch.Tensor, feats: torch.Tensor, chunk: int) -> None:
    """Add ``sum_x S_x (kron) h_x h_x^T`` to the blocks ``(c, c' >= c)`` of out [K * D, K * D] (in place).

    probs [N, K], feats [N, D]. Block row c of a chunk of n rows is one [D, n] x [n, (K - c) D] product:
    ``N * P^2 / 2`` multiply-adds in all, ``n * P`` extra elements. The blocks below the diagonal are left
    as they were (:func:`_mirror_blocks` fills them).
    """
    k, d = probs.shape[1], feats.shape[1]
    for s in range(0, len(probs), chunk):
        p, h = probs[s : s + chunk], feats[s : s + chunk]
        cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # S [n, K, K]
        for c in range(k):
            weighted = (cov[:, c, c:, None] * h[:, None, :]).reshape(len(h), -1)  # [n, (K - c) D]
            out[c * d : (c + 1) * d, c * d :].addmm_(h.T, weighted)


def _mirror_blocks(m: torch.Tensor, k: int) -> torch.Tensor:
    """Copy the transposed blocks ``(c, c' > c)`` of m [K * D, K * D] below the diagonal (in place)."""
    d = m.shape[0] // k
    for c in range(k):
        for c2 in range(c + 1, k):
            m[c2 * d : (c2 + 1) * d, c * d : (c + 1) * d] = m[c * d : (c + 1) * d, c2 * d : (c2 + 1) * d].T
    return m


def fisher_sum(probs: torch.Tensor, feats: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """``sum_x I(x) = sum_x S_x (kron) h_x h_x^T``: probs [N, K], feats [N, D] -> [K * D, K * D].

    Block ``(c, c')`` is ``sum_x S_x[c, c'] h_x h_x^T``; O(P^2 + chunk * P) memory, no per-point [P, P]
    tensor.
    """
    _check(probs, feats, "fisher_sum")
    k, d = probs.shape[1], feats.shape[1]
    out = feats.new_zeros(k * d, k * d)
    _accumulate_fisher(out, probs, feats, chunk)
    return _mirror_blocks(out, k)


def fisher_quadratic(
    q: torch.Tensor, b: torch.Tensor, feats: torch.Tensor, chunk: int = 1024
) -> torch.Tensor:
    """``V_x^T Q V_x`` for every x: Q [K * D, K * D] symmetric, b [N, r, K] (``V_x = b_x^T (kron) h_x``),
    feats [N, D] -> [N, r, r].

    ``V_x^T Q V_x = b_x T_x b_x^T`` with ``T_x[c, c'] = h_x^T Q_{cc'} h_x`` [K, K] (symmetric: c <= c' only),
    block row c of a chunk of n rows from one [n, D] x [D, (K - c) D] product: ``N * P^2 / 2`` multiply-adds,
    ``n * P`` extra elements.
    """
    n, _, k = b.shape
    d = feats.shape[1]
    out = q.new_empty(n, b.shape[1], b.shape[1])
    for s in range(0, n, chunk):
        h = feats[s : s + chunk]
        t = q.new_empty(len(h), k, k)
        for c in range(k):
            y = (h @ q[c * d : (c + 1) * d, c * d :]).view(len(h), k - c, d)  # h^T Q_{cc'} for c' >= c
            t[:, c, c:] = torch.bmm(y, h[:, :, None])[..., 0]
            t[:, c + 1 :, c] = t[:, c, c + 1 :]
        bs = b[s : s + chunk]
        out[s : s + chunk] = bs @ t @ bs.transpose(1, 2)
    return out


def _trace_product(x: torch.Tensor, y: torch.Tensor, rows: int = 256) -> float:
    """``tr[x y]`` for symmetric x, y [P, P] = ``sum_ij x_ij y_ij``, accumulated in float64 by blocks of rows
    (a float32 dot product over P^2 terms loses ~1e-3 relative at P = 5,120)."""
    total = 0.0
    for s in range(0, len(x), rows):
        total += float((x[s : s + rows] * y[s : s + rows]).sum(dtype=torch.float64))
    return total


def _flat_cols(cols: torch.Tensor, k: int) -> torch.Tensor:
    """cols [K * D, m] -> [D, K * m] with ``out[d, c * m + j] = cols[c * D + d, j]``."""
    m = cols.shape[1]
    return cols.view(k, -1, m).transpose(0, 1).reshape(-1, k * m)


def _project(cols: torch.Tensor, b: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """``V_x^T cols`` for every x: cols [K * D, m], b [N, r, K], feats [N, D] -> [N, r, m].

    ``(V_x^T cols)[j, :] = sum_c b_x[j, c] (h_x^T cols_c)`` with ``cols_c`` the [D, m] block of class c: one
    [N, D] x [D, K * m] product and a batched [r, K] x [K, m] one.
    """
    k, m = b.shape[2], cols.shape[1]
    z = feats @ _flat_cols(cols, k)  # [N, K * m]
    return torch.bmm(b, z.view(len(feats), k, m))


class _LowRankUpdated:
    """A symmetric [P, P] matrix kept as ``base - X Y^T`` with up to ``capacity`` pending columns.

    Pending updates are applied to ``base`` in one [P, m] x [m, P] product when full: one compute-bound
    rank-m update instead of m / r memory-bound rank-r ones. ``Y`` is stored transposed ([m, P]) so that
    ``Y^T V`` for a Kronecker factor V is a matrix-vector product.
    """

    def __init__(self, base: torch.Tensor, k: int, capacity: int) -> None:
        self.base, self.k = base, k
        self.x = base.new_empty(base.shape[0], capacity)
        self.yt = base.new_empty(capacity, base.shape[0])
        self.used = 0

    def apply_factor(self, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``matrix @ V`` for ``V = b^T (kron) h``: b [r, K], h [D] -> [P, r] (``P^2 + P * pending * r``)."""
        p = self.base.shape[0]
        out = (self.base.view(p, self.k, -1) @ h) @ b.T
        if self.used:
            ytv = (self.yt[: self.used].view(self.used, self.k, -1) @ h) @ b.T  # Y^T V [used, r]
            out.sub_(self.x[:, : self.used] @ ytv)
        return out

    def push(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """``matrix -= x y^T`` (x, y [P, m])."""
        m = x.shape[1]
        if self.used + m > self.x.shape[1]:
            self.flush()
        if m > self.x.shape[1]:
            self.base.addmm_(x, y.T, alpha=-1.0)
            return
        self.x[:, self.used : self.used + m] = x
        self.yt[self.used : self.used + m] = y.T
        self.used += m

    def flush(self) -> None:
        if self.used:
            self.base.addmm_(self.x[:, : self.used], self.yt[: self.used], alpha=-1.0)
            self.used = 0


def _trace_solve(a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``tr[a_x^{-1} h_x]`` for every x: a, h [N, r, r] -> [N]; NaN (singular a) -> -inf."""
    sol = torch.linalg.solve_ex(a, h)[0]
    return torch.nan_to_num(sol.diagonal(dim1=-2, dim2=-1).sum(-1), nan=-math.inf)


def _scores(g: torch.Tensor, h_state: torch.Tensor, sign: float, block: int) -> torch.Tensor:
    """``tr[(sign I + G_x)^{-1} H_x]`` [N] for G, H [N, r, r], in blocks of rows."""
    eye = torch.eye(g.shape[1], dtype=g.dtype, device=g.device)
    out = g.new_empty(len(g))
    for s in range(0, len(g), block):
        out[s : s + block] = _trace_solve(g[s : s + block] + sign * eye, h_state[s : s + block])
    return out


def _commit(
    minv: _LowRankUpdated,
    a: _LowRankUpdated,
    bx: torch.Tensor,
    hx: torch.Tensor,
    sign: float,
    b: torch.Tensor,
    feats: torch.Tensor,
    g: torch.Tensor,
    h_state: torch.Tensor,
    score_sign: float,
    block: int,
) -> tuple[float, torch.Tensor]:
    """Add (sign +1) or remove (-1) the point with factor ``V = bx^T (kron) hx`` [P, r] from M.

    Updates ``minv`` = M^{-1}, ``a`` = M^{-1} I_U M^{-1} and, in place, the tracked ``g`` = V_y^T M^{-1} V_y
    and ``h_state`` = V_y^T A V_y [n, r, r] of the points y (b [n, r, K], feats [n, D]), block by block.
    Returns (the decrease of the objective ``tr[C^{-1} V^T A V]``, every tracked point's next score
    ``tr[(score_sign I + G_y)^{-1} H_y]`` [n]).
    """
    r, k = bx.shape
    u = minv.apply_factor(bx, hx)  # U = M^{-1} V [P, r]
    rr = a.apply_factor(bx, hx)  # R = A V [P, r]
    ur = torch.cat([u, rr], 1)
    flat = _flat_cols(ur, k)  # [D, K * 2r]
    vur = bx @ (hx @ flat).view(k, 2 * r)  # V^T [U | R] [r, 2r]
    eye = torch.eye(r, dtype=u.dtype, device=u.device)
    cinv = torch.linalg.inv(vur[:, :r] + sign * eye)  # C^{-1}, C = sign I + V^T M^{-1} V
    cinv = (cinv + cinv.T) / 2
    hs = (vur[:, r:] + vur[:, r:].T) / 2  # V^T A V
    gain = float((cinv * hs).sum())  # tr[C^{-1} V^T A V], both symmetric
    # [E | Y'] = [W | Y] mix with E = W C^{-1}, Y' = Y - E hs / 2 (W = V_y^T U, Y = V_y^T R)
    mix = torch.zeros(2 * r, 2 * r, dtype=u.dtype, device=u.device)
    mix[:r, :r] = cinv
    mix[:r, r:] = -0.5 * cinv @ hs
    mix[r:, r:] = eye
    scores = g.new_empty(len(g))
    for s in range(0, len(g), block):
        sl = slice(s, s + block)
        w = torch.bmm(b[sl], (feats[sl] @ flat).view(-1, k, 2 * r))  # [W | Y]  [m, r, 2r]
        ey = (w.view(-1, 2 * r) @ mix).view_as(w)
        e, y2 = ey[..., :r], ey[..., r:]
        g[sl].sub_(torch.bmm(e, w[..., :r].transpose(1, 2)))  # G -= W C^{-1} W^T
        # H -= W C^{-1} Y^T + Y C^{-1} W^T - W C^{-1} hs C^{-1} W^T  =  E Y'^T + Y' E^T
        h_state[sl].sub_(torch.bmm(ey, torch.cat([y2, e], -1).transpose(1, 2)))
        scores[sl] = _trace_solve(g[sl] + score_sign * eye, h_state[sl])
    ucinv = u @ cinv
    minv.push(u, ucinv)  # M^{-1} -= U C^{-1} U^T
    # A -= U C^{-1} R^T + R C^{-1} U^T - U C^{-1} hs C^{-1} U^T
    #    = [U | R] [R C^{-1} - U C^{-1} hs C^{-1} | U C^{-1}]^T
    a.push(ur, torch.cat([rr @ cinv - ucinv @ (hs @ cinv), ucinv], 1))
    return gain, scores


@dataclass
class BaitResult:
    """What :func:`bait_greedy` did. Positions are rows of the candidates' probs/feats.

    selected: LongTensor [b], the survivors of the backward pass in forward order.
    forward: LongTensor [F], the forward picks in order (F = min(N, oversample * b)).
    removed: LongTensor [F - b], the backward removals in order.
    objective: ``tr[M_S^{-1} I_U]`` before any pick, after each forward pick, after each removal [1 + 2F - b].
    """

    selected: torch.Tensor
    forward: torch.Tensor
    removed: torch.Tensor
    objective: list[float] = field(default_factory=list)


def bait_greedy(
    probs: torch.Tensor,
    feats: torch.Tensor,
    labeled_probs: torch.Tensor,
    labeled_feats: torch.Tensor,
    budget: int,
    lam: float = 1.0,
    oversample: float = 2.0,
    weighting: str = "authors",
    chunk: int = 1024,
    flush_every: int = 16,
    block: int | None = None,
) -> BaitResult:
    """BAIT's forward-backward greedy (see the module docstring) with every step recorded.

    probs [N, K], feats [N, D]: the candidates; labeled_probs [L, K], labeled_feats [L, D] (L may be 0).
    Computes in the dtype and on the device of ``probs`` (float64 in -> float64 arithmetic).
    lam: ridge; oversample: forward picks per budget slot (authors: 2); weighting: "authors" | "mean" (the
    weight of a selected point's Fisher in M, see the module docstring).
    Implementation knobs (same result): ``chunk`` rows per block of the set-up products (``chunk * K * D``
    extra elements); ``flush_every`` steps between applications of the pending low-rank updates to the two
    [P, P] matrices; ``block`` rows per block of the per-step candidate updates (default: 2048 on CPU, all on
    an accelerator).
    """
    _check(probs, feats, "candidates")
    _check(labeled_probs, labeled_feats, "labeled")
    n, k = probs.shape
    d = feats.shape[1]
    if labeled_probs.shape[1] != k or labeled_feats.shape[1] != d:
        raise ValueError(f"labeled outputs must have K={k} and D={d} columns")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if not 0 <= budget <= n:
        raise ValueError(f"cannot select {budget} of {n} candidates")
    if oversample < 1:
        raise ValueError(f"oversample must be >= 1, got {oversample}")
    if lam <= 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    device, dtype = probs.device, probs.dtype
    empty = torch.empty(0, dtype=torch.long, device=device)
    if budget == 0:
        return BaitResult(empty, empty, empty, [])
    feats = feats.to(dtype)
    labeled_probs, labeled_feats = labeled_probs.to(device, dtype), labeled_feats.to(device, dtype)
    block = block or (2048 if device.type == "cpu" else n)
    n_lab, r = len(labeled_probs), k - 1
    n_forward = min(n, max(budget, int(oversample * budget)))
    w_lab = 1.0 / (n_lab + budget)
    w_sel = budget * w_lab if weighting == "authors" else w_lab

    # M = lam I + w_lab * (labeled Fisher sum);  I_U = (labeled + candidate Fisher sums) / (N + L)
    fisher_u = feats.new_zeros(k * d, k * d)
    _accumulate_fisher(fisher_u, labeled_probs, labeled_feats, chunk)
    m = _mirror_blocks(fisher_u, k) * w_lab
    m.diagonal().add_(lam)
    _accumulate_fisher(fisher_u, probs, feats, chunk)
    _mirror_blocks(fisher_u, k).mul_(1.0 / (n + n_lab))
    chol = torch.linalg.cholesky(m)
    del m
    m_inv = torch.cholesky_inverse(chol)
    del chol
    if not m_inv.is_contiguous():  # LAPACK's column-major result; it is symmetric, so its transpose is it
        m_inv = m_inv.mT.contiguous()
    objective = [_trace_product(m_inv, fisher_u)]
    a = torch.matmul(m_inv, fisher_u @ m_inv, out=fisher_u)  # A = M^{-1} I_U M^{-1}, in I_U's memory

    b = fisher_sqrt(probs) * math.sqrt(w_sel)  # selected points enter M with weight w_sel
    g = fisher_quadratic(m_inv, b, feats, chunk)  # G_x = V_x^T M^{-1} V_x
    h_state = fisher_quadratic(a, b, feats, chunk)  # H_x = V_x^T A V_x
    cap = max(1, flush_every) * r
    minv_lr, a_lr = _LowRankUpdated(m_inv, k, cap), _LowRankUpdated(a, k, 2 * cap)

    chosen = torch.zeros(n, dtype=torch.bool, device=device)
    forward: list[int] = []
    score = _scores(g, h_state, 1.0, block)
    for _ in range(n_forward):
        score[chosen] = -math.inf
        s = int(torch.argmax(score))  # ties: the lowest position
        forward.append(s)
        chosen[s] = True
        gain, score = _commit(minv_lr, a_lr, b[s], feats[s], 1.0, b, feats, g, h_state, 1.0, block)
        objective.append(objective[-1] - gain)

    rows = torch.tensor(forward, dtype=torch.long, device=device)
    bf, hf, gf, sf = b[rows], feats[rows], g[rows], h_state[rows]
    del g, h_state
    alive = torch.ones(n_forward, dtype=torch.bool, device=device)
    removed: list[int] = []
    score = _scores(gf, sf, -1.0, block)  # tr[(G - I)^{-1} H] <= 0: minus how much a removal raises f
    for _ in range(n_forward - budget):
        score[~alive] = -math.inf
        j = int(torch.argmax(score))
        alive[j] = False
        removed.append(forward[j])
        gain, score = _commit(minv_lr, a_lr, bf[j], hf[j], -1.0, bf, hf, gf, sf, -1.0, block)
        objective.append(objective[-1] - gain)

    selected = rows[alive]
    return BaitResult(selected, rows, torch.tensor(removed, dtype=torch.long, device=device), objective)


def bait_objective(
    probs: torch.Tensor,
    feats: torch.Tensor,
    labeled_probs: torch.Tensor,
    labeled_feats: torch.Tensor,
    selected: torch.Tensor,
    budget: int,
    lam: float = 1.0,
    weighting: str = "authors",
    chunk: int = 1024,
) -> float:
    """``f(S) = tr[M_S^{-1} I_U]`` computed directly (no greedy state) for the candidate rows ``selected``.

    Arguments as in :func:`bait_greedy`; ``budget`` sets the weights ``1 / (L + b)`` (labeled) and ``w``
    (selected). Two [P, P] Fisher sums from factors and one Cholesky solve: for checks and reports.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    n, n_lab = len(probs), len(labeled_probs)
    w_lab = 1.0 / (n_lab + budget)
    w_sel = budget * w_lab if weighting == "authors" else w_lab
    sel = torch.as_tensor(selected, dtype=torch.long, device=probs.device)
    labeled_probs, labeled_feats = labeled_probs.to(probs), labeled_feats.to(probs)
    m = fisher_sum(labeled_probs, labeled_feats, chunk).mul_(w_lab)
    m.add_(fisher_sum(probs[sel], feats[sel], chunk), alpha=w_sel)
    m.diagonal().add_(lam)
    fisher_u = fisher_sum(torch.cat([labeled_probs, probs]), torch.cat([labeled_feats, feats]), chunk)
    fisher_u.mul_(1.0 / (n + n_lab))
    return float(torch.cholesky_solve(fisher_u, torch.linalg.cholesky(m)).diagonal().sum())


def bait_select(
    probs: torch.Tensor,
    feats: torch.Tensor,
    labeled_probs: torch.Tensor,
    labeled_feats: torch.Tensor,
    budget: int,
    lam: float = 1.0,
    oversample: float = 2.0,
    weighting: str = "authors",
    chunk: int = 1024,
    flush_every: int = 16,
    block: int | None = None,
) -> torch.Tensor:
    """BAIT selection: positions [budget] (LongTensor, unique, forward order) of the rows of probs/feats.

    probs [N, K], feats [N, D]: candidates; labeled_probs [L, K], labeled_feats [L, D]. See
    :func:`bait_greedy` for the arguments and the module docstring for the objective and its factorisation.
    """
    return bait_greedy(
        probs,
        feats,
        labeled_probs,
        labeled_feats,
        budget,
        lam,
        oversample,
        weighting,
        chunk,
        flush_every,
        block,
    ).selected
