"""The scenario interface: which training rows form the pool and what the oracle answers for each row.

A :class:`Scenario` (one per ``configs/scenario/*.yaml``) turns a dataset into a :class:`ScenarioPool`: the
learner's view of the dataset, whose training labels *are* the oracle's answers (noisy under label noise,
:data:`OOD` for a class the model never trains on), the rows from which the validation split and the pool
are drawn, and the hidden truth that only the benchmark's bookkeeping (``n_noisy``, the labeled class
histogram) reads. Nothing the learner or a strategy touches holds the truth: every label they read through
the data module (training batches, validation, ``SelectionContext.labeled_labels``) is what the oracle said.
The test split stays clean (open set: restricted to the known classes) so accuracies stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from al_bench.data.base import ArrayDataset, stratified_subset
from al_bench.errors import ALBenchError
from al_bench.seeding import numpy_rng

#: the oracle's answer for a sample of a class the model never trains on ("out of distribution")
OOD = -1


@dataclass
class ScenarioPool:
    """A dataset as one scenario presents it.

    name: the scenario's name (curve.csv's ``scenario`` column).
    dataset: the learner's view: ``y_train`` [N] = the oracle's answer for every train row (:data:`OOD` for
        an unknown class), ``x_test``/``y_test`` and ``num_classes`` in the learner's class numbering.
    rows: global train rows [R] that the validation split and the pool are drawn from, ascending.
    truth: [N] int64, each train row's clean class in the learner's numbering (:data:`OOD` for an unknown
        class); for the benchmark's bookkeeping only.
    """

    name: str
    dataset: ArrayDataset
    rows: np.ndarray
    truth: np.ndarray

    @property
    def answers(self) -> np.ndarray:
        """The oracle's answer [N] for every train row (what buying its label returns)."""
        return self.dataset.y_train.numpy()

    @property
    def ood(self) -> np.ndarray:
        """[N] bool: rows whose label the oracle answers "out of distribution"."""
        return self.answers == OOD

    def split(self, val_size: int, val_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(validation [V], pool [P]) global indices, ascending: the validation split is a stratified subset
        of the in-distribution ``rows`` by the oracle's answers (its labels are bought like any other, so
        noisy under label noise) drawn with ``val_seed``; the pool is every other row of ``rows``.

        For the clean scenario this is exactly :class:`ALDataModule`'s own split of the whole train set.
        """
        answers = self.answers
        labeled_rows = self.rows[answers[self.rows] != OOD]
        if val_size > len(labeled_rows):
            raise ALBenchError(
                f"dataset.val_size={val_size} exceeds the {len(labeled_rows)} in-distribution training "
                f"samples of scenario {self.name}: use a smaller dataset.val_size"
            )
        positions = stratified_subset(answers[labeled_rows], val_size, np.random.default_rng(val_seed))
        val = labeled_rows[positions]
        return val, np.setdiff1d(self.rows, val)

    def record(self, bought: np.ndarray) -> dict[str, Any]:
        """curve.csv's scenario columns for the labels ``bought`` so far (global indices [L], OOD included):
        ``scenario``, ``n_ood`` (labels spent on out-of-distribution samples), ``n_noisy`` (bought labels
        that are wrong) and ``labeled_hist`` (true class counts of the in-distribution labeled set,
        ``"12|10|9|..."``)."""
        bought = np.asarray(bought, dtype=np.int64)
        answers, truth = self.answers[bought], self.truth[bought]
        known = answers != OOD
        hist = np.bincount(truth[known], minlength=self.dataset.num_classes)
        return {
            "scenario": self.name,
            "n_ood": int((~known).sum()),
            "n_noisy": int((answers[known] != truth[known]).sum()),
            "labeled_hist": "|".join(str(int(n)) for n in hist),
        }


class Scenario:
    """Base class: ``build(dataset, seed)`` -> :class:`ScenarioPool`; subclasses take their yaml's keys.

    ``seed``: the seed of the scenario's own draws (which rows, which labels flip); None = the run's seed, so
    every repetition draws its own realisation and strategies compared at one seed share it.
    """

    name = "scenario"

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ALBenchError(f"scenario.seed must be null or an integer, got {seed!r}")
        self.seed = seed

    def rng(self, run_seed: int) -> np.random.Generator:
        """The generator of this scenario's draws: (scenario.seed or the run's seed, "scenario:<name>")."""
        return numpy_rng(run_seed if self.seed is None else self.seed, f"scenario:{self.name}")

    def build(self, dataset: ArrayDataset, seed: int) -> ScenarioPool:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Clean(Scenario):
    """The dataset as it is: every train row in the pool, the oracle answers the true label."""

    name = "clean"

    def build(self, dataset: ArrayDataset, seed: int) -> ScenarioPool:
        truth = dataset.y_train.numpy().copy()
        return ScenarioPool(self.name, dataset, np.arange(dataset.n_train, dtype=np.int64), truth)


def check_number(
    key: str, value: Any, low: float, high: float | None = None, *, closed_high: bool = True
) -> float:
    """``value`` as a float within [low, high] (or [low, high)), else one ALBenchError line naming ``key``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high if closed_high else value < high
    if not ok:
        bound = f">= {low}" if high is None else f"in [{low}, {high}{']' if closed_high else ')'}"
        raise ALBenchError(f"scenario.{key} must be a number {bound}, got {value!r}")
    return float(value)
