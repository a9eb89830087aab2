"""The frozen track's sweep timed from scratch: 25 strategies x 5 seeds on Fashion-MNIST, cached features.

Issue 14's speed goal: the 25 strategies of al_bench's first catalogue x 5 seeds on Fashion-MNIST with cached
EfficientNet-Lite0 features finish in under 15 minutes on 2 CPU cores. This runs exactly the frozen suite's
sweeps (the Hydra multirun of ``scripts/table.py suite-fmnist-frozen``: fmnist_frozen_suite.yaml, the suite's
CPU sizing, 2 joblib workers of one torch thread each) for those strategies into a fresh temporary
results directory, once per fit engine, side by side:

- ``auto``: what every run uses: heads train in the plain loop with ``al_bench.linear_step``'s fused steps;
- ``plain``: the reference: the same loop with autograd's steps (``loss.backward()`` + ``torch.optim.Adam``),
  the way a hand-written PyTorch loop trains the head.

Both engines give the same curves bit for bit (checked here on every run's accuracy columns and selections),
so the ratio is the engine's alone. The feature cache must exist (``make suite-fmnist-frozen`` or one frozen
run extracts it, ~4 minutes); the wall time counts everything else: process and worker start-up, data
loading, training, selection, evaluation, writing the runs. Without Fashion-MNIST it stops in one line.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import write_results  # noqa: E402
from table import TABLES, check_dataset, run_multiruns, sweep_commands  # noqa: E402

#: the strategies of the first catalogue (the issue's "25 strategies"); the frozen suite runs 33
FIRST_CATALOGUE = [
    "badge", "bald", "batchbald", "cal", "ceal", "consensus_entropy", "coreset", "diverse_minibatch", "egl",
    "entropy", "forgetting", "isal", "kl_divergence", "label_dispersion", "least_confidence", "ll4al",
    "margin", "mc_entropy", "mean_std", "ralif", "random", "typiclust", "vaal", "variation_ratio",
    "vote_entropy",
]  # fmt: skip
ENGINES = {"auto": "fused steps (what runs use)", "plain": "autograd steps (reference)"}
GOAL_MINUTES = 15.0
_TIMES = ["train_s", "select_s", "eval_s"]


def run_sweep(engine: str, runs_dir: Path, seeds: int, jobs: int, strategies: list[str]) -> float:
    """Wall seconds of the table's multiruns for ``strategies`` x ``seeds`` with ``trainer.engine``."""
    table = replace(TABLES["suite-fmnist-frozen"], strategies=strategies, seeds=seeds)
    return run_multiruns(sweep_commands(table, runs_dir, "joblib", jobs), (f"trainer.engine={engine}",))


def load_runs(runs_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every curve row, every selection row) under ``runs_dir``, each with its run's strategy and seed."""
    curves, picks = [], []
    for curve in sorted(runs_dir.rglob("curve.csv")):
        c = pd.read_csv(curve)
        curves.append(c)
        s = pd.read_csv(curve.parent / "selected.csv")
        picks.append(s.assign(strategy=c["strategy"].iloc[0], seed=c["seed"].iloc[0]))
    if not curves:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(curves, ignore_index=True), pd.concat(picks, ignore_index=True)


