"""train_model's options for the posterior sources: epochs_fraction, init_state, prepare, early_stopping."""

from __future__ import annotations

import pytest
import torch

from al_bench.errors import ALBenchError
from al_bench.training import train_model
from tests.posteriors.posterior_cases import LABELED, context, mlp, tiny_cfg


def test_epochs_fraction_init_state_prepare_and_early_stopping(tmp_path):
    ctx = context(tmp_path)
    cfg = tiny_cfg(tmp_path, "trainer.stop_at_train_acc=0.01")  # 4 epochs, but stops after the first

    def fit(**options) -> int:
        return train_model(cfg, mlp(1), ctx.data, LABELED, 1, 1, **options).current_epoch

    assert (
        fit() == 1 and fit(early_stopping=False) == 4 and fit(early_stopping=False, epochs_fraction=0.5) == 2
    )
    assert fit(early_stopping=False, epochs_fraction=0.01) == 1  # at least one epoch
    with pytest.raises(ALBenchError, match="epochs_fraction"):
        fit(epochs_fraction=1.5)

    start = mlp(2).state_dict()
    seen: list[torch.Tensor] = []
    net = mlp(3)
    train_model(
        cfg, net, ctx.data, LABELED, 1, 1, epochs_fraction=0.25, init_state=start,
        prepare=lambda n: seen.append(n.head.weight.detach().clone()),
    )  # fmt: skip
    assert torch.equal(seen[0], start["head.weight"])  # loaded before prepare, then trained
    assert not torch.equal(net.head.weight, start["head.weight"])
