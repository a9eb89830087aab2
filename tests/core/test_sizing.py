"""Suites' CPU sizing as configs: an experiment selects a profile (configs/sizing/), whose
configs/sized_strategy/<profile>_<strategy>.yaml replace that strategy's options in the composed config; the
command line still wins, other strategies and profiles are untouched, and every sizing file is well formed."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import CONFIGS, config_names

PROFILES = config_names("sizing")
SIZED = config_names("sized_strategy")


def _profile_and_strategy(name: str) -> tuple[str, str]:
    profile = next(p for p in PROFILES if name.startswith(p + "_"))
    return profile, name[len(profile) + 1 :]


@pytest.mark.parametrize("name", SIZED)
def test_every_sized_file_names_a_profile_a_strategy_and_only_its_options(name):
    profile, strategy = _profile_and_strategy(name)
    assert strategy in config_names("strategy"), f"{name}: no configs/strategy/{strategy}.yaml"
    text = (CONFIGS / "sized_strategy" / f"{name}.yaml").read_text()
    assert text.startswith("# @package strategy\n"), f"{name} must merge into the strategy node"
    options = yaml.safe_load(text) or {}
    known = yaml.safe_load((CONFIGS / "strategy" / f"{strategy}.yaml").read_text())
    assert options and set(options) <= set(known) - {"name", "_target_"}, (name, set(options) - set(known))


@pytest.mark.parametrize("name", SIZED)
def test_the_profiles_experiment_gets_the_sized_options(make_cfg, name):
    profile, strategy = _profile_and_strategy(name)
    options = yaml.safe_load((CONFIGS / "sized_strategy" / f"{name}.yaml").read_text())
    cfg = make_cfg(f"strategy={strategy}", f"sizing={profile}", tiny=False)
    assert {k: cfg.strategy[k] for k in options} == options
    plain = make_cfg(f"strategy={strategy}", tiny=False)  # no profile: the strategy yaml's own defaults
    known = yaml.safe_load((CONFIGS / "strategy" / f"{strategy}.yaml").read_text())
    assert {k: plain.strategy[k] for k in options} == {k: known[k] for k in options}


def test_suites_select_their_profile_and_the_command_line_wins(make_cfg):
    frozen = make_cfg("experiment=fmnist_frozen_suite", "strategy=vaal", tiny=False)
    assert frozen.strategy.epochs == 1
    wins = make_cfg("experiment=fmnist_frozen_suite", "strategy=vaal", "strategy.epochs=7", tiny=False)
    assert wins.strategy.epochs == 7
    assert make_cfg("experiment=digits_suite", "strategy=vaal", tiny=False).strategy.epochs == 5
    assert make_cfg("experiment=fmnist_suite", "strategy=vaal", tiny=False).strategy.epochs == 2
    assert make_cfg("strategy=vaal", tiny=False).strategy.epochs == 100  # the authors' default
    badge = make_cfg("experiment=fmnist_frozen_suite", "strategy=badge", tiny=False)
    assert badge.strategy == make_cfg("strategy=badge", tiny=False).strategy  # no file: untouched
