"""Strategy families: every shipped strategy has one, unknown names go to "other"."""

from __future__ import annotations

import pytest

from al_bench.report.families import FAMILIES, OTHER, family_of, family_title, group_by_family
from tests.conftest import config_names


@pytest.mark.parametrize("name", config_names("strategy"))
def test_every_strategy_yaml_has_a_family(name):
    assert family_of(name) != OTHER, f"add {name} to a family in al_bench/report/families.py"


def test_strategies_being_added_have_their_family():
    assert {family_of(n) for n in ("alfamix", "dropquery", "cluster_margin")} == {"hybrid"}
    assert family_of("random") == "random" and family_of("bald") == "bayesian"


def test_no_name_is_in_two_families_and_unknown_names_are_other():
    names = [n for _, members in FAMILIES.values() for n in members]
    assert len(names) == len(set(names))
    assert family_of("some_old_strategy") == OTHER
    assert family_title("uncertainty").startswith("uncertainty") and family_title("nope") == "nope"


def test_group_by_family_keeps_panel_order_and_sorts_members():
    groups = group_by_family(["zzz", "margin", "badge", "entropy", "random"])
    assert list(groups) == ["random", "uncertainty", "hybrid", OTHER]
    assert groups["uncertainty"] == ["entropy", "margin"] and groups[OTHER] == ["zzz"]
