"""Snapshot ensembles (Huang et al. 2017, "train 1, get M for free"): one network trained for the run's
``trainer.max_epochs`` under a cyclic cosine learning rate (restart at the run's lr, anneal towards 0, M
cycles), its weights copied at the end of each cycle; the M copies are the T = M functions.

One training besides the cycle's model, whatever M. Deviations: the learning rate restarts at the run's
optimizer lr (Huang et al. used SGD with lr0 = 0.1 / 0.2; the digits recipe is Adam, 1e-3), and the fit
ignores ``trainer.stop_at_train_acc`` / ``trainer.early_stopping_patience`` so that every cycle completes.
See :mod:`al_bench.callbacks.snapshot` for the schedule.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from al_bench.callbacks.snapshot import SnapshotEnsemble
from al_bench.posteriors.base import PosteriorSource, fit_member, member_seeds
from al_bench.posteriors.ensemble import MembersPosterior

if TYPE_CHECKING:
    from al_bench.strategies.base import SelectionContext


class SnapshotSource(PosteriorSource):
    """``strategy.posterior=snapshot``: T snapshots of one cyclic-learning-rate run (seed: ``ctx.rng``)."""

    name = "snapshot"

    def draw(self, ctx: SelectionContext, n_samples: int) -> MembersPosterior:
        (seed,) = member_seeds(ctx, 1)
        recorder = SnapshotEnsemble(n_samples)
        net = fit_member(ctx, self.name, seed, callbacks=[recorder], early_stopping=False)
        members = []
        for state in recorder.snapshots:
            member = copy.deepcopy(net)
            member.load_state_dict(state)
            members.append(member)
        return MembersPosterior(members, bf16=ctx.bf16)
