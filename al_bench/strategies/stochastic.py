"""Stochastic batch acquisition (Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal, TMLR 2023).

Any score-based strategy of ``configs/strategy/`` (the *base*) scores the candidates; instead of its top-k,
the batch is drawn without replacement from softmax / power / softrank weights of those scores
(:mod:`al_bench.ops.stochastic`), with the selection's seeded ``ctx.rng``::

    python -m al_bench strategy=stochastic strategy.base=bald strategy.mode=power strategy.beta=1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from al_bench.cli import config_dir
from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.ops.stochastic import MODES, gumbel_top_k, log_weights
from al_bench.strategies.base import ScoreStrategy, SelectionContext, Strategy


def _strategy_yamls() -> dict[str, Path]:
    return {p.stem: p for p in sorted((Path(config_dir()) / "strategy").glob("*.yaml"))}


def _target_class(path: Path) -> type | None:
    try:
        target = OmegaConf.load(path).get("_target_")
        return hydra.utils.get_class(target) if target else None
    except Exception:  # an unimportable or odd yaml is simply not a valid base
        return None


def score_strategy_names() -> list[str]:
    """The valid bases: names of the ``configs/strategy/*.yaml`` whose ``_target_`` is a ScoreStrategy."""
    return [
        name
        for name, path in _strategy_yamls().items()
        if isinstance(cls := _target_class(path), type) and issubclass(cls, ScoreStrategy)
    ]


def build_base(name: str, options: dict[str, Any] | None = None) -> ScoreStrategy:
    """The score strategy ``configs/strategy/<name>.yaml``, its keys overridden by ``options``.

    Raises ALBenchError (one line) for a name that is not a score-based strategy yaml, listing the valid
    ones, and when the merged options do not build.
    """
    path = _strategy_yamls().get(str(name))
    cls = _target_class(path) if path is not None else None
    if not (isinstance(cls, type) and issubclass(cls, ScoreStrategy)):
        what = "is not a score-based strategy" if path is not None else "is unknown"
        raise ALBenchError(
            f"stochastic: base {name!r} {what}; valid bases: {', '.join(score_strategy_names())}"
        )
    node = OmegaConf.merge(OmegaConf.load(path), OmegaConf.create(dict(options or {})))
    kw = OmegaConf.to_container(node, resolve=True)
    assert isinstance(kw, dict)
    kw.pop("name", None)
    try:
        base = hydra.utils.instantiate(kw, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ALBenchError):
            raise cause from None
        raise ALBenchError(f"stochastic: could not build base {name} with {options}: {cause or e}") from None
    if not isinstance(base, ScoreStrategy):
        raise ALBenchError(f"stochastic: base {name} built {type(base).__name__}, not a score strategy")
    return base


class StochasticAcquisition(Strategy):
    """Draw the batch from ``p(s)`` of a base strategy's scores ``s`` [N] instead of taking their top-k.

    Args:
        base: name of a score-based strategy yaml in ``configs/strategy/`` (bald, entropy, margin, ...).
        mode: ``power`` (p ∝ s^beta, scores >= 0; the paper's recommendation), ``softmax``
            (p ∝ exp(beta s)) or ``softrank`` (p ∝ rank^-beta, 1 = highest score).
        beta: inverse temperature >= 0; 0 = uniform random, beta -> inf = the base's top-k.
        base_options: keys of the base's yaml to override (e.g. ``{"n_samples": 10}``).

    Everything the loop asks of a strategy before and during training (``needs_validation``,
    ``needs_mc_dropout``, training callbacks, auxiliary module, pseudo-labels, state) is the base's.
    """

    def __init__(
        self,
        base: str = "bald",
        mode: str = "power",
        beta: float = 1.0,
        base_options: dict[str, Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ALBenchError(f"stochastic: unknown mode {mode!r}; valid: {', '.join(MODES)}")
        if not (np.isfinite(float(beta)) and float(beta) >= 0):
            raise ALBenchError(f"stochastic: beta must be a finite number >= 0, got {beta}")
        self.base_name = str(base)
        self.mode = mode
        self.beta = float(beta)
        self.base = build_base(self.base_name, base_options)
        if _has_state(
            self.base
        ):  # so that a stateless wrapper stays recoverable from the CSVs (loop._recover)
            self.__class__ = _StatefulStochasticAcquisition

    @property
    def needs_validation(self) -> bool:  # type: ignore[override]
        return self.base.needs_validation

    @property
    def needs_mc_dropout(self) -> bool:  # type: ignore[override]
        return self.base.needs_mc_dropout

    def training_callbacks(self, data: ALDataModule, candidates: np.ndarray, cycle: int) -> list:
        return self.base.training_callbacks(data, candidates, cycle)

    def auxiliary_module(self, net: ALNet) -> torch.nn.Module | None:
        return self.base.auxiliary_module(net)

    def pseudo_labels(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.base.pseudo_labels()

    def select(self, ctx: SelectionContext) -> np.ndarray:
        scores = self.base.score(ctx)
        try:
            log_w = log_weights(scores, self.mode, self.beta)
        except ValueError as e:
            raise ALBenchError(
                f"stochastic with base {self.base_name}: {e}; "
                "strategy.mode=softmax or strategy.mode=softrank take scores of any sign"
            ) from None
        return ctx.candidates[gumbel_top_k(log_w, ctx.budget, ctx.rng)]


class _StatefulStochasticAcquisition(StochasticAcquisition):
    """A :class:`StochasticAcquisition` whose base carries state across a resume: forwarded to the base."""

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)


def _has_state(strategy: Strategy) -> bool:
    cls = type(strategy)
    return cls.state_dict is not Strategy.state_dict or cls.load_state_dict is not Strategy.load_state_dict
