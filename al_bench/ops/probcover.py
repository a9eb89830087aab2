"""ProbCover kernels (Yehuda, Dekel, Hacohen, Weinshall, NeurIPS 2022: "Active Learning Through a Covering
Lens").

Points are the rows of an embedding ``z [N, D]`` (float). The delta-ball of u is B(u) = {v : ||z_u - z_v|| <
delta}: strict, as the authors' code (``dist < delta``), so u is in its own ball whenever delta > 0. The
delta-ball graph has an edge u -> v for every v in B(u), self-loops included; it is symmetric, but the kernels
below do not rely on that. Distances are computed in row chunks (``chunk`` rows against all N at once), so no
[N, N] matrix is ever held; the graph itself is returned as COO edge lists, 16 bytes per edge.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

#: the default grid of candidate radii for :func:`choose_delta`: 0.05, 0.10, ..., 2.00. Distances between
#: L2-normalised embeddings lie in [0, 2]; 0.05 is the resolution of the authors' delta search (their DCoM
#: config, ``DELTA_RESOLUTION: 0.05``; scikit-activeml's ProbCover steps by 0.2 over (0, 2]).
DELTA_GRID = np.round(np.arange(1, 41) * 0.05, 2)


#: elements of one chunk of the distance matrix (rows x N) held at once, ~64 MiB in float32.
_CHUNK_ELEMENTS = 1 << 24


def _step(n: int, chunk: int | None) -> int:
    step = max(1, _CHUNK_ELEMENTS // max(1, n)) if chunk is None else int(chunk)
    if step < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    return step


def _chunk_d2(z: torch.Tensor, z_sq: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Squared distances [stop - start, N] from rows ``start:stop`` of ``z`` to all rows, clamped at 0, with
    the self-distances set to exactly 0 (the expanded formula leaves rounding noise there)."""
    d2 = (
        torch.addmm(z_sq[None, :], z[start:stop], z.T, alpha=-2.0)
        .add_(z_sq[start:stop, None])
        .clamp_min_(0.0)
    )
    rows = torch.arange(stop - start, device=z.device)
    d2[rows, rows + start] = 0.0
    return d2


def _check_delta(delta: float) -> float:
    delta = float(delta)
    if not delta >= 0.0:
        raise ValueError(f"delta must be a non-negative number, got {delta}")
    return delta


