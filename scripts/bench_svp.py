"""Selection via proxy (SVP, Coleman et al. ICLR 2020) against the target selecting itself, side by side.

On the embedded default (digits, target MLP 256-256, 50 epochs, Adam, 20 labels + 10 per cycle), each
strategy runs ``--cycles`` cycles once with the target selecting itself (``proxy=none``) and once through each
proxy of configs/proxy (``fewer_epochs``: the target's architecture for 12 of its 50 epochs; ``mlp``: a
one-layer MLP of 64 units; ``mlp_fewer_epochs``: both), same seeds, one process, one after the other.

Per selecting cycle, the *time to select* is the training of the selecting model plus the selection:
``train_s + select_s`` for the target selecting itself, ``proxy_train_s + select_s`` through a proxy
(curve.csv's columns); the speed-up is self / proxy (> 1: the proxy selects faster). A committee (vote
entropy, 5 members) trains its members with the proxy's recipe too, so the proxy saves on every member. The
target is trained every cycle in both settings, for the curve: *cycle* = target training + proxy training +
selection, the price of recording the curve each cycle, which the paper avoids by training the target once at
the end. Final accuracy: the target's after the last cycle (a few seeds at most: noisy at this size).

    python scripts/bench_svp.py --seeds 0 1 2  # entropy, badge, vote_entropy x 4 selectors, 20 cycles
    python scripts/bench_svp.py --quick        # the same, 5 cycles, seed 0: about a minute

Writes ``results/bench/svp.json`` and ``results/bench/svp.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import compose, environment, write_results  # noqa: E402

from al_bench.loop import run  # noqa: E402
from al_bench.training import quiet_lightning  # noqa: E402

SELECTORS = ("none", "fewer_epochs", "mlp", "mlp_fewer_epochs")


def time_run(strategy: str, selector: str, cycles: int, seed: int, results_dir: Path) -> dict:
    """One run of ``strategy`` with ``proxy=<selector>``: per-cycle seconds and accuracies from its curve."""
    cfg = compose([f"strategy={strategy}", f"proxy={selector}", f"budget.cycles={cycles}", f"seed={seed}",
                   "trainer.accelerator=cpu", "verbose=false", "trainer.progress_bar=false",
                   f"paths.run_dir={results_dir / strategy / selector}"])  # fmt: skip
    t0 = time.perf_counter()
    curve = run(cfg).curve
    wall = time.perf_counter() - t0
    sel = curve[curve["select_s"].notna()]  # the selecting cycles
    trains = sel["train_s"] if selector == "none" else sel["proxy_train_s"]
    return {
        "strategy": strategy,
        "selector": selector,
        "seed": seed,
        "select_model_train_s": float(trains.mean()),
        "select_s": float(sel["select_s"].mean()),
        "time_to_select_s": float((trains + sel["select_s"]).mean()),
        "cycle_s": float((sel["train_s"] + sel["proxy_train_s"].fillna(0) + sel["select_s"]).mean()),
        "wall_s": wall,
        "final_acc": float(curve["test_acc"].iloc[-1]),
        "mean_acc": float(curve["test_acc"].mean()),
        "proxy_test_acc": float(sel["proxy_test_acc"].mean()) if selector != "none" else float("nan"),
        "picks": pd.read_csv(Path(cfg.paths.run_dir) / "selected.csv").query("cycle > 0")["index"].tolist(),
    }


def overlap(a: list[int], b: list[int]) -> float:
    """Share of the labels bought by run ``b`` (after the initial set) that run ``a`` bought too."""
    return len(set(a) & set(b)) / max(len(b), 1)


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (strategy, selector): means over seeds, the share of picks in common with the target
    selecting itself (same seed), and the speed-up of the time to select (self / this selector)."""
    for r in runs:
        key = (r["strategy"], r["seed"], "none")
        own = next(o for o in runs if (o["strategy"], o["seed"], o["selector"]) == key)
        r["same_picks"] = overlap(own["picks"], r["picks"])
    numbers = [k for k in runs[0] if k not in ("strategy", "selector", "seed", "picks")]
    frame = pd.DataFrame(runs).groupby(["strategy", "selector"], sort=False)[numbers].mean()
    rows = frame.reset_index().to_dict("records")
    for r in rows:
        own = next(o for o in rows if (o["strategy"], o["selector"]) == (r["strategy"], "none"))
        r["speedup"] = own["time_to_select_s"] / r["time_to_select_s"]
    return rows


