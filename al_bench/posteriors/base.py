"""What every posterior source provides: T consistent functions whose probabilities are [N, T, C].

A *source* (``strategy.posterior``) is built once per run from its name and options; at selection it
``draw``s a *posterior*: T functions fixed for the whole selection, so that any index sets scored through the
same posterior (candidates, labeled set, targets) are joint samples of the same functions (see
:meth:`al_bench.strategies.base.SelectionContext.posterior_probs`, which caches one per selection).

Sources that train networks (everything but ``mc_dropout`` and ``bbb``'s sampling) do so through
``ctx.fit_model(seed, **options)`` (the loop's recipe, options of :func:`al_bench.training.train_model`), with
seeds drawn from ``ctx.rng``; the cycle's own model and its test accuracy are never changed by a source.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


class Posterior(Protocol):
    """T functions fixed once drawn; ``probs`` -> [N, T, C] float32 on CPU, rows summing to 1."""

    n_samples: int

    def probs(self, data: ALDataModule, indices: np.ndarray, split: str = "train") -> torch.Tensor: ...


class PosteriorSource:
    """Where the T functions come from. Subclasses set ``name`` and implement :meth:`draw`.

    ``t_is_members``: T counts trained networks (a Bayesian strategy's T is then its
    ``posterior_options.members``), not samples (its ``n_samples``);
    ``needs_mc_dropout``: the run is refused before training when the model has no dropout.
    """

    name: str = ""
    t_is_members: bool = True
    needs_mc_dropout: bool = False

    def draw(self, ctx: SelectionContext, n_samples: int) -> Posterior:
        """T = ``n_samples`` functions for this selection (random choices from ``ctx.rng`` only)."""
        raise NotImplementedError

    @property
    def key(self) -> tuple:
        """Identifies the source and its options (the selection cache's key)."""
        return (self.name, *sorted((k, repr(v)) for k, v in vars(self).items() if not k.startswith("_")))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def member_seeds(ctx: SelectionContext, n: int) -> list[int]:
    """``n`` training seeds from ``ctx.rng`` in one draw (the committee strategies' draw, kept as it was)."""
    return [int(s) for s in ctx.rng.integers(0, 2**62, size=n)]


def fit_member(ctx: SelectionContext, source: str, seed: int, **options: Any) -> ALNet:
    """``ctx.fit_model(seed, **options)``, or one line saying why it cannot run."""
    if ctx.fit_model is None:
        raise ALBenchError(f"posterior {source} trains networks but this run provides no fit_model")
    if options and not _takes_options(ctx.fit_model, options):
        raise ALBenchError(
            f"posterior {source} needs fit_model(seed, **options) with {', '.join(sorted(options))}; this "
            "run's fit_model takes only a seed (al_bench.loop must pass training options through)"
        )
    return ctx.fit_model(seed, **options)


def _takes_options(fn: Any, options: dict[str, Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # not introspectable: let the call decide
        return True
    names = {p.name for p in params}
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params) or set(options) <= names


def check_members(source: str, members: int) -> int:
    if int(members) < 1:
        raise ALBenchError(f"posterior {source}: members must be >= 1, got {members}")
    return int(members)
