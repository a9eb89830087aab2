"""ProbCover (Yehuda, Dekel, Hacohen, Weinshall, NeurIPS 2022): greedy max coverage of delta-balls."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from al_bench.embeddings import check_embedding
from al_bench.errors import ALBenchError
from al_bench.ops.clustering import kmeans
from al_bench.ops.probcover import DELTA_GRID, choose_delta, delta_ball_graph, max_coverage
from al_bench.strategies.base import SelectionContext, Strategy


class ProbCover(Strategy):
    """ProbCover: query the candidates whose delta-balls cover the most points not yet covered.

    1. Embedding, L2-normalised: ``embedding: model`` = the trained model's penultimate features (as
       :class:`~al_bench.strategies.learned.TypiClust`), ``ssl`` = a SimCLR encoder trained on the pool
       (``python -m al_bench.pretrain``; the authors' setting: SimCLR / DINO features), ``pretrained`` = a
       frozen pretrained backbone (``embeddings.pretrained``); see :mod:`al_bench.embeddings`.
    2. Nodes: labeled + every unlabeled pool point (the authors' lSet + uSet) while that is at most
       ``max_points``; above it, labeled + candidates only (the delta-ball graph costs O(N^2) distances). Only
       candidates may be picked; the other unlabeled points (when ``budget.pool_subset`` is set) still count
       as points to cover.
    3. delta: ``delta`` if given, else :func:`~al_bench.ops.probcover.choose_delta`: the largest radius of
       :data:`~al_bench.ops.probcover.DELTA_GRID` (0.05 ... 2.00) whose ball purity w.r.t. a k-means of the
       nodes into ``n_clusters`` clusters (None = the number of classes) is >= ``alpha`` (paper: 0.95). The
       authors pick delta per dataset offline with the same criterion; here it is recomputed every cycle,
       since the model's features change.
    4. Graph u -> v iff ||z_u - z_v|| < delta (:func:`~al_bench.ops.probcover.delta_ball_graph`, chunked COO);
       points within delta of a labeled point are covered; then
       :func:`~al_bench.ops.probcover.max_coverage` greedily picks the candidate covering the most uncovered
       points (ties at random), and, once nothing new can be covered, the rest uniformly at random.

    Cost: O(N^2 D) distance work per cycle (k-means aside), in chunks of ~16M pairs; the graph holds 16 bytes
    per edge, so a large delta on a large pool (balls of thousands of points) needs gigabytes, as the authors'
    edge list does.

    k-means (:func:`~al_bench.ops.clustering.kmeans`), tie-breaks and the random fill all draw from
    ``ctx.rng``.
    """

    def __init__(
        self,
        delta: float | None = None,
        alpha: float = 0.95,
        n_clusters: int | None = None,
        embedding: str = "model",
        max_points: int = 50000,
    ) -> None:
        check_embedding(embedding, "probcover")
        if delta is not None and not float(delta) >= 0:
            raise ALBenchError(f"probcover delta must be >= 0 or null (choose by purity), got {delta}")
        if not 0.0 < float(alpha) <= 1.0:
            raise ALBenchError(f"probcover alpha must be in (0, 1], got {alpha}")
        if n_clusters is not None and int(n_clusters) < 1:
            raise ALBenchError(
                f"probcover n_clusters must be >= 1 or null (number of classes), got {n_clusters}"
            )
        self.delta = None if delta is None else float(delta)
        self.alpha = float(alpha)
        self.n_clusters = None if n_clusters is None else int(n_clusters)
        self.embedding = embedding
        self.max_points = int(max_points)
        #: the radius used by the last selection (for inspection)
        self.last_delta: float | None = None

    def nodes(self, ctx: SelectionContext) -> tuple[np.ndarray, torch.Tensor, int, int]:
        """(global indices [N], embedding z [N, D], L, C) of the graph's nodes: the L labeled points, then the
        C candidates, then the other unlabeled pool points when N stays <= ``max_points``."""
        lab, cand = ctx.labeled, ctx.candidates
        extra = np.setdiff1d(ctx.pool.unlabeled_indices, cand)
        if len(lab) + len(cand) + len(extra) > self.max_points:
            extra = extra[:0]
        parts = [ctx.embedding(self.embedding, lab), ctx.embedding(self.embedding, cand)]
        if len(extra):
            parts.append(ctx.embedding(self.embedding, extra))
        z = F.normalize(torch.cat(parts).float(), dim=1)
        return np.concatenate([lab, cand, extra]).astype(np.int64), z, len(lab), len(cand)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        indices, z, n_lab, n_cand = self.nodes(ctx)
        z = z.to(ctx.device)
        delta = self.delta
        if delta is None:
            k = min(self.n_clusters or int(ctx.data.num_classes), len(z))
            _, clusters = kmeans(z, k, ctx.torch_generator())
            delta = choose_delta(z, clusters, self.alpha, DELTA_GRID)
        self.last_delta = delta
        src, dst = delta_ball_graph(z, delta)
        n = len(z)
        covered0 = np.zeros(n, bool)
        covered0[dst[src < n_lab]] = True  # the labeled points are rows 0 .. L-1
        selectable = np.zeros(n, bool)
        selectable[n_lab : n_lab + n_cand] = True
        pos = max_coverage(src, dst, n, covered0, ctx.budget, ctx.rng, selectable)
        return indices[pos]
