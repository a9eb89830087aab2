"""Contract over every configs/strategy/*.yaml: exactly query_size unique new global indices from the pool,
and the same seed gives the same picks. Each strategy runs through the real loop (1 cycle, tiny data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from al_bench.build import build_dataset
from al_bench.data.base import ALDataModule
from al_bench.loop import run
from tests.conftest import config_names

STRATEGY_SPEED = ["trainer.max_epochs=2", "dataset.val_size=12", "budget.cycles=1"]
FAST_EXTRA = {  # keep the heavier strategies at test size
    "vaal": ["+strategy.epochs=1"],
    "batchbald": ["strategy.num_joint_samples=200"],
    "isal": ["strategy.steps=5", "strategy.repeats=1"],
    "ralif": ["strategy.steps=5", "strategy.repeats=1", "strategy.tau=2"],
    "vote_entropy": ["strategy.committee_size=2"],
    "consensus_entropy": ["strategy.committee_size=2"],
    "kl_divergence": ["strategy.committee_size=2"],
}


def _extra(name: str) -> list[str]:
    from tests.conftest import CONFIGS

    text = (CONFIGS / "strategy" / f"{name}.yaml").read_text()
    out = []
    for o in FAST_EXTRA.get(name, []):
        key = o.lstrip("+").split("=")[0].split(".")[-1]
        if f"\n{key}:" in "\n" + text:
            out.append(o.lstrip("+"))
    return out


@pytest.mark.parametrize("name", config_names("strategy"))
def test_strategy_contract(make_cfg, tmp_path, name):
    picks = []
    for rep in range(2):
        cfg = make_cfg(
            f"strategy={name}", *STRATEGY_SPEED, *_extra(name), f"paths.run_dir={tmp_path}/rep{rep}"
        )
        result = run(cfg)
        selected = pd.read_csv(result.run_dir / "selected.csv")
        initial = selected[selected.cycle == 0]["index"].to_numpy()
        new = selected[selected.cycle == 1]["index"].to_numpy()
        assert len(initial) == cfg.budget.init_size
        assert len(new) == cfg.budget.query_size, "exactly query_size new indices"
        assert len(np.unique(new)) == len(new), "unique"
        assert not np.isin(new, initial).any(), "never re-labels"
        assert new.min() >= 0 and new.max() < cfg.dataset.n_train, "global indices of the train split"
        val = ALDataModule(
            build_dataset(cfg), val_size=cfg.dataset.val_size, seed=cfg.dataset.val_seed
        ).val_indices
        assert len(val) and not np.isin(np.concatenate([initial, new]), val).any(), (
            "never the validation split"
        )
        assert len(result.curve) == 2
        picks.append(np.sort(new))
    np.testing.assert_array_equal(picks[0], picks[1], err_msg="same seed -> same picks")
