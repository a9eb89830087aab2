"""Run identity: the variant built from overrides, its directory name, and the resume-time config check."""

from __future__ import annotations

import pytest

from al_bench.run_identity import (
    MAX_VARIANT_CHARS,
    comparable,
    config_differences,
    is_volatile,
    parse_override,
    parse_variant,
    variant_dirname,
    variant_name,
)


def always(prefix: str, key: str, value: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budget.query_size=100", ("", "budget.query_size", "100")),
        ("++strategy.n_samples=5", ("++", "strategy.n_samples", "5")),
        ("+x.y=[1,2]", ("+", "x.y", "[1,2]")),
        ("~model.dropout", ("~", "model.dropout", "")),
        ("trainer/optimizer=sgd", ("", "trainer/optimizer", "sgd")),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_identity_and_volatile_keys_never_enter_the_variant():
    overrides = ["strategy=badge", "seed=3", "dataset=cifar10", "model=vgg11", "experiment=badge_cifar10",
                 "paths.results_dir=x", "verbose=false", "threads=2", "logger=wandb", "logger.project=p",
                 "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.progress_bar=true",
                 "trainer.engine=plain", "overwrite=true", "variant=abc"]  # fmt: skip
    assert variant_name(overrides, always) == ""
    assert not is_volatile("dataset.val_size") and not is_volatile("strategy.base")


def test_variant_is_sorted_and_drops_overrides_that_change_nothing():
    changes = lambda prefix, key, value: key != "budget.cycles"  # e.g. cycles given at its default value
    overrides = ["model.dropout=0.2", "budget.query_size=100", "budget.cycles=20", "scenario=open_set"]
    name = variant_name(overrides, changes)
    assert name == "budget.query_size=100,model.dropout=0.2,scenario=open_set"
    assert variant_name(["++strategy.beta=2", "~model.dropout"], always) == "strategy.beta=2,~model.dropout"
    # the order on the command line does not matter
    assert variant_name(["b.x=1", "a.y=2"], always) == variant_name(["a.y=2", "b.x=1"], always)


def test_dirname_is_safe_short_and_distinct():
    plain = "budget.query_size=100,model.dropout=0.2"
    assert variant_dirname(plain) == plain
    listy = variant_dirname("model.hidden=[64,64]")
    assert "/" not in listy and "[" not in listy and len(listy) <= MAX_VARIANT_CHARS
    assert listy != variant_dirname("model.hidden=[64,65]")
    long = ",".join(f"strategy.option_{i}={i}" for i in range(20))
    short = variant_dirname(long)
    assert len(short) <= MAX_VARIANT_CHARS and short.startswith("strategy.option_0=0")
    assert short != variant_dirname(long + ",x.y=1")
    assert variant_dirname("a.b=../../etc") != "a.b=../../etc" and "/" not in variant_dirname("a.b=../../etc")


def test_parse_variant_keeps_list_values_whole():
    assert parse_variant("budget.query_size=100,model.hidden=[64,64],~model.dropout") == {
        "budget.query_size": "100", "model.hidden": "[64,64]", "~model.dropout": "",
    }  # fmt: skip
    assert parse_variant("") == {} and parse_variant(None) == {}


def test_config_check_ignores_volatile_and_keys_added_later():
    old = {"seed": 0, "verbose": True, "paths": {"run_dir": "a"}, "model": {"dropout": 0.3}}
    new = {"seed": 0, "verbose": False, "paths": {"run_dir": "b"}, "model": {"dropout": 0.3, "new_opt": 1},
           "scenario": {"name": "clean"}, "variant": ""}  # fmt: skip
    assert config_differences(comparable(old), comparable(new)) == []
    new["model"]["dropout"] = 0.5
    assert config_differences(comparable(old), comparable(new)) == ["model.dropout"]
