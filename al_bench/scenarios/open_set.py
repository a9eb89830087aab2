"""Open-set pool: a share of the pool comes from classes the model never trains on (held-out classes).

The model trains on the known classes, renumbered 0..K-1 in the order given; the pool holds every train row
of a known class plus a seeded draw of rows of the other classes, so that they make ``ood_fraction`` of it.
Buying the label of such a row costs one label and returns "out of distribution" (:data:`OOD`): it is never
trained on. The test split keeps the known classes only (renumbered the same way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.scenarios.base import OOD, Scenario, ScenarioPool, check_number


def class_map(num_classes: int, known: Sequence[int]) -> np.ndarray:
    """[C] int64: the learner's class of each dataset class (its position in ``known``; else :data:`OOD`)."""
    out = np.full(num_classes, OOD, dtype=np.int64)
    out[np.asarray(known, dtype=np.int64)] = np.arange(len(known))
    return out


def n_ood_rows(n_known_rows: int, ood_fraction: float) -> int:
    """How many unknown-class rows join ``n_known_rows`` known ones so that they make ``ood_fraction`` of the
    pool: ``round(n_known * f / (1 - f))``."""
    return int(round(n_known_rows * ood_fraction / (1.0 - ood_fraction)))


class OpenSet(Scenario):
    """Known classes ``known_classes`` (None: the first ``round(known_fraction * C)``), ``ood_fraction`` of
    the pool from the other classes of the same dataset."""

    name = "open_set"

    def __init__(
        self,
        known_classes: Sequence[int] | None = None,
        known_fraction: float = 0.6,
        ood_fraction: float = 0.3,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.known_classes = None if known_classes is None else [int(c) for c in known_classes]
        self.known_fraction = check_number("known_fraction", known_fraction, 0.0, 1.0)
        self.ood_fraction = check_number("ood_fraction", ood_fraction, 0.0, 1.0, closed_high=False)

    def known(self, num_classes: int) -> list[int]:
        """The known classes, in the learner's order; at least one known and one unknown class."""
        if self.known_classes is not None:
            known = self.known_classes
            if len(set(known)) != len(known) or not all(0 <= c < num_classes for c in known):
                raise ALBenchError(
                    f"scenario.known_classes={known} must be distinct classes among 0..{num_classes - 1}"
                )
        else:
            known = list(range(int(round(self.known_fraction * num_classes))))
        if not 1 <= len(known) < num_classes:
            raise ALBenchError(
                f"scenario=open_set needs 1 to {num_classes - 1} known classes of {num_classes}, got "
                f"{len(known)}: set scenario.known_fraction or scenario.known_classes"
            )
        return known

    def build(self, dataset: ArrayDataset, seed: int) -> ScenarioPool:
        known = self.known(dataset.num_classes)
        mapping = class_map(dataset.num_classes, known)
        truth = mapping[dataset.y_train.numpy()]
        known_rows, unknown_rows = np.flatnonzero(truth != OOD), np.flatnonzero(truth == OOD)
        m = n_ood_rows(len(known_rows), self.ood_fraction)
        if m > len(unknown_rows):
            most = len(unknown_rows) / (len(known_rows) + len(unknown_rows))
            raise ALBenchError(
                f"scenario.ood_fraction={self.ood_fraction:g} needs {m} samples of unknown classes, the "
                f"dataset has {len(unknown_rows)}: use scenario.ood_fraction<={most:.3f} or fewer known "
                "classes"
            )
        ood_rows = self.rng(seed).choice(unknown_rows, size=m, replace=False)
        test_classes = mapping[dataset.y_test.numpy()]
        keep = torch.as_tensor(test_classes != OOD)
        view = dataclasses.replace(
            dataset,
            y_train=torch.as_tensor(truth, dtype=torch.int64),
            x_test=dataset.x_test[keep],
            y_test=torch.as_tensor(test_classes[test_classes != OOD], dtype=torch.int64),
            num_classes=len(known),
            classes=[dataset.classes[c] for c in known] if dataset.classes else [],
        )
        rows = np.sort(np.concatenate([known_rows, ood_rows])).astype(np.int64)
        return ScenarioPool(self.name, view, rows, truth.copy())
