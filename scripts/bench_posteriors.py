"""What each posterior source (``strategy.posterior``) costs per AL cycle against MC dropout, side by side.

The embedded digits run (MLP 256-256, dropout 0.3, Adam 1e-3, batch 32, ``trainer.max_epochs`` epochs) at one
cycle with ``--labeled`` labels: the cycle's model is trained once (its time is the unit), then BALD selects
``budget.query_size`` from the whole unlabeled pool with each source in turn, from the same model, labeled
set and selection seed. A source's *extra cost* is its selection time minus MC dropout's, also given in
cycle trainings; it is almost all training (members through the loop's fit path, ``al_bench.training``).
T: 20 for mc_dropout and bbb (``n_samples``), ``members`` (5, Beluch et al. 2018) for the others; the
ensemble reuses the cycle's model as member 1.

    python scripts/bench_posteriors.py            # digits, 50 epochs, 120 labels: a few minutes on one core
    python scripts/bench_posteriors.py --quick    # 5 epochs, 40 labels: seconds

Writes ``results/bench/posteriors.json`` and ``results/bench/posteriors.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import compose, environment, write_results  # noqa: E402

from al_bench import loop  # noqa: E402
from al_bench.budget import draw_candidates, initial_labeled  # noqa: E402
from al_bench.build import build_dataset, new_model  # noqa: E402
from al_bench.models.base import ALNet  # noqa: E402
from al_bench.pool import ActivePool  # noqa: E402
from al_bench.posteriors.sources import SOURCES  # noqa: E402
from al_bench.scenarios import build_scenario  # noqa: E402
from al_bench.seeding import numpy_rng  # noqa: E402
from al_bench.strategies.base import SelectionContext  # noqa: E402
from al_bench.strategies.bayesian import BALD  # noqa: E402
from al_bench.training import quiet_lightning, train_model  # noqa: E402

TRAININGS = {  # trainings of the run's length per selection, with the defaults (members = 5)
    "mc_dropout": "0",
    "ensemble": "4",
    "dee": "0.2 + 5 x 0.4 = 2.2",
    "snapshot": "1",
    "split_head": "1 (5 heads)",
    "bbb": "1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs, 40 labels: a smoke run")
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs (default 50; quick 5)")
    parser.add_argument(
        "--labeled", type=int, default=None, help="labels at the cycle (default 120; quick 40)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default results/bench)")
    args = parser.parse_args()
    epochs = args.epochs or (5 if args.quick else 50)
    n_labeled = args.labeled or (40 if args.quick else 120)
    torch.set_num_threads(1)
    quiet_lightning()

    cfg = compose(["trainer.accelerator=cpu", f"trainer.max_epochs={epochs}", "verbose=false"])
    cfg.paths.run_dir = str(Path("/tmp") / "bench_posteriors")
    seed = args.seed
    scenario = build_scenario(cfg).build(build_dataset(cfg), seed)
    data = loop._data_module(cfg, scenario, torch.device("cpu"))
    pool = ActivePool(data.pool_indices, size=data.dataset.n_train)
    pool.label(initial_labeled(data, cfg.budget, numpy_rng(seed, "init_labeled")), cycle=0)
    rng = np.random.default_rng(seed)
    pool.label(rng.choice(pool.unlabeled_indices, n_labeled - pool.n_labeled, replace=False), cycle=1)
    cycle = 1

    net = new_model(cfg, data, seed, cycle)
    t0 = time.perf_counter()
    train_model(cfg, net, data, pool.labeled_indices, seed, cycle)
    train_s = time.perf_counter() - t0
    candidates = draw_candidates(pool, None, numpy_rng(seed, "pool_subset", cycle))

    def fit_model(member_seed: int, **options: Any) -> ALNet:
        """The loop's committee fit with training options passed through (as ``al_bench.loop`` will)."""
        member = new_model(cfg, data, int(member_seed), cycle)
        train_model(
            cfg, member, data, pool.labeled_indices, int(member_seed), cycle, purpose="committee", **options
        )
        return member

    rows = []
    for name in SOURCES:
        strategy = BALD(posterior=name)
        ctx = SelectionContext(
            net, data, pool, int(cfg.budget.query_size), cycle, numpy_rng(seed, "select", cycle),
            candidates=candidates, fit_model=fit_model,
        )  # fmt: skip
        t0 = time.perf_counter()
        picks = strategy.select(ctx)
        select_s = time.perf_counter() - t0
        rows.append(
            {"source": name, "T": strategy.n_functions, "select_s": select_s, "picks": picks.tolist()}
        )
        print(f"{name:>10}: T={strategy.n_functions:>2}  select {select_s:7.2f} s", flush=True)
    base = rows[0]["select_s"]
    for r in rows:
        r["extra_s"] = r["select_s"] - base
        r["extra_trainings"] = r["extra_s"] / train_s
        r["trainings_by_design"] = TRAININGS[r["source"]]

    env = environment()
    lines = [
        "# Posterior sources: extra cost per AL cycle against MC dropout (BALD)"
        + (" - --quick smoke size" if args.quick else ""),
        "",
        f"digits, MLP 256-256, {epochs} epochs, {n_labeled} labels, {len(candidates)} candidates, "
        f"seed {seed}; CPU, torch threads 1, load average at start {env['load_average']} (other processes "
        "shared the cores: treat ratios as indicative).",
        "",
        f"The cycle's own training: {train_s:.2f} s (the unit of the last column).",
        "",
        "| source | T | select s | extra vs mc_dropout s | extra in cycle trainings | trainings by design |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['source']} | {r['T']} | {r['select_s']:.2f} | {r['extra_s']:+.2f} | "
            f"{r['extra_trainings']:.2f} | {r['trainings_by_design']} |"
        )
    lines += [
        "",
        "Every source's training runs through the loop's fit path (a fresh Lightning Trainer per member). "
        "Snapshot, split-head and BBB cost about one training whatever T; an ensemble T - 1 (it reuses the "
        "cycle's model); DEE 0.2 + 0.4 T. MC dropout costs T tail passes of the pool only.",
        "",
    ]
    payload = {
        "quick": args.quick, "epochs": epochs, "labeled": n_labeled, "candidates": len(candidates),
        "seed": seed, "train_s": train_s, "rows": rows,
    }  # fmt: skip
    write_results("posteriors", payload, "\n".join(lines), args.out)


if __name__ == "__main__":
    main()
