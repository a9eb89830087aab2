"""Seconds per cycle of every strategy on the embedded default (digits, MLP, 20 labels + 10 per cycle), with
no extra flags: a 2-cycle run each (3 trainings, 2 selections), in one process, one after the other. Writes
results/bench/strategies.{md,json,png}: train and select seconds per cycle as bars, and which strategies
failed or ran past ``--limit`` seconds (the out-of-the-box promise: every strategy runs on the default)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import ROOT, compose, write_results  # noqa: E402

from al_bench.errors import ALBenchError  # noqa: E402


def all_strategies() -> list[str]:
    return sorted(p.stem for p in (ROOT / "configs" / "strategy").glob("*.yaml"))


def time_strategy(name: str, cycles: int, results_dir: Path) -> dict:
    """One ``python -m al_bench strategy=<name> budget.cycles=<cycles>`` run in this process."""
    from al_bench.loop import run

    cfg = compose([f"strategy={name}", f"budget.cycles={cycles}", f"paths.results_dir={results_dir}",
                   "verbose=false", "trainer.progress_bar=false"])  # fmt: skip
    t0 = time.perf_counter()
    try:
        curve = run(cfg).curve
    except ALBenchError as e:
        return {"strategy": name, "state": "refused", "message": str(e), "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    return {
        "strategy": name,
        "state": "finished",
        "message": "",
        "wall_s": wall,
        "train_s": float(curve["train_s"].mean()),
        "select_s": float(curve["select_s"].dropna().mean()),
        "n_val": int(curve["n_val"].iloc[-1]) if "n_val" in curve else 0,
        "final_acc": float(curve["test_acc"].iloc[-1]),
    }


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = frame[frame["state"] == "finished"].sort_values("select_s")
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(done) + 1.2))
    ax.barh(done["strategy"], done["train_s"], color="#9ecae1", label="train (per cycle)")
    ax.barh(
        done["strategy"], done["select_s"], left=done["train_s"], color="#de2d26", label="select (per cycle)"
    )
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("seconds per cycle (digits default, 1 CPU thread)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(frame: pd.DataFrame, cycles: int, limit: float) -> str:
    lines = [
        "# Seconds per cycle of every strategy on the embedded default",
        "",
        f"`python -m al_bench strategy=<name> budget.cycles={cycles}` for each configs/strategy/*.yaml, "
        "nothing else: digits (1,347 train / 450 test, 8x8), MLP 256-256 (dropout 0.3), 20 class-balanced "
        f"labels + 10 per cycle, 50 epochs, Adam; {cycles + 1} trainings and {cycles} selections per run, "
        "one process, one thread. Train / select: mean seconds per cycle (curve.csv's train_s / select_s); "
        "wall: the whole run including data loading and model builds. n_val: validation labels the strategy "
        "reads (counted in curve.csv).",
        "",
        "| strategy | train s | select s | wall s | n_val | acc after 2 cycles |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for _, r in frame.sort_values("wall_s").iterrows():
        if r["state"] != "finished":
            lines.append(f"| {r['strategy']} | {r['state']}: {r['message']} | | {r['wall_s']:.1f} | | |")
            continue
        slow = " (over the limit)" if r["wall_s"] > limit else ""
        lines.append(
            f"| {r['strategy']} | {r['train_s']:.2f} | {r['select_s']:.2f} | {r['wall_s']:.1f}{slow} | "
            f"{r['n_val']} | {100 * r['final_acc']:.1f}% |"
        )
    finished = frame[frame["state"] == "finished"]
    lines += [
        "",
        f"{len(finished)} of {len(frame)} strategies finished; "
        f"{int((finished['wall_s'] > limit).sum())} took longer than {limit:.0f} s. Bars: strategies.png.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategies", nargs="*", default=None, help="default: every configs/strategy yaml")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--limit", type=float, default=120.0, help="seconds a 2-cycle run should stay under")
    parser.add_argument("--quick", action="store_true", help="three cheap strategies (a smoke run)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    names = ["random", "entropy", "coreset"] if args.quick else (args.strategies or all_strategies())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = time_strategy(name, args.cycles, Path(tmp))
            print(f"{name:>20}: {row['state']} in {row['wall_s']:.1f} s", flush=True)
            rows.append(row)
    frame = pd.DataFrame(rows)
    out = write_results(
        "strategies",
        {"setting": {"cycles": args.cycles, "limit_s": args.limit}, "runs": rows},
        markdown(frame, args.cycles, args.limit),
        args.out,
    )
    plot(frame, out / "strategies.png")


if __name__ == "__main__":
    main()
