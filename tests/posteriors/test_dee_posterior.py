"""Diversity-encouraging ensembles: members start from one base network's weights and diverge after."""

from __future__ import annotations

import pytest
import torch

from al_bench.errors import ALBenchError
from al_bench.posteriors.dee import DEESource
from tests.posteriors.posterior_cases import context


def test_members_share_the_base_weights_and_diverge_after(tmp_path):
    calls: list[dict] = []
    posterior = DEESource(base_fraction=0.25, member_fraction=0.5).draw(context(tmp_path, calls=calls), 3)
    base, *members = calls
    assert base["epochs_fraction"] == 0.25 and "init_state" not in base and base["module"].current_epoch == 1
    trained_base = base["net"].state_dict()
    for m in members:
        assert m["epochs_fraction"] == 0.5 and m["module"].current_epoch == 2
        assert all(torch.equal(m["init_state"][k], trained_base[k]) for k in trained_base)
    assert len({m["seed"] for m in calls}) == 4
    weights = [m.state_dict()["head.weight"] for m in posterior.members]
    assert posterior.n_samples == 3 and posterior.members == [m["net"] for m in members]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    assert not torch.equal(weights[0], trained_base["head.weight"])


def test_fractions_are_checked():
    with pytest.raises(ALBenchError, match="base_fraction"):
        DEESource(base_fraction=0)
    with pytest.raises(ALBenchError, match="member_fraction"):
        DEESource(member_fraction=1.5)