def markdown(rows: list[dict], args: argparse.Namespace, epochs: int) -> str:
    env = environment()
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        "# Selection via proxy (SVP): time to select against the target selecting itself"
        + (" - --quick smoke size" if args.quick else ""),
        "",
        f"digits, target MLP 256-256 (dropout 0.3), {epochs} epochs, Adam 1e-3, batch 32, 20 labels + 10 per "
        f"cycle, {args.cycles} cycles, seed(s) {seeds} (means over seeds); CPU, torch threads 1, load "
        f"average at start {env['load_average']} (other processes shared the cores: treat ratios as "
        "indicative).",
        "",
        "Time to select (per selecting cycle) = training of the selecting model + selection: "
        "`train_s + select_s` for the target itself, `proxy_train_s + select_s` through a proxy; "
        "speed-up = self / proxy. Cycle = target training + proxy training + selection, per selecting cycle "
        "(the price of the curve). Proxy acc: the proxy's test accuracy (mean over cycles). Same picks: "
        "share of the labels bought after the initial set that the target selecting itself bought too.",
        "",
        "| strategy | selector | train of selector s | select s | time to select s | speed-up | cycle s "
        "| proxy acc | target final acc | target mean acc | same picks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        proxy_acc = "" if np.isnan(r["proxy_test_acc"]) else f"{100 * r['proxy_test_acc']:.1f}%"
        lines.append(
            f"| {r['strategy']} | {r['selector']} | {r['select_model_train_s']:.2f} | {r['select_s']:.2f} | "
            f"{r['time_to_select_s']:.2f} | {r['speedup']:.1f}x | {r['cycle_s']:.2f} | {proxy_acc} | "
            f"{100 * r['final_acc']:.1f}% | {100 * r['mean_acc']:.1f}% | {100 * r['same_picks']:.0f}% |"
        )
    lines += [
        "",
        "The target is trained every cycle in both settings (for the learning curve), so a proxy adds its "
        "own training to each cycle: end to end it saves time only where selecting costs more than the "
        "proxy's fit (committees, posterior ensembles), or where the target is trained less often than it "
        "selects, as in the paper, which trains the target once on the final labels.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 cycles, seed 0: a smoke run")
    parser.add_argument("--strategies", nargs="*", default=None, help="default: entropy badge vote_entropy")
    parser.add_argument("--cycles", type=int, default=None, help="budget.cycles (default 20; quick 5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (rows: means over them)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default results/bench)")
    args = parser.parse_args()
    args.cycles = args.cycles or (5 if args.quick else 20)
    strategies = args.strategies or ["entropy", "badge", "vote_entropy"]
    torch.set_num_threads(1)
    quiet_lightning()
    epochs = int(compose([]).trainer.max_epochs)

    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for strategy in strategies:
                for selector in SELECTORS:
                    r = time_run(strategy, selector, args.cycles, seed, Path(tmp) / f"seed{seed}")
                    runs.append(r)
                    print(
                        f"seed {seed} {strategy:>12} / {selector:<16} time to select "
                        f"{r['time_to_select_s']:6.2f} s | final acc {100 * r['final_acc']:5.1f}% | "
                        f"wall {r['wall_s']:6.1f} s",
                        flush=True,
                    )
    rows = summarise(runs)
    payload = {
        "quick": args.quick, "cycles": args.cycles, "epochs": epochs, "seeds": args.seeds,
        "strategies": strategies, "selectors": list(SELECTORS), "rows": rows, "runs": runs,
    }  # fmt: skip
    write_results("svp", payload, markdown(rows, args, epochs), args.out)


if __name__ == "__main__":
    main()
