"""Paper tables: ``python scripts/table.py NAME [NAME ...]`` runs a paper protocol's sweeps, then the report.

Each table is an experiment config (``configs/experiment/``), a list of strategies, a number of seeds and
optionally several sweeps (override sets, each in its own results subdirectory). The dataset is checked first:
a missing dataset stops with one line before anything runs. The sweeps use Hydra multirun (``--launcher
joblib`` runs ``--jobs`` runs in parallel, one torch thread each); re-running a table skips finished runs and
resumes unfinished ones. The report lands in ``<results>/report`` (summary, curves, penalty matrix) and, for
the tables that have thresholds, ``<results>/thresholds.md`` ("labels to X%" quartiles over seeds, next to the
published numbers). The exit code is 1 when a run did not finish (the report lists why).

``--smoke`` runs every sweep x strategy of the table for ONE cycle of 1 epoch, one seed, in this process
(Hydra's basic launcher), on tiny files written in the dataset's real on-disk format into a temporary data
directory, with tiny budgets and the expensive strategy options shrunk; then the report and thresholds. It
fails (exit 1) when any run fails. ``all`` names every table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python scripts/table.py` from a checkout without an installed package
    sys.path.insert(0, str(ROOT))

ALL_STRATEGIES = sorted(p.stem for p in (ROOT / "configs" / "strategy").glob("*.yaml"))
MC_DROPOUT = ["bald", "variation_ratio", "mc_entropy", "mean_std"]
# The suites' CPU sizing of strategies whose authors' defaults are GPU-sized (VAAL, MAL, BatchBALD, Suggestive
# Annotation) lives in the configs: each suite's experiment selects a profile (configs/sizing/*.yaml) whose
# configs/sized_strategy/<profile>_<strategy>.yaml set those options, so a whole suite is ONE multirun (one
# worker pool, no idle worker while a group of 5 slow runs finishes) and a single run of the experiment gets
# the suite's protocol.
#: the realistic-pool suite: a CPU-sized subset of the Fashion-MNIST suite's strategies under each scenario
REALISTIC_STRATEGIES = [
    "random", "entropy", "margin", "badge", "coreset", "bald", "typiclust", "label_dispersion",
]  # fmt: skip
#: the survey's grid (Beluch et al. 2018's comparison): acquisition x where the posterior samples come from
POSTERIOR_GRID_STRATEGIES = ["bald", "variation_ratio", "vote_entropy"]
POSTERIORS = ["mc_dropout", "ensemble", "dee", "snapshot", "split_head", "bbb"]
#: selection via proxy (Coleman et al. 2020): the target selecting itself ("self") against two proxies
SVP_STRATEGIES = ["entropy", "badge", "vote_entropy"]
SVP_PROXIES = ["fewer_epochs", "mlp_fewer_epochs"]


@dataclass
class Sweep:
    """One sweep of a table: overrides for all its runs (``experiment=...`` replaces the table's experiment)
    and per-strategy overrides on top of the table's."""

    overrides: list[str] = field(default_factory=list)
    strategy_overrides: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Table:
    experiment: str
    strategies: list[str]
    seeds: int
    results: str
    #: sweeps by name, each in its own results subdirectory ("" = directly in <results>/runs)
    sweeps: dict[str, Sweep] = field(default_factory=lambda: {"": Sweep()})
    #: per-strategy overrides for every sweep (a strategy with overrides runs in a multirun of its own)
    strategy_overrides: dict[str, list[str]] = field(default_factory=dict)
    thresholds: tuple[float, ...] = ()  # thresholds.md: labels needed to reach these test accuracies
    accuracy_budgets: tuple[int, ...] = ()  # thresholds.md: median test accuracy at these labeled-set sizes
    published: str = ""  # PROTOCOLS.md's published numbers, printed in thresholds.md for comparison

    def experiments(self) -> list[str]:
        """The experiment of every sweep, in order, without repeats."""
        names = [sweep_experiment(self, s) for s in self.sweeps.values()]
        return list(dict.fromkeys(names))


DBAL_PUBLISHED = """\
Gal, Islam & Ghahramani 2017, Table 1 (MNIST; one number per strategy, not quartiles). The paper counts images
acquired BEYOND the 20 initial ones; "labels" adds those 20 to compare with the table above.

| strategy | 10% test error (90%): acquired / labels | 5% test error (95%): acquired / labels |
|---|---|---|
| random | 255 / 275 | 835 / 855 |
| bald | 145 / 165 | 335 / 355 |
| variation_ratio | 120 / 140 | 295 / 315 |
| mc_entropy (max entropy) | 165 / 185 | 355 / 375 |
| mean_std | 230 / 250 | 695 / 715 |
"""

BATCHBALD_PUBLISHED = """\
Kirsch et al. 2019 (BlackHC/BatchBALD laaos_results/paper, recomputed from the raw logs; PROTOCOLS.md):
labels include the 20 initial ones; quartiles 25 / 50 / 75% over 6 seeds.

| setting | strategy | labels to 90% | labels to 95% |
|---|---|---|---|
| MNIST | batchbald (b = 10) | 70 / 90 / 110 | 190 / 200 / 230 |
| MNIST | bald (b = 10) | 120 / 120 / 170 | 250 / 250 / > 300 |
| RMNIST | batchbald | 120 / 120 / 130 | – |
| RMNIST | random | 185 / 195 / 225 | – |
| RMNIST | bald | 260 / 280 / > 300 | – |

Median test accuracy at 20 / 50 / 100 / 150 / 200 / 250 labels:

| setting | strategy | 20 | 50 | 100 | 150 | 200 | 250 |
|---|---|---|---|---|---|---|---|
| MNIST | batchbald | 66.6 | 81.6 | 89.6 | 92.5 | 94.7 | 95.5 |
| MNIST | bald | 66.2 | 76.8 | 86.1 | 89.6 | 92.0 | 94.4 |
| RMNIST | batchbald | 62.6 | 76.0 | 88.4 | 90.8 | 92.5 | 94.4 |
| RMNIST | bald | 63.1 | 71.5 | 77.1 | 81.3 | 85.6 | 86.9 |
| RMNIST | random | 63.6 | 74.9 | 81.4 | 84.4 | 88.1 | 90.1 |
"""

#: the posterior grid's sweeps, one per source (++: in a multirun Hydra first composes the default strategy,
#: which has no posterior option)
POSTERIOR_SWEEPS = {s: Sweep([f"++strategy.posterior={s}", f"variant={s}"]) for s in POSTERIORS}
#: the SVP table's sweeps: the target selecting itself, then each proxy
SVP_SWEEPS = {"self": Sweep([]), **{p: Sweep([f"proxy={p}", f"variant={p}"]) for p in SVP_PROXIES}}

TABLES: dict[str, Table] = {
    "dispersion": Table(
        "dispersion_cifar10", ["random", "entropy", "margin", "coreset", "badge", "label_dispersion"], 3,
        "results/sweeps/dispersion",
    ),
    "isal": Table(
        "isal_cifar10", ["random", "entropy", "coreset", "badge", "isal"], 3, "results/sweeps/isal",
        strategy_overrides={"isal": ["strategy.params=weights"]},  # the authors' parameter set (see the yaml)
    ),
    "ralif": Table("ralif_cifar10", ["random", "entropy", "badge", "ralif"], 3, "results/sweeps/ralif"),
    "badge": Table(
        "badge_cifar10", ["random", "entropy", "margin", "coreset", "badge"], 5, "results/sweeps/badge",
        sweeps={
            "B100": Sweep(["budget.query_size=100", "budget.name=badge_B100"]),
            "B1000": Sweep(["budget.query_size=1000", "budget.cycles=10", "budget.name=badge_B1000"]),
        },
    ),
    "ji": Table(
        "ji_cifar10", ["random", "entropy", "bald", "badge", "coreset"], 3, "results/sweeps/ji",
        # their BALD has no stochasticity (experiment/ji_cifar10.yaml): MC dropout before the head, T = 25
        strategy_overrides={"bald": ["model.dropout=0.3", "strategy.n_samples=25"]},
    ),
    "dbal": Table(
        "dbal_mnist", ["random", *MC_DROPOUT], 5, "results/sweeps/dbal",
        strategy_overrides={s: ["strategy.n_samples=100"] for s in MC_DROPOUT},  # the authors' T = 100
        thresholds=(0.90, 0.95), published=DBAL_PUBLISHED,
    ),
    "dbal-digits": Table(
        "dbal_digits", ["random", *MC_DROPOUT], 5, "results/dbal_digits", thresholds=(0.90, 0.95),
    ),
    "batchbald": Table(
        "batchbald_mnist", ["batchbald", "bald", "random"], 6, "results/sweeps/batchbald",
        sweeps={
            "mnist": Sweep(["experiment=batchbald_mnist"],
                           {s: ["strategy.n_samples=100"] for s in ("batchbald", "bald")}),
            "rmnist": Sweep(["experiment=batchbald_rmnist"],
                            {s: ["strategy.n_samples=10"] for s in ("batchbald", "bald")}),
        },
        thresholds=(0.90, 0.95), accuracy_budgets=(20, 50, 100, 150, 200, 250), published=BATCHBALD_PUBLISHED,
    ),
    "suite-digits": Table("digits_suite", ALL_STRATEGIES, 5, "results/digits"),
    "suite-fmnist": Table("fmnist_suite", ALL_STRATEGIES, 3, "results/fashion_mnist"),
    "suite-fmnist-realistic": Table(
        "fmnist_frozen_suite", REALISTIC_STRATEGIES, 3, "results/fashion_mnist_realistic",
        sweeps={
            "clean": Sweep([]),
            "imbalanced_rho10": Sweep(["scenario=imbalanced", "scenario.rho=10", "variant=rho10"]),
            "imbalanced_rho100": Sweep(["scenario=imbalanced", "scenario.rho=100", "variant=rho100"]),
            "label_noise_eta0.2": Sweep(["scenario=label_noise", "scenario.eta=0.2", "variant=eta0.2"]),
            "open_set_0.3": Sweep(["scenario=open_set", "scenario.ood_fraction=0.3", "variant=ood0.3"]),
        },
    ),
    "posterior-grid": Table(
        "digits_suite", POSTERIOR_GRID_STRATEGIES, 3, "results/posterior_grid",
        sweeps=POSTERIOR_SWEEPS,
    ),
    "svp": Table(
        "digits_suite", SVP_STRATEGIES, 3, "results/svp",
        sweeps=SVP_SWEEPS,
    ),
    "posterior-grid-fmnist": Table(
        "fmnist_suite", POSTERIOR_GRID_STRATEGIES, 3, "results/posterior_grid_fmnist", sweeps=POSTERIOR_SWEEPS
    ),
    "svp-fmnist": Table(
        "fmnist_suite", SVP_STRATEGIES, 3, "results/svp_fmnist",
        sweeps=SVP_SWEEPS,
    ),
    "suite-fmnist-frozen": Table(
        "fmnist_frozen_suite", [s for s in ALL_STRATEGIES if s != "bait"], 5, "results/fashion_mnist_frozen",
    ),
}  # fmt: skip


# ---- smoke mode: what shrinks ------------------------------------------------------------------------------

#: per dataset: images written (train / test, every class present) and the budget. CIFAR-10 tables train a
#: ResNet-18 (0.56 GFLOP per 32x32 image on the CPU), so fewer images there; a class-balanced initial set
#: keeps one label per class (10).
SMOKE_SIZES = {
    "cifar10": {"n_train": 24, "n_test": 8, "init_size": 4, "query_size": 2},
    "default": {"n_train": 40, "n_test": 10, "init_size": 10, "query_size": 5},
}
SMOKE_POOL_SUBSET = 20  # where the protocol scores a pool subset
SMOKE_VAL_SIZE = 10  # where the protocol has a validation split
SMOKE_RHO = 2  # imbalanced pools: the tiny files hold 4 images per class
#: strategy options shrunk where the strategy has them (MC passes, committee, LiSSA, joint samples, VAAL)
SMOKE_STRATEGY = {
    "n_samples": 3, "committee_size": 2, "steps": 2, "repeats": 1, "num_joint_samples": 64,
    "epochs": 1, "width": 8, "fit_max_iter": 10,
}  # fmt: skip
#: trainer options shrunk where the protocol sets them
SMOKE_TRAINER = {"samples_per_epoch": 64, "eval_mc_samples": 2}


def sweep_experiment(table: Table, sweep: Sweep) -> str:
    """The experiment a sweep runs: its own ``experiment=...`` override, else the table's."""
    own = [o.split("=", 1)[1] for o in sweep.overrides if o.startswith("experiment=")]
    return own[-1] if own else table.experiment


def merge_overrides(*lists: list[str]) -> list[str]:
    """Concatenate Hydra overrides; a key given twice keeps its first place and takes its last value."""
    merged: dict[str, str] = {}
    for override in (o for lst in lists for o in lst):
        merged[override.split("=", 1)[0]] = override
    return list(merged.values())


def compose(experiment: str, overrides: list[str]):
    """The composed config of ``experiment=<experiment>`` + overrides (Hydra's compose API, no run)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            return hydra_compose("config", overrides=[f"experiment={experiment}", *overrides])
    finally:
        GlobalHydra.instance().clear()


def smoke_overrides(cfg, data_dir: Path) -> list[str]:
    """Run-level smoke overrides for a composed sweep config: 1 cycle of 1 epoch, tiny budget and splits."""
    # a snapshot ensemble needs an optimizer step per snapshot: 2 epochs x 1 batch for the 2 of the smoke
    epochs = 2 if cfg.strategy.get("posterior") == "snapshot" else 1
    out = [f"paths.data_dir={data_dir}", f"trainer.max_epochs={epochs}"]
    sizes = SMOKE_SIZES.get(str(cfg.dataset.name), SMOKE_SIZES["default"])
    init = max(sizes["init_size"], 10) if cfg.budget.get("init_balanced") else sizes["init_size"]
    out += [f"budget.init_size={init}", f"budget.query_size={sizes['query_size']}", "budget.cycles=1"]
    if cfg.budget.get("pool_subset"):
        out.append(f"budget.pool_subset={SMOKE_POOL_SUBSET}")
    if cfg.dataset.get("val_size"):
        out.append(f"dataset.val_size={SMOKE_VAL_SIZE}")
    if "verify" in cfg.dataset:
        out.append("dataset.verify=false")  # home-made files cannot match the official md5
    if "fallback_dir" in cfg.dataset:
        out.append("dataset.fallback_dir=null")  # read the tiny files, never a system-wide copy
    out += [f"trainer.{k}={v}" for k, v in SMOKE_TRAINER.items() if cfg.trainer.get(k)]
    scenario = cfg.get("scenario") or {}
    if scenario.get("rho") is not None:  # a handful of images per class: a long tail would empty classes
        out.append(f"scenario.rho={SMOKE_RHO}")
    if cfg.model.get("freeze"):
        out.append(f"paths.cache_dir={data_dir}/feature_cache")  # the tiny files' features only
    return out


def smoke_strategy_overrides(strategy: str) -> list[str]:
    """The strategy's expensive options (those it has, from its yaml) shrunk to smoke size."""
    import hydra.utils
    import yaml

    options = yaml.safe_load((ROOT / "configs" / "strategy" / f"{strategy}.yaml").read_text()) or {}
    out = [f"strategy.{k}={v}" for k, v in SMOKE_STRATEGY.items() if k in options]
    if "members" in (options.get("posterior_options") or {}):  # T of trained sources
        out.append(f"strategy.posterior_options.members={SMOKE_STRATEGY['committee_size']}")
    if getattr(hydra.utils.get_class(options["_target_"]), "needs_validation", False):
        out.append(f"dataset.val_size={SMOKE_VAL_SIZE}")  # the default split (100) exceeds the tiny files
    return out


def write_smoke_data(cfg, rng_seed: int = 0) -> None:
    """Tiny files in the real format where the composed config's dataset reads them (no-op for digits)."""
    import numpy as np

    from al_bench.data.fixtures import MNIST_FOLDERS, WRITERS, write_dataset

    name = str(cfg.dataset.name)
    if name not in WRITERS and name not in MNIST_FOLDERS:
        return  # bundled or generated data (digits, synthetic)
    data_dir = Path(str(cfg.dataset.data_dir))
    if not data_dir.exists():
        sizes = SMOKE_SIZES.get(name, SMOKE_SIZES["default"])
        rng = np.random.default_rng(rng_seed)
        write_dataset(name, data_dir, rng, n_train=sizes["n_train"], n_test=sizes["n_test"])


# ---- sweeps ------------------------------------------------------------------------------------------------


def sweep_commands(
    table: Table, runs_dir: Path, launcher: str, jobs: int, smoke: dict[str, list[str]] | None = None
) -> list[list[str]]:
    """Hydra multirun argument lists (without the interpreter): per sweep, one per group of strategies that
    share the same strategy overrides (in the table's order). Hydra checks a multirun's overrides against the
    experiment's default strategy, which may lack the option (`random` has no `n_samples`), so a group's own
    overrides are force-added (``++``): every strategy of the group has those options.
    ``smoke``: {sweep name: run-level smoke overrides}; the strategies' expensive options shrink too.
    ``variant=``: a table's overrides are its protocol, so its runs keep plain run directories (no suffix)."""
    seeds = ",".join(str(s) for s in range(table.seeds))
    launch = [f"hydra/launcher={launcher}"] + (
        [f"hydra.launcher.n_jobs={jobs}"] if launcher == "joblib" else []
    )
    commands = []
    for name, sweep in table.sweeps.items():
        results = runs_dir / name if name else runs_dir
        groups: dict[tuple[str, ...], list[str]] = {}
        for strategy in table.strategies:
            extra = table.strategy_overrides.get(strategy, []) + sweep.strategy_overrides.get(strategy, [])
            if smoke is not None:
                extra = extra + smoke_strategy_overrides(strategy)
            groups.setdefault(tuple(merge_overrides(extra)), []).append(strategy)
        own = [o for o in sweep.overrides if not o.startswith("experiment=")]
        for extra, strategies in groups.items():
            base = [
                "-m", f"experiment={sweep_experiment(table, sweep)}", f"strategy={','.join(strategies)}",
                f"seed={seeds}", f"paths.results_dir={results}", f"hydra.sweep.dir={results}/.hydra",
                "verbose=false", "variant=", *launch,
            ]  # fmt: skip
            forced = [e if e.startswith(("+", "~")) else f"++{e}" for e in extra]
            commands.append(merge_overrides(base, own, forced, (smoke or {}).get(name, [])))
    return commands


def run_in_process(argv: list[str]) -> bool:
    """``python -m al_bench <argv>`` inside this process (Hydra's basic launcher: no process start-up per
    command); False when Hydra itself stopped (bad override), True otherwise (runs report in status.json)."""
    from hydra.core.global_hydra import GlobalHydra

    import al_bench.cli

    GlobalHydra.instance().clear()
    saved = sys.argv
    sys.argv = ["al_bench", *argv]
    try:
        al_bench.cli.main()
    except SystemExit as stop:
        return stop.code in (0, None)
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    return True


def unfinished_runs(table: Table, runs_dir: Path) -> list[str]:
    """One line per run of the table that did not finish, and per sweep that has fewer runs than planned."""
    from al_bench.errors import ALBenchError
    from al_bench.report.aggregate import load_status

    problems = []
    for name in table.sweeps:
        results = runs_dir / name if name else runs_dir
        expected = len(table.strategies) * table.seeds
        try:
            status = load_status(results) if results.exists() else None
        except ALBenchError as err:
            problems.append(f"{results}: {err}")
            continue
        if status is None or status.empty:
            problems.append(f"{results}: no run wrote a status (expected {expected})")
            continue
        for _, row in status[status["state"] != "finished"].iterrows():
            problems.append(f"{row['run_dir']}: {row['state']}: {row['message']}")
        if len(status) < expected:
            problems.append(f"{results}: {len(status)} of {expected} runs started (see the log above)")
    return problems


# ---- thresholds.md -----------------------------------------------------------------------------------------


def experiment_comment(experiment: str) -> list[str]:
    """The leading comment block of configs/experiment/<experiment>.yaml (its protocol statement)."""
    lines = []
    for line in (ROOT / "configs" / "experiment" / f"{experiment}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        if "@package" not in line:
            lines.append(line.lstrip("#").strip())
    return lines


def format_labels(value: float, max_labeled: float) -> str:
    """A labeled-set size (a quartile may fall between budgets), or ``> max`` when it is +inf."""
    import math

    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return f"> {int(max_labeled)}"
    return f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"


def thresholds_markdown(table: Table, name: str, runs_dir: Path, count_validation: bool = False) -> str:
    """thresholds.md: the protocol, then per setting "labels to X%" quartiles over seeds (and, where the table
    asks, the median accuracy at fixed budgets), then the published numbers."""
    from al_bench.report.aggregate import SETTING_KEYS, load_curves, setting_label
    from al_bench.report.metrics import (
        accuracy_at_budgets,
        accuracy_scale,
        count_validation_labels,
        threshold_quartiles,
    )

    curves = load_curves(runs_dir)
    if count_validation:
        curves = count_validation_labels(curves)
    n_val = sorted({int(v) for v in curves["n_val"]}) if "n_val" in curves.columns else [0]
    quart = threshold_quartiles(curves, table.thresholds)
    scale = accuracy_scale(curves["test_acc"])
    lines = [f"# {name}: labels to reach a test accuracy", ""]
    lines += [
        "Protocol (" + ", ".join(f"configs/experiment/{e}.yaml" for e in table.experiments()) + "):",
        "",
    ]
    for experiment in table.experiments():
        lines += [f"> {line}" if line else ">" for line in experiment_comment(experiment)] + [""]
    read = ", ".join(map(str, n_val))
    validation = (
        f"validation labels included: --count-validation, n_val = {read}"
        if count_validation
        else f"validation labels not included: the runs read n_val = {read} of them"
    )
    lines += [
        f"How: for each seed, the labeled-set size (initial set included, {validation}) of the first cycle "
        "whose model reaches X test accuracy; then the 25 / 50 / 75% quartiles over seeds (linear "
        "interpolation between order statistics, numpy's default). A seed that never reaches X counts as "
        '+inf: "> N" = more than N, the largest labeled-set size the runs evaluated.',
        "",
    ]
    for setting, g in quart.groupby(list(SETTING_KEYS), sort=True):
        lines += [f"## {setting_label(setting)}", ""]
        header = "| strategy | seeds | " + " | ".join(
            f"labels to {100 * t:g}% (25 / 50 / 75%)" for t in table.thresholds
        )
        lines += [header + " |", "|---" * (len(table.thresholds) + 2) + "|"]
        for strategy, rows in g.groupby("strategy", sort=True):
            cells = []
            for t in table.thresholds:
                row = rows[rows["target"] == float(t)].iloc[0]
                cells.append(
                    " / ".join(format_labels(row[q], row["max_labeled"]) for q in ("q25", "q50", "q75"))
                )
            lines.append(f"| {strategy} | {int(rows['n_seeds'].max())} | " + " | ".join(cells) + " |")
        lines.append("")
        if table.accuracy_budgets:
            in_setting = curves
            for key, value in zip(SETTING_KEYS, setting):
                in_setting = in_setting[in_setting[key] == value]
            shift = int(in_setting["n_val"].max()) if count_validation and "n_val" in in_setting else 0
            budgets = [b + shift for b in table.accuracy_budgets]
            acc = accuracy_at_budgets(in_setting, budgets, stat="median")
            lines += [
                "Median test accuracy (%) over seeds at these labeled-set sizes:",
                "",
                "| strategy | " + " | ".join(str(b) for b in budgets) + " |",
                "|---" * (len(budgets) + 1) + "|",
            ]
            for strategy, rows in acc.groupby("strategy", sort=True):
                values = [format_percent(v * scale) for v in rows.sort_values("n_labeled")["value"]]
                lines.append(f"| {strategy} | " + " | ".join(values) + " |")
            lines.append("")
    if table.published:
        lines += ["## Published numbers", "", table.published.rstrip(), ""]
    return "\n".join(lines)


def format_percent(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"


def write_thresholds(table: Table, name: str, runs_dir: Path, out: Path, count_validation: bool) -> str:
    from al_bench.results import atomic_write_text

    text = thresholds_markdown(table, name, runs_dir, count_validation)
    atomic_write_text(out / "thresholds.md", text)
    return text


# ---- driver ------------------------------------------------------------------------------------------------


def check_dataset(experiment: str, overrides: list[str] = ()) -> None:
    """Load the experiment's dataset once; a missing dataset exits with its one-line message."""
    from al_bench.build import build_dataset
    from al_bench.errors import ALBenchError

    try:
        build_dataset(compose(experiment, list(overrides)))
    except ALBenchError as e:
        print(f"al_bench: error: {e}", file=sys.stderr)
        sys.exit(2)


def report(runs_dir: Path, out: Path, count_validation: bool) -> bool:
    from al_bench.report.__main__ import main as report_main

    argv = [str(runs_dir), "--out", str(out)] + (["--count-validation"] if count_validation else [])
    return report_main(argv) == 0


def run_multiruns(commands: list[list[str]], extra: tuple[str, ...] = ()) -> float:
    """``python -m al_bench <argv> <extra>`` for each multirun argument list, one after the other, each job on
    one thread (OMP / MKL); returns the wall seconds of them all. A failing run reports in its status.json."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    for argv in commands:
        argv = [*argv, *extra]
        print("$ python -m al_bench", " ".join(argv), flush=True)
        subprocess.run([sys.executable, "-m", "al_bench", *argv], cwd=ROOT, env=env, check=False)
    return time.perf_counter() - start


def run_table(name: str, args: argparse.Namespace) -> list[str]:
    """Run one table (sweeps, report, thresholds); returns the problems (empty when every run finished)."""
    table = TABLES[name]
    if args.seeds:
        table = replace(table, seeds=args.seeds)
    out = ROOT / table.results
    for experiment in table.experiments():
        check_dataset(experiment)
    runs_dir = out / "runs"
    minutes = run_multiruns(sweep_commands(table, runs_dir, args.launcher, args.jobs)) / 60
    print(
        f"{name}: {len(table.strategies)} strategies x {table.seeds} seeds, sweeps {minutes:.1f} min wall",
        flush=True,
    )
    return finish(table, name, runs_dir, out, args.count_validation)


def finish(table: Table, name: str, runs_dir: Path, out: Path, count_validation: bool) -> list[str]:
    problems = unfinished_runs(table, runs_dir)
    if runs_dir.exists() and any(runs_dir.rglob("curve.csv")):
        if not report(runs_dir, out, count_validation):
            problems.append(f"{name}: the report failed (its one-line reason is above)")
        elif table.thresholds:
            print(write_thresholds(table, name, runs_dir, out, count_validation))
    else:
        problems.append(f"{name}: no run wrote a curve")
    return problems


def smoke_plan(name: str, work: Path) -> tuple[Table, Path, Path, list[list[str]]]:
    """Write the tiny data of table ``name`` under ``work`` and plan its smoke: (the table with one seed, its
    runs dir, its report dir, the multirun argument lists)."""
    table = replace(TABLES[name], seeds=1)
    data_dir, out = work / "data", work / "results" / name
    smoke: dict[str, list[str]] = {}
    for sweep_name, sweep in table.sweeps.items():
        probe = [f"strategy={table.strategies[0]}"]  # a sweep may set that strategy's options
        probe += [o for o in sweep.overrides if not o.startswith("experiment=")] + [
            f"paths.data_dir={data_dir}"
        ]
        cfg = compose(sweep_experiment(table, sweep), probe)
        write_smoke_data(cfg)
        smoke[sweep_name] = smoke_overrides(cfg, data_dir)
    runs_dir = out / "runs"
    return table, runs_dir, out, sweep_commands(table, runs_dir, "basic", 1, smoke=smoke)


def single_runs(argv: list[str]) -> list[list[str]]:
    """The single-run overrides a multirun argument list expands to (one per strategy, seed 0), without the
    Hydra-only ones: what ``compose`` needs to build the config of each run of the plan."""
    kept = [o.removeprefix("++") for o in argv if o != "-m" and not o.startswith(("hydra", "seed="))]
    strategies = next(o for o in kept if o.startswith("strategy=")).split("=", 1)[1].split(",")
    rest = [o for o in kept if not o.startswith("strategy=")]
    return [[f"strategy={s}", "seed=0", *rest] for s in strategies]


def smoke_table(name: str, args: argparse.Namespace, work: Path) -> list[str]:
    """The table shrunk to seconds in this process: every sweep x strategy, one seed, one cycle of 1 epoch."""
    table, runs_dir, out, commands = smoke_plan(name, work)
    problems = []
    for argv in commands:
        print("$ python -m al_bench", " ".join(argv), flush=True)
        if not run_in_process(argv):
            problems.append(f"{name}: Hydra stopped: python -m al_bench {' '.join(argv)}")
    return problems + finish(table, name, runs_dir, out, args.count_validation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="+", metavar="NAME", choices=[*sorted(TABLES), "all"])
    parser.add_argument(
        "--launcher", default="joblib", choices=["basic", "joblib", "submitit_local", "submitit_slurm"]
    )
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--seeds", type=int, default=None, help="override the table's number of seeds")
    parser.add_argument(
        "--strategies",
        type=lambda s: [x for x in s.split(",") if x],
        default=None,
        help="comma-separated: run only these of the tables' strategies (finished runs are skipped anyway)",
    )
    parser.add_argument("--count-validation", action="store_true", help="budgets count validation labels")
    parser.add_argument("--smoke", action="store_true", help="every sweep x strategy, 1 cycle, tiny files")
    parser.add_argument("--keep", action="store_true", help="smoke: keep the temporary directory")
    parser.add_argument("--work", type=Path, default=None, help="smoke: data and results here (kept)")
    args = parser.parse_args(argv)
    names = sorted(TABLES) if "all" in args.names else list(dict.fromkeys(args.names))
    if args.strategies:
        known = sorted({s for name in names for s in TABLES[name].strategies})
        unknown = [s for s in args.strategies if s not in known]
        if unknown:
            parser.error(
                f"--strategies: {', '.join(unknown)} not in {' '.join(names)}; valid: {', '.join(known)}"
            )
        for name in names:  # every table keeps only the named strategies; one with none left is skipped
            kept = [s for s in TABLES[name].strategies if s in args.strategies]
            TABLES[name] = replace(TABLES[name], strategies=kept)
        names = [name for name in names if TABLES[name].strategies]
    problems: list[str] = []
    if not args.smoke:
        for name in names:
            problems += run_table(name, args)
    else:
        work = args.work or Path(tempfile.mkdtemp(prefix="al_bench_smoke_"))
        timings = {}
        with _quiet_warnings():
            for name in names:
                start = time.perf_counter()
                found = smoke_table(name, args, work)
                timings[name] = (time.perf_counter() - start, not found)
                problems += found
        print("\nsmoke timings:")
        for name, (seconds, ok) in timings.items():
            print(f"  {name:<14} {seconds:6.1f} s  {'ok' if ok else 'FAILED'}")
        if problems or args.keep or args.work:
            print(f"smoke files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for line in problems:
        print(f"table: {line}", file=sys.stderr)
    return 1 if problems else 0


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny data makes Lightning warn about few batches; runs still report
        yield


if __name__ == "__main__":
    sys.exit(main())
