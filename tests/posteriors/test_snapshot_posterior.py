"""Snapshot ensembles: the cyclic cosine schedule, the snapshot count, and the fit that runs every cycle."""

from __future__ import annotations

import math

import pytest
import torch

from al_bench.callbacks.snapshot import SnapshotEnsemble, cycle_bounds, cyclic_cosine_lr
from al_bench.errors import ALBenchError
from al_bench.posteriors.snapshot import SnapshotSource
from tests.posteriors.posterior_cases import context


def test_cycles_restart_at_lr0_and_anneal_by_a_half_cosine():
    assert cycle_bounds(12, 3) == [4, 8, 12] and cycle_bounds(10, 3) == [3, 6, 10]
    lrs = [cyclic_cosine_lr(i, 12, 3, 1.0) for i in range(12)]
    half_cosine = [1.0, (math.cos(math.pi / 4) + 1) / 2, 0.5, (math.cos(3 * math.pi / 4) + 1) / 2]
    assert lrs == pytest.approx(half_cosine * 3)
    assert cyclic_cosine_lr(9, 10, 3, 0.2) == pytest.approx(0.2 / 2 * (math.cos(math.pi * 3 / 4) + 1))
    with pytest.raises(ALBenchError, match="at least 5 optimizer steps"):
        cycle_bounds(4, 5)


def test_one_cyclic_fit_gives_m_snapshots_despite_the_runs_stopping_rule(tmp_path):
    calls: list[dict] = []
    ctx = context(tmp_path, calls=calls, overrides=("trainer.stop_at_train_acc=0.01",))  # would stop at once
    posterior = SnapshotSource().draw(ctx, 3)
    (call,) = calls
    recorder = call["callbacks"][0]
    assert isinstance(recorder, SnapshotEnsemble) and call["early_stopping"] is False
    assert recorder.lrs == pytest.approx(
        [cyclic_cosine_lr(i, 12, 3, 1e-3) for i in range(12)]
    )  # 4 epochs x 3
    assert len(recorder.snapshots) == posterior.n_samples == 3
    final = call["net"].state_dict()
    assert all(torch.equal(recorder.snapshots[-1][k], final[k]) for k in final)
    first, second = (s["head.weight"] for s in recorder.snapshots[:2])
    assert not torch.equal(first, second)
    for member, snapshot in zip(posterior.members, recorder.snapshots):
        assert all(torch.equal(member.state_dict()[k], snapshot[k]) for k in snapshot)
