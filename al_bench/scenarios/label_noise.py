"""Noisy oracle: with probability ``eta`` the label bought is wrong, symmetric or class-dependent.

The noisy label of every train row is drawn once from (scenario seed, row): re-querying a sample (or resuming
a run) gives the same answer. The pool is the whole train split; the test split is never touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.scenarios.base import Scenario, ScenarioPool, check_number

KINDS = ("symmetric", "asymmetric")


def noise_targets(num_classes: int, pairs: Sequence[Sequence[int]] | None) -> np.ndarray:
    """[C] int64: the class each class flips to under asymmetric noise (-1: never flips).

    ``pairs`` = [[src, dst], ...] (Patrini et al. 2017 style, e.g. MNIST 2->7, 3->8, 5<->6, 7->1); None = the
    pair flip c -> (c + 1) mod C of Han et al. 2018 (co-teaching).
    """
    if pairs is None:
        return (np.arange(num_classes) + 1) % num_classes
    targets = np.full(num_classes, -1, dtype=np.int64)
    for pair in pairs:
        if (
            not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(v, int) and 0 <= v < num_classes for v in pair)
        ):
            raise ALBenchError(
                f"scenario.pairs holds {pair!r}: each pair is [src, dst], classes 0..{num_classes - 1}"
            )
        src, dst = int(pair[0]), int(pair[1])
        if src == dst or targets[src] >= 0:
            raise ALBenchError(
                f"scenario.pairs: class {src} flips to itself or to two classes; list each src once"
            )
        targets[src] = dst
    return targets


def noisy_labels(
    labels: np.ndarray,
    num_classes: int,
    eta: float,
    rng: np.random.Generator,
    targets: np.ndarray | None = None,
) -> np.ndarray:
    """The oracle's answers [N] for true ``labels`` [N]: each row flips with probability ``eta``.

    Symmetric (``targets`` None): a flipped row gets a uniformly random *other* class, so exactly the flipped
    rows are wrong. Asymmetric: a row of class c flips to ``targets[c]`` (rows of classes with target -1 never
    flip). One uniform and one class offset are drawn per row whatever the kind, so for one seed a larger
    ``eta`` only adds flips.
    """
    labels = np.asarray(labels, dtype=np.int64)
    u = rng.random(len(labels))
    offset = rng.integers(1, num_classes, size=len(labels)) if num_classes > 1 else np.zeros(len(labels), int)
    flip = u < eta
    if targets is None:
        return np.where(flip, (labels + offset) % num_classes, labels)
    to = targets[labels]
    return np.where(flip & (to >= 0), to, labels)


class LabelNoise(Scenario):
    """The oracle answers a wrong label with probability ``eta`` (``kind`` symmetric or asymmetric ``pairs``).

    The validation split's labels come from the same oracle (noisy: what a real validation set would hold).
    """

    name = "label_noise"

    def __init__(
        self,
        eta: float = 0.2,
        kind: str = "symmetric",
        pairs: Sequence[Sequence[int]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.eta = check_number("eta", eta, 0.0, 1.0)
        if kind not in KINDS:
            raise ALBenchError(f"unknown scenario.kind {kind!r}; valid: {', '.join(KINDS)}")
        if pairs is not None and kind != "asymmetric":
            raise ALBenchError("scenario.pairs needs scenario.kind=asymmetric (or set scenario.pairs=null)")
        self.kind = kind
        self.pairs = None if pairs is None else [list(p) if isinstance(p, Sequence) else p for p in pairs]

    def build(self, dataset: ArrayDataset, seed: int) -> ScenarioPool:
        truth = dataset.y_train.numpy().copy()
        c = dataset.num_classes
        if c < 2:
            raise ALBenchError(f"scenario=label_noise needs at least 2 classes, the dataset has {c}")
        targets = None if self.kind == "symmetric" else noise_targets(c, self.pairs)
        answers = noisy_labels(truth, c, self.eta, self.rng(seed), targets)
        view = dataclasses.replace(dataset, y_train=torch.as_tensor(answers, dtype=torch.int64))
        return ScenarioPool(self.name, view, np.arange(dataset.n_train, dtype=np.int64), truth)
