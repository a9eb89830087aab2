"""Cluster-Margin (Citovsky et al., NeurIPS 2021, "Batch Active Learning at Scale")."""

from __future__ import annotations

import math

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.inference import logits_and_features
from al_bench.ops.cluster_margin import cluster_margin_select, cluster_pool
from al_bench.ops.uncertainty import margin
from al_bench.strategies.base import SelectionContext, Strategy


class ClusterMargin(Strategy):
    """Cluster-Margin: the lowest-margin candidates, made diverse by round-robin over HAC clusters.

    1. Once, at the first selection (cycle 0: the model trained on the initial labeled set): the penultimate
       features of every unlabeled pool point (not only this cycle's candidates) are clustered by
       average-linkage HAC at threshold ``epsilon`` (:func:`~al_bench.ops.cluster_margin.cluster_pool`;
       ``epsilon`` null = the threshold whose mean cluster size is closest to ``target_cluster_size``). Above
       ``max_cluster_points`` points a random subset of that size (from ``ctx.rng``) is clustered and every
       other point joins the cluster of its nearest clustered point (a deviation: the paper runs a
       distributed approximate HAC over millions of points). The cluster id of every pool index is kept
       (:meth:`state_dict`) and never recomputed.
    2. Every selection: k_m = ceil(``k_m_factor`` x budget) candidates of smallest margin p_(1) - p_(2)
       under the current model (paper: 1.25 in its Open Images runs), then round-robin over their clusters
       from the smallest, one uniformly random member each
       (:func:`~al_bench.ops.cluster_margin.cluster_margin_select`; all draws from ``ctx.rng``).
    """

    def __init__(
        self,
        k_m_factor: float = 1.25,
        epsilon: float | None = None,
        target_cluster_size: float = 10.0,
        max_cluster_points: int = 5000,
    ) -> None:
        if not (math.isfinite(float(k_m_factor)) and float(k_m_factor) >= 1.0):
            raise ALBenchError(
                f"cluster_margin k_m_factor must be >= 1 (k_m = factor x budget candidates), got {k_m_factor}"
            )
        if epsilon is not None and not (math.isfinite(float(epsilon)) and float(epsilon) >= 0.0):
            raise ALBenchError(
                f"cluster_margin epsilon must be a distance >= 0 or null (chosen from target_cluster_size), "
                f"got {epsilon}"
            )
        if not float(target_cluster_size) >= 1.0:
            raise ALBenchError(f"cluster_margin target_cluster_size must be >= 1, got {target_cluster_size}")
        if int(max_cluster_points) < 2:
            raise ALBenchError(f"cluster_margin max_cluster_points must be >= 2, got {max_cluster_points}")
        self.k_m_factor = float(k_m_factor)
        self.epsilon = None if epsilon is None else float(epsilon)
        self.target_cluster_size = float(target_cluster_size)
        self.max_cluster_points = int(max_cluster_points)
        # [n_train] cluster id per global train index, -1 = not clustered; None until the first selection
        self._cluster_of: np.ndarray | None = None
        self._epsilon_used = float("nan")

    def k_m(self, budget: int) -> int:
        """How many lowest-margin candidates enter the round-robin: ceil(k_m_factor x budget)."""
        return max(int(budget), math.ceil(round(self.k_m_factor * budget, 6)))

    @property
    def cluster_of(self) -> np.ndarray | None:
        """Cluster id per global train index [n_train] (-1: not clustered); None before clustering."""
        return self._cluster_of

    @property
    def epsilon_used(self) -> float:
        """The HAC threshold of the clustering (given or chosen), NaN before the first selection."""
        return self._epsilon_used

    def cluster(self, ctx: SelectionContext) -> None:
        """Cluster the unlabeled pool in the penultimate features of ``ctx.model`` and keep the ids."""
        cand = ctx.candidates
        extra = np.setdiff1d(ctx.pool.unlabeled_indices, cand)
        parts = [ctx.features()]
        if len(extra):
            parts.append(logits_and_features(ctx.model, ctx.data, extra, bf16=ctx.bf16)[1])
        z = torch.cat(parts).float().to(ctx.device)
        labels, eps = cluster_pool(
            z, self.epsilon, self.target_cluster_size, self.max_cluster_points, ctx.rng
        )
        cluster_of = np.full(len(ctx.pool.labeled_cycle), -1, np.int64)
        cluster_of[np.concatenate([cand, extra])] = labels
        self._cluster_of, self._epsilon_used = cluster_of, eps

    def select(self, ctx: SelectionContext) -> np.ndarray:
        if self._cluster_of is None:
            self.cluster(ctx)
        assert self._cluster_of is not None
        ids = self._cluster_of[ctx.candidates]
        if (ids < 0).any():
            raise RuntimeError(
                f"cluster_margin: {int((ids < 0).sum())} candidates were not in the pool clustered at the "
                "first selection"
            )
        margins = -margin(ctx.probs())
        pos = cluster_margin_select(margins, ids, ctx.budget, self.k_m(ctx.budget), ctx.rng)
        return ctx.candidates[pos]

    def state_dict(self) -> dict:
        if self._cluster_of is None:
            return {}
        return {"cluster_of": torch.from_numpy(self._cluster_of.copy()), "epsilon": float(self._epsilon_used)}

    def load_state_dict(self, state: dict) -> None:
        if "cluster_of" not in state:
            self._cluster_of, self._epsilon_used = None, float("nan")
            return
        ids = state["cluster_of"]
        ids = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        self._cluster_of = np.asarray(ids, np.int64).copy()
        self._epsilon_used = float(state["epsilon"])
