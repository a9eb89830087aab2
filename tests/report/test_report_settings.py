"""Settings (dataset, model, budget, scenario, variant): defaults for older curves, variants parsed."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from al_bench.report.aggregate import (
    SETTING_KEYS,
    load_curves,
    load_status,
    parse_variant,
    setting_label,
    settings_frame,
)
from al_bench.report.metrics import seed_aubc
from al_bench.report.protocol import protocols
from tests.report.test_report_cli import write_run
from tests.report.test_report_html import VARIANT, write_variant_run


def test_parse_variant():
    assert parse_variant("") == {}
    assert parse_variant("budget.query_size=100,model.dropout=0.2") == {
        "budget.query_size": "100",
        "model.dropout": "0.2",
    }
    assert parse_variant("trainer.milestones=[60,80],x='a,b'") == {
        "trainer.milestones": "[60,80]",
        "x": "'a,b'",
    }
    assert parse_variant("~trainer.scheduler,budget.cycles=3") == {
        "~trainer.scheduler": "",
        "budget.cycles": "3",
    }
    label = setting_label(("c", "r", "b", "clean", "~trainer.scheduler,budget.cycles=3"))
    assert label == "c / r / b / ~trainer.scheduler, budget.cycles=3"


def test_setting_label_hides_defaults_and_shows_overrides():
    assert setting_label(("digits", "mlp", "digits", "clean", "")) == "digits / mlp / digits"
    assert setting_label(
        {"dataset": "c", "model": "r", "budget": "b", "scenario": "imbalanced", "variant": ""}
    ) == ("c / r / b / imbalanced")
    assert setting_label(("c", "r", "b", "clean", "budget.query_size=100,model.dropout=0.2")) == (
        "c / r / b / budget.query_size=100, model.dropout=0.2"
    )
    assert setting_label(("toy", "mlp", "tiny"), ("dataset", "model", "budget")) == "toy / mlp / tiny"


def test_older_curves_default_scenario_and_variant(tmp_path):
    write_run(tmp_path, "random", 0, [0.5, 0.6])  # no scenario / variant columns
    frame = load_curves(tmp_path)
    assert SETTING_KEYS == ("dataset", "model", "budget", "scenario", "variant")
    assert frame["scenario"].tolist() == ["clean", "clean"] and frame["variant"].tolist() == ["", ""]
    assert list(seed_aubc(frame).columns[:5]) == list(SETTING_KEYS)


def test_variants_are_separate_settings_with_their_keys_as_columns(tmp_path):
    for variant in ("", VARIANT, "budget.query_size=5"):
        write_variant_run(tmp_path, "random", 0, variant, [0.5, 0.6], {"state": "finished"})
    frame = load_curves(tmp_path)
    settings = settings_frame(frame)
    assert len(settings) == 3 and len(seed_aubc(frame)) == 3  # same strategy and seed, three settings
    assert list(settings.columns[-2:]) == ["budget.query_size", "model.dropout"]  # in sorted-setting order
    row = settings.set_index("variant").loc[VARIANT]
    assert row["model.dropout"] == "0.2" and row["budget.query_size"] == ""
    assert row["label"] == "digits / mlp / digits / model.dropout=0.2"


def test_status_of_a_variant_run_without_curve_reads_the_path_and_config(tmp_path):
    run_dir = write_variant_run(tmp_path, "bald", 3, VARIANT, [0.5], {"state": "failed", "message": "x"})
    (run_dir / "curve.csv").unlink()
    old = tmp_path / "digits" / "mlp" / "random" / "seed=1"  # no variant level, no config
    old.mkdir(parents=True)
    (old / "status.json").write_text(json.dumps({"state": "running"}))
    status = load_status(tmp_path).set_index("strategy")
    assert status.loc["bald", "variant"] == VARIANT and status.loc["bald", "seed"] == 3
    assert status.loc["bald", "budget"] == "digits" and status.loc["bald", "scenario"] == "clean"
    assert status.loc["random", "variant"] == "" and status.loc["random", "seed"] == 1
    assert pd.isna(status.loc["random", "budget"])


def test_curves_without_setting_columns_take_them_from_config_yaml(tmp_path):
    for variant in ("", VARIANT):
        run_dir = write_variant_run(tmp_path, "random", 0, variant, [0.5, 0.6], {"state": "finished"})
        curve = pd.read_csv(run_dir / "curve.csv").drop(columns=["scenario", "variant"])
        curve.to_csv(run_dir / "curve.csv", index=False)
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config |= {"variant": variant, "scenario": {"name": "imbalanced", "ratio": 10}}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    frame = load_curves(tmp_path)  # two runs of (random, 0): distinct only through their variants
    assert sorted(frame["variant"].unique()) == ["", VARIANT] and set(frame["scenario"]) == {"imbalanced"}
    (protocol, _) = protocols(frame)
    assert ("scenario", "imbalanced") in protocol.main and ("scenario.ratio", "10") in protocol.main
    assert protocol.label == "digits / mlp / digits / imbalanced"


def test_older_curve_in_a_variant_directory_takes_the_directory_variant(tmp_path):
    """A curve that predates the variant column, moved under <strategy>/<variant>/ (a grid reusing a suite's
    run): its setting is that variant, not the default one."""
    run_dir = write_run(tmp_path, "bald", 0, [0.5, 0.6])
    moved = run_dir.parent / "mc_dropout" / "seed=0"
    moved.parent.mkdir()
    run_dir.rename(moved)
    (moved / "config.yaml").write_text(yaml.safe_dump({"strategy": {"name": "bald"}, "variant": None}))
    frame = load_curves(tmp_path)
    assert frame["variant"].tolist() == ["mc_dropout", "mc_dropout"]
    write_run(tmp_path / "other", "bald", 0, [0.5, 0.6])  # no config, no variant level: the default
    assert load_curves(tmp_path / "other")["variant"].tolist() == ["", ""]
