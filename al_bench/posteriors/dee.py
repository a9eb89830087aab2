"""Diversity-encouraging ensembles, as Beluch et al. (2018) compared them: one base network trained for a few
epochs, then T copies of it, each trained on from the base's weights with its own seed (own shuffling and
dropout masks), so the members share their start and diverge after.

Costs ``base_fraction + T * member_fraction`` trainings of the run's length (defaults: 0.2 + 5 * 0.4 = 2.2,
against 4 for a 5-member ensemble that reuses the cycle's model). The two fractions are this benchmark's
choice, not the paper's (it gives no schedule we could check); members train with the model's own dropout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from al_bench.errors import ALBenchError
from al_bench.posteriors.base import PosteriorSource, fit_member, member_seeds
from al_bench.posteriors.ensemble import MembersPosterior

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


class DEESource(PosteriorSource):
    """``strategy.posterior=dee``: a base network for ``base_fraction`` of ``trainer.max_epochs``, then T
    members from its weights for ``member_fraction`` of it each. Seeds: base first, then members, one draw."""

    name = "dee"

    def __init__(self, base_fraction: float = 0.2, member_fraction: float = 0.4) -> None:
        for key, value in (("base_fraction", base_fraction), ("member_fraction", member_fraction)):
            if not 0 < float(value) <= 1:
                raise ALBenchError(
                    f"posterior dee: {key} must be in (0, 1] of trainer.max_epochs, got {value}"
                )
        self.base_fraction = float(base_fraction)
        self.member_fraction = float(member_fraction)

    def draw(self, ctx: SelectionContext, n_samples: int) -> MembersPosterior:
        base_seed, *seeds = member_seeds(ctx, n_samples + 1)
        base = fit_member(ctx, self.name, base_seed, epochs_fraction=self.base_fraction)
        state = {k: v.detach().clone() for k, v in base.state_dict().items()}
        del base
        members = [
            fit_member(ctx, self.name, seed, epochs_fraction=self.member_fraction, init_state=state)
            for seed in seeds
        ]
        return MembersPosterior(members, bf16=ctx.bf16)