def delta_ball_graph(
    z: torch.Tensor, delta: float, chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The delta-ball graph of ``z [N, D]``: edges (src [E], dst [E]), int64 numpy, one per ordered pair
    (u, v) with ||z_u - z_v|| < ``delta`` (self-loops included for delta > 0), sorted by src then dst.

    ``chunk``: rows of the distance matrix computed at once (default: ~16M elements per chunk). The authors'
    code does the same in batches of 500 rows, but its loop ``range(N // 500)`` drops the last partial batch
    (those points get no out-edges); here every row is covered.
    """
    delta = _check_delta(delta)
    n = len(z)
    step = _step(n, chunk)
    z_sq = (z * z).sum(1)
    thr = delta * delta
    srcs, dsts = [], []
    for s in range(0, n, step):
        e = min(s + step, n)
        r, c = torch.nonzero(_chunk_d2(z, z_sq, s, e) < thr, as_tuple=True)
        srcs.append((r + s).cpu())
        dsts.append(c.cpu())
    if not srcs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return torch.cat(srcs).numpy(), torch.cat(dsts).numpy()


def purity(z: torch.Tensor, cluster_labels: torch.Tensor, delta: float, chunk: int | None = None) -> float:
    """Fraction of the N points whose delta-ball is pure: every point of B(u) has u's cluster label.

    Args:
        z: embedding [N, D].
        cluster_labels: cluster of each point [N] (int; the paper: k-means with K = number of classes).
        delta: ball radius (strict ``<``, as :func:`delta_ball_graph`).
        chunk: rows of the distance matrix computed at once.
    """
    delta = _check_delta(delta)
    n = len(z)
    if n == 0:
        return 1.0
    labels = torch.as_tensor(cluster_labels, device=z.device).reshape(-1)
    step = _step(n, chunk)
    z_sq = (z * z).sum(1)
    thr = delta * delta
    impure = 0
    for s in range(0, n, step):
        e = min(s + step, n)
        other = labels[None, :] != labels[s:e, None]
        impure += int(((_chunk_d2(z, z_sq, s, e) < thr) & other).any(1).sum())
    return 1.0 - impure / n


def impure_radius_sq(z: torch.Tensor, cluster_labels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Squared distance [N] from each point to the nearest point of another cluster (+inf when there is none).

    B(u) is pure exactly when delta^2 <= this value, so purity(delta) = mean(delta^2 <= r2): one pass over the
    pairs gives the purity of every radius of a grid.
    """
    n = len(z)
    labels = torch.as_tensor(cluster_labels, device=z.device).reshape(-1)
    step = _step(n, chunk)
    z_sq = (z * z).sum(1)
    out = []
    for s in range(0, n, step):
        e = min(s + step, n)
        same = labels[None, :] == labels[s:e, None]
        out.append(_chunk_d2(z, z_sq, s, e).masked_fill_(same, float("inf")).min(1).values)
    return torch.cat(out) if out else z.new_zeros(0)


def choose_delta(
    z: torch.Tensor,
    cluster_labels: torch.Tensor,
    alpha: float = 0.95,
    grid: np.ndarray | list[float] | None = None,
    chunk: int | None = None,
) -> float:
    """The largest radius of ``grid`` whose :func:`purity` is >= ``alpha`` (the paper's choice of delta).

    Args:
        z: embedding [N, D].
        cluster_labels: cluster of each point [N] (k-means with K = number of classes in the paper).
        alpha: the purity threshold (paper: 0.95).
        grid: candidate radii [G] (default :data:`DELTA_GRID`, 0.05 ... 2.00).
        chunk: rows of the distance matrix computed at once.

    Purity can only fall as delta grows, so this is also the last radius before purity drops below ``alpha``
    (scikit-activeml stops its scan there). When no radius of the grid reaches ``alpha`` the smallest one is
    returned with a warning (as scikit-activeml does).
    """
    g = np.sort(np.asarray(DELTA_GRID if grid is None else grid, dtype=np.float64).reshape(-1))
    if len(g) == 0 or (g < 0).any():
        raise ValueError("grid must hold at least one non-negative radius")
    r2 = impure_radius_sq(z, cluster_labels, chunk).double().cpu().numpy()
    if len(r2) == 0:
        return float(g[-1])
    pur = (g[:, None] ** 2 <= r2[None, :]).mean(1)
    ok = np.flatnonzero(pur >= alpha)
    if len(ok) == 0:
        warnings.warn(
            f"ProbCover: no radius of the grid reaches purity {alpha} (best {pur.max():.3f}); using the "
            f"smallest, {g[0]}",
            RuntimeWarning,
            stacklevel=2,
        )
        return float(g[0])
    return float(g[ok[-1]])


def _csr(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ptr [n + 1], values sorted by key): values of key k are ``sorted[ptr[k]:ptr[k + 1]]``."""
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, values[np.argsort(keys, kind="stable")]


def _gather(ptr: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The concatenated CSR rows ``rows`` of (ptr, values)."""
    starts = ptr[rows]
    lens = ptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return values[:0]
    offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return values[np.arange(total) + offsets]


def max_coverage(
    src: np.ndarray,
    dst: np.ndarray,
    n: int,
    covered0: np.ndarray,
    budget: int,
    rng: np.random.Generator,
    selectable: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy max coverage on a graph of ``n`` nodes: positions [budget] of the picked nodes, in pick order.

    Args:
        src, dst: edges [E] (u -> v: v is covered when u is picked), e.g. from :func:`delta_ball_graph`.
        n: number of nodes.
        covered0: [n] bool, nodes covered before the first pick (in ProbCover: every node within delta of a
            labeled point); edges into them never count.
        budget: number of picks b.
        rng: draws the tie-breaks and the random fill.
        selectable: [n] bool, nodes that may be picked (default: all); in ProbCover the candidates.

    Each step picks the selectable, not yet picked node with the most out-edges to uncovered nodes (the
    authors' ``degrees.argmax()`` after removing edges into covered nodes); ties are broken uniformly at
    random as ``ties[rng.integers(len(ties))]`` (ties = the tied positions ascending, drawn at every step).
    Its out-neighbours become covered and the gains of their in-neighbours are decremented, so the whole
    greedy is O(E + b n). Once no selectable node covers anything new, the remaining picks are drawn
    uniformly without replacement from the selectable nodes not picked yet (``rng.choice``): as
    scikit-activeml, whose random argmax over all-zero gains does that; the authors' code would keep
    returning ``argmax`` = node 0 there (a labeled point or a repeat).
    """
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    covered = np.array(covered0, dtype=bool, copy=True).reshape(-1)
    free = np.ones(n, bool) if selectable is None else np.array(selectable, dtype=bool, copy=True).reshape(-1)
    if len(covered) != n or len(free) != n or len(src) != len(dst):
        raise ValueError("covered0 and selectable must have n entries, src and dst the same length")
    if budget > int(free.sum()):
        raise ValueError(f"cannot pick {budget} of {int(free.sum())} selectable nodes")
    out_ptr, out_nbr = _csr(src, dst, n)
    in_ptr, in_nbr = _csr(dst, src, n)
    gain = np.bincount(src[~covered[dst]], minlength=n).astype(np.int64)
    picks: list[int] = []
    while len(picks) < budget:
        g = np.where(free, gain, -1)
        best = int(g.max())
        if best <= 0:
            break
        ties = np.flatnonzero(g == best)
        j = int(ties[rng.integers(len(ties))])
        picks.append(j)
        free[j] = False
        new = out_nbr[out_ptr[j] : out_ptr[j + 1]]
        new = np.unique(new[~covered[new]])
        covered[new] = True
        np.subtract.at(gain, _gather(in_ptr, in_nbr, new), 1)
    rest = budget - len(picks)
    if rest:
        picks.extend(rng.choice(np.flatnonzero(free), size=rest, replace=False).tolist())
    return np.asarray(picks, dtype=np.int64)
