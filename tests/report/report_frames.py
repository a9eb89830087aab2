"""Synthetic curve frames with known answers for the report's statistics and figures (a helper, no tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: strategy -> accuracy gain per cycle over random: strict dominance badge > entropy > margin > coreset
DOMINANCE: dict[str, float] = {"badge": 0.04, "entropy": 0.03, "margin": 0.02, "coreset": 0.01, "random": 0.0}
BUDGETS = [20, 30, 40, 50, 60]


def synthetic_curves(
    n_settings: int = 3,
    gains: dict[str, float] | None = None,
    seeds: int = 3,
    noise: float = 0.001,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """A tidy curve frame as ``load_curves`` returns it: settings d0.. x strategies x seeds x 5 cycles.

    acc = 0.5 + 0.01 seed (the shared initial set at cycle 0), then + (0.05 + gain) c + N(0, noise).
    train_s = 1 + gain * 100, select_s = 0.1 (so the timing bars differ per strategy).
    """
    gains = DOMINANCE if gains is None else gains
    rng = np.random.default_rng(rng_seed)
    rows = []
    for d in range(n_settings):
        for strategy, gain in gains.items():
            for seed in range(seeds):
                for cycle, n in enumerate(BUDGETS):
                    acc = 0.5 + 0.01 * seed + ((0.05 + gain) * cycle + rng.normal(0, noise) if cycle else 0.0)
                    rows.append(
                        {
                            "dataset": f"d{d}",
                            "model": "mlp",
                            "budget": "b",
                            "strategy": strategy,
                            "seed": seed,
                            "cycle": cycle,
                            "n_labeled": n,
                            "test_acc": acc,
                            "scenario": "clean",
                            "variant": "",
                            "train_s": 1.0 + 100 * gain,
                            "select_s": 0.1,
                            "run_dir": f"/runs/d{d}/mlp/{strategy}/seed={seed}",
                        }  # fmt: skip
                    )
    return pd.DataFrame(rows)
