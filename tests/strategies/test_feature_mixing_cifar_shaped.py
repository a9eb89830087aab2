"""ALFA-Mix and DropQuery run one AL cycle through the loop on CIFAR-shaped data (synthetic 3x32x32 uint8
images, ResNet-18 with dropout): 512-d penultimate features of the residual trunk, re-classified by its
linear head."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from al_bench.loop import run

CIFAR_SHAPED = [
    "dataset=synthetic", "dataset.shape=[3,32,32]", "dataset.as_uint8=true", "dataset.n_train=60",
    "dataset.n_test=20", "dataset.num_classes=4", "dataset.val_size=8", "model=resnet18", "model.dropout=0.2",
    "budget.init_size=8", "budget.query_size=4", "budget.cycles=1", "trainer.max_epochs=1",
    "trainer.batch_size=8", "verbose=false",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [["strategy=alfamix"], ["strategy=alfamix", "strategy.alpha=learned"], ["strategy=dropquery"]],
    ids=["alfamix", "alfamix-learned", "dropquery"],
)
def test_one_cycle_on_cifar_shaped_data(make_cfg, overrides):
    cfg = make_cfg(*CIFAR_SHAPED, *overrides, tiny=False)
    result = run(cfg)
    assert result.curve["n_labeled"].tolist() == [8, 12]
    selected = pd.read_csv(result.run_dir / "selected.csv")
    new = selected[selected.cycle == 1]["index"].to_numpy()
    assert len(np.unique(new)) == 4 and not np.isin(new, selected[selected.cycle == 0]["index"]).any()
