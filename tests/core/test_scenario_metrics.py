"""Balanced accuracy, worst-class accuracy and macro-F1 (issue 18) against scikit-learn on hand-made
predictions, accumulated over evaluation batches, and in every run's curve.csv."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.inference import class_metrics, confusion_matrix, evaluate
from al_bench.loop import run

CASES = {  # target, prediction, number of classes
    "perfect": ([0, 1, 2, 2], [0, 1, 2, 2], 3),
    "class 2 never predicted": ([0, 0, 1, 1, 2, 2], [0, 0, 1, 0, 1, 0], 3),
    "class 3 predicted, absent from the targets": ([0, 1, 1, 2], [3, 1, 1, 2], 4),
    "one class only": ([1, 1, 1], [1, 0, 1], 2),
}


def sklearn_metrics(target: list[int], pred: list[int]) -> dict[str, float]:
    present = sorted(set(target))
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
        warnings.simplefilter("ignore")
        return {
            "balanced_acc": balanced_accuracy_score(target, pred),
            "worst_class_acc": recall_score(target, pred, labels=present, average=None).min(),
            "macro_f1": f1_score(target, pred, average="macro", zero_division=0),
        }


@pytest.mark.parametrize("case", list(CASES))
def test_class_metrics_match_scikit_learn_on_hand_made_predictions(case):
    target, pred, c = CASES[case]
    ours = class_metrics(confusion_matrix(torch.tensor(target), torch.tensor(pred), c))
    assert ours == pytest.approx(sklearn_metrics(target, pred), abs=1e-12)


def test_known_values_by_hand():
    # recalls 1, 1/2, 0 -> balanced 1/2, worst 0; F1: class 0 2*2/(2+4)=2/3, class 1 2/(2+2)=1/2, class 2 0
    target, pred, c = CASES["class 2 never predicted"]
    ours = class_metrics(confusion_matrix(torch.tensor(target), torch.tensor(pred), c))
    assert ours == pytest.approx(
        {"balanced_acc": 0.5, "worst_class_acc": 0.0, "macro_f1": (2 / 3 + 1 / 2) / 3}
    )
    assert np.isnan(class_metrics(torch.zeros(3, 3, dtype=torch.long))["balanced_acc"])


def test_random_predictions_match_scikit_learn():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 7, 500)
    pred = np.where(rng.random(500) < 0.6, target, rng.integers(0, 7, 500))
    ours = class_metrics(confusion_matrix(torch.as_tensor(target), torch.as_tensor(pred), 7))
    assert ours == pytest.approx(sklearn_metrics(target.tolist(), pred.tolist()), abs=1e-12)


class FixedPredictions(torch.nn.Module):
    """Logits that put all mass on a stored prediction per test row (input x = the row number)."""

    def __init__(self, pred: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.logits = torch.nn.functional.one_hot(pred, num_classes).float() * 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x[:, 0].long()]


def test_evaluate_accumulates_the_metrics_over_batches():
    rng = np.random.default_rng(1)
    target = torch.as_tensor(rng.integers(0, 4, 37))
    pred = torch.as_tensor(np.where(rng.random(37) < 0.5, target.numpy(), rng.integers(0, 4, 37)))
    x = torch.arange(37, dtype=torch.float32)[:, None]
    data = ALDataModule(ArrayDataset("t", x, target, x, target, 4), eval_batch_size=5)  # 8 batches
    out = evaluate(FixedPredictions(pred, 4), data)
    assert out["acc"] == pytest.approx(float((pred == target).float().mean()))
    expected = sklearn_metrics(target.tolist(), pred.tolist())
    assert {k: out[k] for k in expected} == pytest.approx(expected, abs=1e-12)


def test_every_run_records_the_class_metrics_and_the_labeled_histogram(make_cfg):
    curve = pd.read_csv(run(make_cfg("strategy=random", "budget.cycles=1")).run_dir / "curve.csv")
    for col in ("balanced_acc", "worst_class_acc", "macro_f1"):
        assert curve[col].between(0, 1).all(), col
    assert (curve["worst_class_acc"] <= curve["balanced_acc"]).all()
    assert curve["scenario"].tolist() == ["clean", "clean"]
    assert curve[["n_ood", "n_noisy"]].to_numpy().sum() == 0
    hist = [[int(v) for v in h.split("|")] for h in curve["labeled_hist"]]
    assert [sum(h) for h in hist] == curve["n_labeled"].tolist() and all(len(h) == 4 for h in hist)
    assert hist[0] == [2, 2, 2, 2], "TINY's 8 class-balanced initial labels"
