"""The loop end to end: files, curve rows, determinism, resume after a crash, finished runs, overwrite."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import al_bench.loop as loop
from al_bench.errors import ConfigMismatchError
from al_bench.loop import run


def test_two_cycle_run_writes_results(make_cfg):
    cfg = make_cfg("strategy=margin")
    result = run(cfg)
    d = result.run_dir
    assert d.parts[-4:] == ("synthetic", "mlp", "margin", "seed=0")
    for name in ("curve.csv", "selected.csv", "config.yaml", "status.json", "state.pt"):
        assert (d / name).exists(), name
    curve = pd.read_csv(d / "curve.csv")
    for col in ("dataset", "model", "strategy", "seed", "cycle", "n_labeled", "test_acc", "test_loss",
                "train_s", "select_s"):  # fmt: skip
        assert col in curve.columns
    assert curve["cycle"].tolist() == [0, 1, 2]
    assert curve["n_labeled"].tolist() == [8, 12, 16]
    assert curve["test_acc"].between(0, 1).all()
    assert curve["select_s"].isna().tolist() == [False, False, True]
    selected = pd.read_csv(d / "selected.csv")
    assert selected.groupby("cycle").size().tolist() == [8, 4, 4]
    assert json.loads((d / "status.json").read_text())["state"] == "finished"


def test_same_seed_same_curve_and_selections(make_cfg, tmp_path):
    runs = [run(make_cfg("strategy=entropy", f"paths.run_dir={tmp_path}/r{i}")) for i in range(2)]
    a, b = (r.curve.drop(columns=["train_s", "select_s", "eval_s"]) for r in runs)
    pd.testing.assert_frame_equal(a, b)
    sa, sb = (pd.read_csv(r.run_dir / "selected.csv") for r in runs)
    pd.testing.assert_frame_equal(sa, sb)


def test_other_seed_other_selections(make_cfg, tmp_path):
    a = run(make_cfg("strategy=random", "seed=0", f"paths.run_dir={tmp_path}/a"))
    b = run(make_cfg("strategy=random", "seed=1", f"paths.run_dir={tmp_path}/b"))
    sa, sb = (pd.read_csv(r.run_dir / "selected.csv") for r in (a, b))
    assert not np.array_equal(sa["index"].to_numpy(), sb["index"].to_numpy())


@pytest.mark.parametrize("warm", [False, True])
def test_resume_after_crash_gives_the_uninterrupted_curve(make_cfg, tmp_path, monkeypatch, warm):
    common = ["strategy=entropy", "budget.cycles=3", f"trainer.warm_start={str(warm).lower()}"]
    reference = run(make_cfg(*common, f"paths.run_dir={tmp_path}/ref"))

    real_run_cycle = loop.run_cycle

    def crash_in_cycle_2(cfg, data, pool, strategy, cycle, net, *rest):
        if cycle == 2:
            raise KeyboardInterrupt("simulated kill")
        return real_run_cycle(cfg, data, pool, strategy, cycle, net, *rest)

    monkeypatch.setattr(loop, "run_cycle", crash_in_cycle_2)
    cfg = make_cfg(*common, f"paths.run_dir={tmp_path}/crash")
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    partial = pd.read_csv(tmp_path / "crash" / "curve.csv")
    assert partial["cycle"].tolist() == [0, 1], "the finished cycles are kept"
    monkeypatch.setattr(loop, "run_cycle", real_run_cycle)

    resumed = run(cfg)
    drop = ["train_s", "select_s", "eval_s"]
    pd.testing.assert_frame_equal(resumed.curve.drop(columns=drop), reference.curve.drop(columns=drop))
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed.run_dir / "selected.csv"), pd.read_csv(reference.run_dir / "selected.csv")
    )


def test_finished_run_is_not_redone_unless_overwrite(make_cfg, capsys):
    cfg = make_cfg("verbose=true")
    run(cfg)
    mtime = (run(cfg).run_dir / "curve.csv").stat().st_mtime
    again = run(cfg)
    assert again.status == "already_finished"
    assert "already finished" in capsys.readouterr().out
    assert (again.run_dir / "curve.csv").stat().st_mtime == mtime
    redone = run(make_cfg("verbose=true", "overwrite=true"))
    assert redone.status == "finished"


def test_resume_with_another_config_is_refused(make_cfg):
    run(make_cfg())
    with pytest.raises(ConfigMismatchError, match="budget.query_size"):
        run(make_cfg("budget.query_size=5"))


def test_warm_start_differs_from_cold(make_cfg, tmp_path):
    cold = run(make_cfg("strategy=random", f"paths.run_dir={tmp_path}/cold"))
    warm = run(make_cfg("strategy=random", "trainer.warm_start=true", f"paths.run_dir={tmp_path}/warm"))
    assert cold.curve["test_loss"].iloc[0] == pytest.approx(warm.curve["test_loss"].iloc[0])  # same cycle 0
    assert not np.allclose(cold.curve["test_loss"].iloc[1:], warm.curve["test_loss"].iloc[1:])


def test_pool_subset_limits_candidates(make_cfg):
    result = run(make_cfg("strategy=entropy", "budget.pool_subset=10"))
    assert len(result.curve) == 3


def test_wandb_logger_offline(make_cfg, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = run(make_cfg("logger=wandb", "budget.cycles=1"))
    runs = list((result.run_dir / "wandb").glob("offline-run-*"))
    assert runs, "an offline W&B run directory is written"
    assert any(p.suffix == ".wandb" for p in runs[0].iterdir())


def test_diagnostics_write_dispersion_bins_for_any_strategy(make_cfg):
    result = run(make_cfg("strategy=random", "diagnostics=true", "budget.cycles=1", "trainer.max_epochs=3"))
    frame = pd.read_csv(result.run_dir / "diagnostics_dispersion_cycle0.csv")
    assert frame["count"].sum() == 200 - 8, "every unlabeled pool sample is binned"
    assert (result.run_dir / "diagnostics_dispersion_cycle0.png").stat().st_size > 0


def test_drop_last_option_runs_through_the_loop(make_cfg):
    result = run(make_cfg("trainer.drop_last=true", "trainer.batch_size=5", "budget.cycles=1"))
    assert result.curve["n_labeled"].tolist() == [8, 12]


def test_a_strategy_that_reads_validation_gets_a_default_split_counted_as_labels(make_cfg, capsys):
    cfg = make_cfg("strategy=isal", "budget.cycles=1", "verbose=true", "strategy.params=last_layer")
    result = run(cfg)
    assert "dataset.val_size=100" in capsys.readouterr().out
    assert (result.curve["n_val"] == 100).all() and result.curve["val_acc"].notna().all()
    again = run(make_cfg("strategy=isal", "budget.cycles=1", "strategy.params=last_layer"))
    assert again.status == "already_finished"  # the default is applied before the resume check
