"""The labeling budget: validation before any training, the initial labeled set, per-cycle candidates."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from al_bench.data.base import ALDataModule
from al_bench.errors import BudgetError
from al_bench.pool import ActivePool
from al_bench.scenarios.base import OOD


def validate_budget(budget: DictConfig, n_pool: int, scenario: str = "clean") -> None:
    """Refuse an impossible budget for a pool of ``n_pool`` samples (the ``scenario``'s pool) before any
    training, with one line that says what to change."""
    init, query, cycles = budget.get("init_size"), budget.get("query_size"), budget.get("cycles")
    for key, value, low in (("init_size", init, 1), ("query_size", query, 1), ("cycles", cycles, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise BudgetError(f"budget.{key} must be an integer >= {low}, got {value!r}")
    need = init + cycles * query
    if need > n_pool:
        most = max((n_pool - init) // query, 0)
        raise BudgetError(
            f"budget needs {need} labels (budget.init_size={init} + budget.cycles={cycles} x "
            f"budget.query_size={query}) but the pool has only {n_pool} samples"
            + ("" if scenario == "clean" else f" under scenario={scenario}")
            + ": "
            + (f"use budget.cycles<={most} or a smaller budget.query_size" if init <= n_pool else
               "use a smaller budget.init_size")
        )  # fmt: skip
    subset = budget.get("pool_subset")
    if subset is not None and (not isinstance(subset, int) or subset < query):
        raise BudgetError(
            f"budget.pool_subset must be null or an integer >= budget.query_size ({query}), got {subset!r}"
        )


def initial_labeled(
    data: ALDataModule, budget: DictConfig, rng: np.random.Generator, balanced: bool | None = None
) -> np.ndarray:
    """The initial labeled set [init_size] of global pool indices: uniformly random over the pool, or
    class-balanced (``budget.init_balanced``) by the oracle's labels over the pool's in-distribution samples:
    equal counts per class, a class that runs out (a rare class of an imbalanced pool) gives all it has and
    leaves its share to the others. ``balanced`` overrides ``budget.init_balanced`` (cold start)."""
    pool = data.pool_indices
    size = int(budget.init_size)
    if not (budget.get("init_balanced", False) if balanced is None else balanced):
        return np.sort(rng.choice(pool, size=size, replace=False))
    pool = pool[data.all_train_labels[pool] != OOD]  # open set: classes only; no out-of-distribution "class"
    return np.sort(pool[balanced_positions(data.all_train_labels[pool], size, rng)])


def balanced_positions(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` positions of ``labels`` with equal counts per class (remainders to randomly ordered classes;
    a class that runs out leaves its share to the others)."""
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = rng.permutation(len(by_class))
    taken, picks = [0] * len(by_class), []
    while len(picks) < size:
        progressed = False
        for c in order:
            if len(picks) == size:
                break
            if taken[c] < len(by_class[c]):
                picks.append(by_class[c][taken[c]])
                taken[c] += 1
                progressed = True
        if not progressed:
            raise BudgetError(f"cannot draw {size} initial labels from {len(labels)} samples")
    return np.asarray(picks, dtype=np.int64)


def draw_candidates(pool: ActivePool, subset: int | None, rng: np.random.Generator) -> np.ndarray:
    """The unlabeled global indices a strategy may choose from this cycle (a fresh random subset if asked)."""
    unlabeled = pool.unlabeled_indices
    if subset is None or subset >= len(unlabeled):
        return unlabeled
    return np.sort(rng.choice(unlabeled, size=int(subset), replace=False))
