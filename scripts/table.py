"""Paper tables: ``python scripts/table.py NAME`` runs the sweep of a paper protocol, then the report.

Each table is an experiment config (``configs/experiment/``), a list of strategies and a number of seeds.
The dataset is checked first: a missing dataset stops with one line before anything runs. The sweep uses
Hydra multirun (``--launcher joblib`` runs ``--jobs`` runs in parallel, one torch thread each); re-running a
table skips finished runs and resumes unfinished ones. The report lands in ``<results>/report``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALL_STRATEGIES = sorted(p.stem for p in (ROOT / "configs" / "strategy").glob("*.yaml"))


@dataclass
class Table:
    experiment: str
    strategies: list[str]
    seeds: int
    results: str
    #: extra override sets, one sweep each, by name (each gets its own results subdirectory).
    sweeps: dict[str, list[str]] = field(default_factory=lambda: {"": []})
    #: per-strategy overrides (e.g. a CPU-sized VAAL); these strategies run in a sweep of their own.
    strategy_overrides: dict[str, list[str]] = field(default_factory=dict)
    thresholds: tuple[float, ...] = ()  # report labels needed to reach these test accuracies


TABLES: dict[str, Table] = {
    "dispersion": Table(
        "dispersion_cifar10", ["random", "entropy", "margin", "coreset", "badge", "label_dispersion"], 3,
        "results/sweeps/dispersion",
    ),
    "isal": Table(
        "isal_cifar10", ["random", "entropy", "coreset", "badge", "isal"], 3, "results/sweeps/isal"
    ),
    "ralif": Table("ralif_cifar10", ["random", "entropy", "badge", "ralif"], 3, "results/sweeps/ralif"),
    "badge": Table(
        "badge_cifar10", ["random", "entropy", "margin", "coreset", "badge"], 5, "results/sweeps/badge",
        sweeps={
            "B100": ["budget.query_size=100", "budget.name=badge_B100"],
            "B1000": ["budget.query_size=1000", "budget.cycles=10", "budget.name=badge_B1000"],
        },
    ),
    "ji": Table("ji_cifar10", ["random", "entropy", "bald", "badge", "coreset"], 3, "results/sweeps/ji"),
    "dbal": Table(
        "dbal_mnist", ["random", "bald", "variation_ratio", "mc_entropy", "mean_std"], 5,
        "results/sweeps/dbal",
        thresholds=(0.90, 0.95),
    ),
    "dbal-digits": Table(
        "dbal_digits", ["random", "bald", "variation_ratio", "mc_entropy", "mean_std"], 5,
        "results/dbal_digits", thresholds=(0.90, 0.95),
    ),
    "suite-digits": Table(
        "digits_suite", ALL_STRATEGIES, 5, "results/digits",
        strategy_overrides={  # CPU-sized where the authors' defaults are GPU-sized (stated in the README)
            "vaal": ["strategy.epochs=5", "strategy.width=32"],
            "batchbald": ["strategy.num_joint_samples=2000"],
        },
    ),
}  # fmt: skip


def check_dataset(experiment: str) -> None:
    """Load the experiment's dataset once; a missing dataset exits with its one-line message."""
    from hydra import compose, initialize_config_dir

    from al_bench.build import build_dataset
    from al_bench.errors import ALBenchError

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"])
    try:
        build_dataset(cfg)
    except ALBenchError as e:
        print(f"al_bench: error: {e}", file=sys.stderr)
        sys.exit(2)


def sweep_commands(table: Table, runs_dir: Path, launcher: str, jobs: int) -> list[list[str]]:
    seeds = ",".join(str(s) for s in range(table.seeds))
    plain = [s for s in table.strategies if s not in table.strategy_overrides]
    groups = [(plain, [])] + [([s], o) for s, o in table.strategy_overrides.items() if s in table.strategies]
    launch = [f"hydra/launcher={launcher}"] + (
        [f"hydra.launcher.n_jobs={jobs}"] if launcher == "joblib" else []
    )
    commands = []
    for name, extra in table.sweeps.items():
        results = runs_dir / name if name else runs_dir
        for strategies, overrides in groups:
            if not strategies:
                continue
            commands.append(
                [sys.executable, "-m", "al_bench", "-m", f"experiment={table.experiment}",
                 f"strategy={','.join(strategies)}", f"seed={seeds}", f"paths.results_dir={results}",
                 f"hydra.sweep.dir={results}/.hydra", "verbose=false", *launch, *extra, *overrides]
            )  # fmt: skip
    return commands


def thresholds_table(runs_dir: Path, out: Path, thresholds: tuple[float, ...]) -> str:
    """Labels needed for the mean curve of each strategy to reach each test accuracy (DBAL's table)."""
    from al_bench.report.aggregate import load_curves
    from al_bench.report.metrics import labels_to_reach, mean_curves

    means = mean_curves(load_curves(runs_dir))
    header = "| strategy | seeds | " + " | ".join(f"labels to {100 * t:.0f}%" for t in thresholds) + " |"
    lines = [header, "|---" * (len(thresholds) + 2) + "|"]
    for strategy, g in means.groupby("strategy"):
        g = g.sort_values("n_labeled")
        cells = []
        for t in thresholds:
            n = labels_to_reach(g["n_labeled"].to_numpy(), g["mean"].to_numpy(), t)
            cells.append("not reached" if n != n else str(int(n)))
        seeds = int(g["n_seeds"].max())
        lines.append(f"| {strategy} | {seeds} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "thresholds.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(TABLES))
    parser.add_argument(
        "--launcher", default="joblib", choices=["basic", "joblib", "submitit_local", "submitit_slurm"]
    )
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--seeds", type=int, default=None, help="override the table's number of seeds")
    args = parser.parse_args()
    table = TABLES[args.name]
    if args.seeds:
        table.seeds = args.seeds
    check_dataset(table.experiment)
    out = ROOT / table.results
    runs_dir = out / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for cmd in sweep_commands(table, runs_dir, args.launcher, args.jobs):
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    report = [sys.executable, "-m", "al_bench.report", str(runs_dir), "--out", str(out)]
    if subprocess.run(report, cwd=ROOT).returncode:
        sys.exit(2)  # the report printed its one-line reason
    if table.thresholds:
        print(thresholds_table(runs_dir, out, table.thresholds))


if __name__ == "__main__":
    main()
