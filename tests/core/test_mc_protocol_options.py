"""Loop-level MC-dropout options: refused before training without dropout; MC-averaged test predictions;
validation labels recorded in the curve."""

from __future__ import annotations

from pathlib import Path

import pytest

from al_bench.errors import ALBenchError
from al_bench.loop import run


@pytest.mark.parametrize(
    "overrides",
    [
        ("strategy=bald", "model.dropout=0.0"),
        ("strategy=entropy", "model.dropout=0.0", "trainer.eval_mc_samples=4"),
    ],
)
def test_mc_dropout_without_dropout_is_refused_before_anything_is_written(make_cfg, overrides) -> None:
    cfg = make_cfg(*overrides)
    with pytest.raises(ALBenchError, match="no dropout layer"):
        run(cfg)
    assert not Path(cfg.paths.run_dir).exists()


def test_test_predictions_averaged_over_consistent_mc_samples(make_cfg, tmp_path) -> None:
    plain = run(make_cfg()).curve
    mc = run(make_cfg("trainer.eval_mc_samples=8", f"paths.results_dir={tmp_path}/mc")).curve
    again = run(make_cfg("trainer.eval_mc_samples=8", f"paths.results_dir={tmp_path}/again")).curve
    assert list(mc["test_acc"]) == list(again["test_acc"])  # seeded masks
    assert list(mc["test_loss"]) != list(plain["test_loss"])  # another predictive distribution
    assert list(mc["n_labeled"]) == list(plain["n_labeled"])


def test_curve_records_the_validation_labels_read(make_cfg) -> None:
    assert set(run(make_cfg("dataset.val_size=12")).curve["n_val"]) == {12}
    assert set(run(make_cfg(f"paths.results_dir={make_cfg().paths.results_dir}/none")).curve["n_val"]) == {0}
