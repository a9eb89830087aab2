"""ActivePool: which global indices are labeled, and in which cycle each one was labeled."""

from __future__ import annotations

import numpy as np


class ActivePool:
    """Tracks labels over a fixed set of global indices (the pool).

    ``labeled_cycle[i]`` is the cycle in which the label of global index ``i`` was bought (0 = initial set),
    -1 while unlabeled, -2 for indices that are not part of the pool (test/validation rows).

    ``ood`` [size] (bool, optional) marks the rows for which the oracle answers "out of distribution"
    (``scenario=open_set``): buying such a label costs one label (``n_labeled``, ``n_ood``) and adds nothing,
    so the row leaves the unlabeled pool but never enters ``labeled_indices``, the set that training and
    strategies see. Without ``ood`` every bought label is a class label.
    """

    UNLABELED = -1
    NOT_IN_POOL = -2

    def __init__(
        self, pool_indices: np.ndarray, size: int | None = None, ood: np.ndarray | None = None
    ) -> None:
        pool_indices = np.asarray(pool_indices, dtype=np.int64)
        n = int(size if size is not None else (pool_indices.max() + 1 if len(pool_indices) else 0))
        self.labeled_cycle = np.full(n, self.NOT_IN_POOL, dtype=np.int32)
        self.labeled_cycle[pool_indices] = self.UNLABELED
        self.ood = np.zeros(n, dtype=bool) if ood is None else np.asarray(ood, dtype=bool).copy()
        if self.ood.shape != (n,):
            raise ValueError(f"ood mask has shape {self.ood.shape}, expected ({n},)")

    # ---- queries -------------------------------------------------------------------------------------
    @property
    def pool_indices(self) -> np.ndarray:
        """All global indices in the pool, labeled or not, ascending."""
        return np.flatnonzero(self.labeled_cycle != self.NOT_IN_POOL)

    @property
    def labeled_indices(self) -> np.ndarray:
        """Global indices labeled with a class so far (the training set), ascending; OOD answers excluded."""
        return np.flatnonzero((self.labeled_cycle >= 0) & ~self.ood)

    @property
    def ood_indices(self) -> np.ndarray:
        """Global indices whose label was bought and answered "out of distribution", ascending."""
        return np.flatnonzero((self.labeled_cycle >= 0) & self.ood)

    @property
    def unlabeled_indices(self) -> np.ndarray:
        """Global indices still unlabeled, ascending."""
        return np.flatnonzero(self.labeled_cycle == self.UNLABELED)

    @property
    def n_labeled(self) -> int:
        """Labels bought so far (the budget spent), OOD answers included."""
        return int((self.labeled_cycle >= 0).sum())

    @property
    def n_ood(self) -> int:
        """Labels bought that the oracle answered "out of distribution"."""
        return int(((self.labeled_cycle >= 0) & self.ood).sum())

    @property
    def n_unlabeled(self) -> int:
        return int((self.labeled_cycle == self.UNLABELED).sum())

    def labeled_in_cycle(self, cycle: int) -> np.ndarray:
        """Global indices whose label was bought in ``cycle`` (OOD answers included), ascending."""
        return np.flatnonzero(self.labeled_cycle == cycle)

    def bought_through(self, cycle: int) -> np.ndarray:
        """Global indices whose label was bought in cycles 0..``cycle`` (OOD answers included), ascending."""
        return np.flatnonzero((self.labeled_cycle >= 0) & (self.labeled_cycle <= cycle))

    def is_labeled(self, indices: np.ndarray) -> np.ndarray:
        """Whether the label of each of ``indices`` was bought (OOD answers included) [N] bool."""
        return self.labeled_cycle[np.asarray(indices, dtype=np.int64)] >= 0

    # ---- updates -------------------------------------------------------------------------------------
    def label(self, indices: np.ndarray, cycle: int) -> None:
        """Buy the labels of global ``indices`` in ``cycle`` (unique, in the pool, unlabeled)."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(np.unique(indices)) != len(indices):
            raise ValueError("indices to label contain duplicates")
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self.labeled_cycle)):
            raise ValueError("indices to label are outside the dataset")
        state = self.labeled_cycle[indices]
        if (state == self.NOT_IN_POOL).any():
            raise ValueError(f"indices not in the pool: {indices[state == self.NOT_IN_POOL][:10].tolist()}")
        if (state >= 0).any():
            raise ValueError(f"indices already labeled: {indices[state >= 0][:10].tolist()}")
        self.labeled_cycle[indices] = cycle

    # ---- persistence ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What changes during a run (``ood`` is fixed by the scenario, rebuilt from config and seed)."""
        return {"labeled_cycle": self.labeled_cycle.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.labeled_cycle = np.asarray(state["labeled_cycle"], dtype=np.int32).copy()