def same_results(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> bool:
    """True when both sweeps have the same curves (all but the timing columns) and the same selections."""
    keys = ["strategy", "seed", "cycle"]
    ca, cb = (c.drop(columns=[t for t in _TIMES if t in c]).sort_values(keys) for c in (a[0], b[0]))
    pa, pb = (p.sort_values([*keys, "index"]) for p in (a[1], b[1]))
    return ca.reset_index(drop=True).equals(cb.reset_index(drop=True)) and pa.reset_index(drop=True).equals(
        pb.reset_index(drop=True)
    )


def per_strategy(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean in-cycle seconds per run (train, select, eval, total) by strategy."""
    per_run = curves.groupby(["strategy", "seed"])[_TIMES].sum()
    out = per_run.groupby("strategy").mean()
    out["total_s"] = out.sum(axis=1)
    return out.sort_values("total_s", ascending=False)


def markdown(results: dict[str, Any], args: argparse.Namespace, tables: dict[str, pd.DataFrame]) -> str:
    n_runs = len(args.strategies) * args.seeds
    lines = [
        "# The frozen sweep, timed: 25 strategies x 5 seeds on Fashion-MNIST with cached features",
        "",
        f"`python scripts/bench_sweep.py` ({n_runs} runs per engine, {args.jobs} joblib workers x 1 torch "
        "thread, fresh results directory, feature cache present). Protocol: "
        "configs/experiment/fmnist_frozen_suite.yaml "
        "(EfficientNet-Lite0 features, linear head with dropout 0.2, Adam 1e-3, batch 128, 100 epochs per "
        "cycle, 10 + 10 x 20 labels, 2,000 candidates per cycle) with the suite's CPU sizing "
        "(configs/sizing/frozen_cpu.yaml). Issue 14's goal: under 15 minutes on 2 CPU cores.",
        "",
        "| engine | steps | wall minutes | goal (< 15 min) |",
        "|---|---|---|---|",
    ]
    for engine, minutes in results["wall_minutes"].items():
        ok = "met" if minutes < GOAL_MINUTES else "not met"
        lines.append(f"| {engine} | {ENGINES[engine]} | {minutes:.1f} | {ok} |")
    if "ratio_plain_over_auto" in results:
        lines += [
            "",
            f"Reference / fused wall time: {results['ratio_plain_over_auto']:.2f}x; curves and selections "
            f"identical across engines: {'yes' if results['identical'] else 'NO'}.",
        ]
    for engine, table in tables.items():
        lines += [
            "",
            f"## Seconds per run in the cycles, by strategy ({engine}; mean over seeds)",
            "",
            "| strategy | train | select | eval | total |",
            "|---|---|---|---|---|",
        ]
        for strategy, row in table.iterrows():
            cells = " | ".join(f"{row[c]:.1f}" for c in [*_TIMES, "total_s"])
            lines.append(f"| {strategy} | {cells} |")
        total = table["total_s"].sum() * args.seeds
        lines += ["", f"In-cycle seconds of all runs: {total:.0f} (the rest of the wall time x workers is "
                  "process start-up, data loading and writing)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--engines", default="auto,plain", help="comma-separated, of: " + ", ".join(ENGINES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--strategies", type=lambda s: [x for x in s.split(",") if x], default=FIRST_CATALOGUE
    )
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"--engines: {', '.join(unknown)}; valid: {', '.join(ENGINES)}")
    check_dataset(TABLES["suite-fmnist-frozen"].experiment)
    work = args.work or Path(tempfile.mkdtemp(prefix="al_bench_sweep_"))
    results: dict[str, Any] = {"wall_minutes": {}, "strategies": args.strategies, "seeds": args.seeds}
    loaded, tables = {}, {}
    try:
        for engine in engines:
            seconds = run_sweep(engine, work / engine, args.seeds, args.jobs, args.strategies)
            results["wall_minutes"][engine] = seconds / 60
            loaded[engine] = load_runs(work / engine)
            if loaded[engine][0].empty:
                sys.exit(f"bench_sweep: no run of the {engine} sweep wrote a curve (see the log above)")
            tables[engine] = per_strategy(loaded[engine][0])
            results[f"per_strategy_{engine}"] = tables[engine].round(3).to_dict(orient="index")
            print(f"{engine}: {seconds / 60:.1f} min wall", flush=True)
        if {"auto", "plain"} <= set(loaded):
            results["ratio_plain_over_auto"] = (
                results["wall_minutes"]["plain"] / results["wall_minutes"]["auto"]
            )
            results["identical"] = same_results(loaded["auto"], loaded["plain"])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    write_results("sweep", results, markdown(results, args, tables), args.out)


if __name__ == "__main__":
    main()
