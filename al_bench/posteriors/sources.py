"""The ``strategy.posterior`` registry: name -> source class; options shared by every strategy's yaml.

    mc_dropout   T consistent MC-dropout functions of the cycle's model (the default of the Bayesian ones)
    ensemble     T independently trained networks (the committee strategies' default)
    dee          T networks trained on from one briefly trained base network
    snapshot     T weight snapshots of one cyclic-learning-rate run
    split_head   T heads on one shared trunk, trained jointly
    bbb          T weight samples of a Bayes-by-backprop head

A strategy's ``posterior_options`` mapping holds the options of every source (so a sweep over
``strategy.posterior`` needs no other override); each source takes the keys its constructor names and ignores
the others, and a key no source takes is refused with the list of valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from al_bench.errors import ALBenchError
from al_bench.posteriors.base import PosteriorSource
from al_bench.posteriors.bbb import BBBSource
from al_bench.posteriors.dee import DEESource
from al_bench.posteriors.ensemble import EnsembleSource
from al_bench.posteriors.mc_dropout import MCDropoutPosterior
from al_bench.posteriors.snapshot import SnapshotSource
from al_bench.posteriors.split_head import SplitHeadSource

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


class MCDropoutSource(PosteriorSource):
    """``strategy.posterior=mc_dropout``: ``ctx.mc_posterior(T)``, the very functions ``ctx.mc_probs`` uses
    (same generator draw, same masks), so selections are those of the strategies before this axis."""

    name = "mc_dropout"
    t_is_members = False
    needs_mc_dropout = True

    def draw(self, ctx: SelectionContext, n_samples: int) -> MCDropoutPosterior:
        return ctx.mc_posterior(n_samples)


SOURCES: dict[str, type[PosteriorSource]] = {
    "mc_dropout": MCDropoutSource,
    "ensemble": EnsembleSource,
    "dee": DEESource,
    "snapshot": SnapshotSource,
    "split_head": SplitHeadSource,
    "bbb": BBBSource,
}

#: keys of ``posterior_options`` read by the strategies themselves rather than by a source
STRATEGY_KEYS = ("members",)


def source_options(cls: type[PosteriorSource]) -> list[str]:
    """The option names a source's constructor takes."""
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p != "self" and params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def valid_options() -> list[str]:
    """Every key a ``posterior_options`` mapping may hold."""
    return sorted({*STRATEGY_KEYS, *(k for cls in SOURCES.values() for k in source_options(cls))})


def build_source(name: str, options: Mapping[str, Any] | None = None) -> PosteriorSource:
    """The source ``name`` with the keys of ``options`` that it takes (the others belong to other sources).

    Raises :class:`ALBenchError` for an unknown name or a key that no source takes.
    """
    if name not in SOURCES:
        raise ALBenchError(f"unknown strategy.posterior {name!r}; valid: {', '.join(SOURCES)}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(valid_options()))
    if unknown:
        raise ALBenchError(
            f"unknown strategy.posterior_options {', '.join(unknown)}; valid: {', '.join(valid_options())}"
        )
    cls = SOURCES[name]
    taken = {k: v for k, v in options.items() if k in source_options(cls) and v is not None}
    return cls(**taken)
