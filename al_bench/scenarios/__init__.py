"""Realistic pools (issue 18): ``scenario=clean | imbalanced | label_noise | open_set``.

Each scenario is one module and one ``configs/scenario/<name>.yaml`` whose ``_target_`` is its class; the
class's constructor takes the yaml's other keys. :func:`build_scenario` instantiates it from the run's config
(a config without a ``scenario`` group, e.g. an older run's, is the clean scenario).
"""

from __future__ import annotations

from typing import Any

import hydra.utils
from omegaconf import DictConfig, OmegaConf

from al_bench.errors import ALBenchError
from al_bench.scenarios.base import OOD, Clean, Scenario, ScenarioPool
from al_bench.scenarios.imbalanced import Imbalanced
from al_bench.scenarios.label_noise import LabelNoise
from al_bench.scenarios.open_set import OpenSet

__all__ = [
    "OOD", "Clean", "Imbalanced", "LabelNoise", "OpenSet", "Scenario", "ScenarioPool", "build_scenario",
    "scenario_name",
]  # fmt: skip


def scenario_name(cfg: DictConfig) -> str:
    """The run's scenario name ("clean" when the config has no scenario group)."""
    node = cfg.get("scenario")
    return "clean" if node is None else str(node.get("name", "clean"))


def build_scenario(cfg: DictConfig) -> Scenario:
    """Instantiate ``cfg.scenario`` (its ``_target_`` with the other keys); one ALBenchError line on a bad
    value or a ``_target_`` that is not a :class:`Scenario`."""
    node = cfg.get("scenario")
    if node is None:
        return Clean()
    kw: Any = OmegaConf.to_container(node, resolve=True)
    name = kw.pop("name", None)
    if "_target_" not in kw:
        raise ALBenchError(f"scenario {name!r} has no _target_; every configs/scenario/*.yaml needs one")
    try:
        scenario = hydra.utils.instantiate(kw, _convert_="all")
    except hydra.errors.InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ALBenchError):
            raise cause from None
        raise ALBenchError(f"could not build scenario {name!r} ({kw['_target_']}): {cause or e}") from None
    if not isinstance(scenario, Scenario):
        raise ALBenchError(f"scenario {name!r} is not an al_bench Scenario: {type(scenario).__name__}")
    if name is not None and name != scenario.name:
        raise ALBenchError(f"scenario.name={name!r} but its _target_ builds the {scenario.name!r} scenario")
    return scenario
