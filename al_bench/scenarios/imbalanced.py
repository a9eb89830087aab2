"""Long-tailed pool: class c keeps a share of its samples that falls off with c (Cui et al., CVPR 2019).

The pool (and the validation split, drawn from it) is a seeded subset of the train split whose class counts
follow the profile exactly; the test split stays balanced. The learner's classes and labels are unchanged.
"""

from __future__ import annotations

import numpy as np

from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.scenarios.base import Scenario, ScenarioPool, check_number

PROFILES = ("exponential", "step")


def long_tail_counts(n_max: int, num_classes: int, rho: float, profile: str = "exponential") -> np.ndarray:
    """Per-class sample counts [C] (int64) with largest / smallest = ``rho``.

    exponential (Cui et al. 2019; Cao et al.'s LDAM code):
    ``n_c = floor(n_max * (1 / rho) ** (c / (C - 1)))``, so CIFAR-10 with n_max = 5000 and rho = 100 gives
    5000, 2997, 1796, ..., 83, 50 (12,406 in all).
    step (Buda et al. 2018): the first ``ceil(C / 2)`` classes keep ``n_max``, the other ``floor(C / 2)``
    keep ``floor(n_max / rho)``.
    """
    if num_classes < 2:
        raise ALBenchError(f"scenario=imbalanced needs at least 2 classes, the dataset has {num_classes}")
    c = np.arange(num_classes)
    if profile == "exponential":
        counts = [int(n_max * (1.0 / rho) ** (i / (num_classes - 1.0))) for i in c]
    elif profile == "step":
        counts = [n_max if i < num_classes - num_classes // 2 else int(n_max * (1.0 / rho)) for i in c]
    else:
        raise ALBenchError(f"unknown scenario.profile {profile!r}; valid: {', '.join(PROFILES)}")
    return np.asarray(counts, dtype=np.int64)


class Imbalanced(Scenario):
    """A long-tailed pool with imbalance factor ``rho`` (class 0 the largest, class C-1 the smallest).

    ``n_max``: the largest class's count; None = the smallest class count of the train split, so every class
    can supply its share (5000 on CIFAR-10, as in Cui et al.).
    """

    name = "imbalanced"

    def __init__(
        self,
        rho: float = 10.0,
        profile: str = "exponential",
        n_max: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.rho = check_number("rho", rho, 1.0)
        if profile not in PROFILES:
            raise ALBenchError(f"unknown scenario.profile {profile!r}; valid: {', '.join(PROFILES)}")
        self.profile = profile
        if n_max is not None and (not isinstance(n_max, int) or isinstance(n_max, bool) or n_max < 1):
            raise ALBenchError(f"scenario.n_max must be null or an integer >= 1, got {n_max!r}")
        self.n_max = n_max

    def build(self, dataset: ArrayDataset, seed: int) -> ScenarioPool:
        labels = dataset.y_train.numpy()
        available = np.bincount(labels, minlength=dataset.num_classes)
        n_max = int(available.min()) if self.n_max is None else self.n_max
        if n_max / self.rho < 1:
            raise ALBenchError(
                f"scenario.rho={self.rho:g} leaves the rarest class empty (largest class {n_max}): "
                f"use scenario.rho<={n_max}"
            )
        counts = long_tail_counts(n_max, dataset.num_classes, self.rho, self.profile)
        short = np.flatnonzero(counts > available)
        if len(short):
            c = int(short[0])
            raise ALBenchError(
                f"scenario=imbalanced asks {counts[c]} samples of class {c}, which has {available[c]}: "
                f"use a smaller scenario.n_max (or null)"
            )
        rng = self.rng(seed)
        rows = [
            rng.choice(np.flatnonzero(labels == c), size=int(n), replace=False) for c, n in enumerate(counts)
        ]
        truth = labels.copy()
        return ScenarioPool(self.name, dataset, np.sort(np.concatenate(rows)).astype(np.int64), truth)
