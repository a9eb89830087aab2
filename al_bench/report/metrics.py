"""Curve summaries from the tidy curve frame: AUBC, labels to reach a target, savings, penalty matrix.

All functions are pure (frames / arrays in, frames / numbers out). Accuracies stay in the frame's units
(fractions in [0, 1] as the loop writes them); tables and plots convert with ``accuracy_scale``.
Strategies are compared only within a setting ``(dataset, model, budget, scenario, variant)`` (the setting
columns a frame has: hand-made frames may lack scenario / variant); ``n_labeled`` counts every labeled sample,
the initial set included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from al_bench.report.aggregate import setting_keys

BASELINE = "random"
#: curve columns that identify, count or describe something: never a metric to rank by (nor ``n_*`` counts)
NOT_METRICS: tuple[str, ...] = ("seed", "cycle", "epochs", "labeled_hist", "proxy_test_acc")


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a report can rank by: numeric, higher is better (not a count ``n_*``, a time ``*_s``, a
    loss)."""
    out = []
    for column in map(str, frame.columns):
        if column in NOT_METRICS or column.startswith("n_") or column.endswith("_s") or "loss" in column:
            continue
        if pd.api.types.is_numeric_dtype(frame[column]) and frame[column].notna().any():
            out.append(str(column))
    return out


def select_metric(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of ``frame`` that have ``metric`` (runs written before a metric column existed lack it).

    Raises ALBenchError naming the metric columns there are when ``metric`` is absent, empty, or not a
    higher-is-better score.
    """
    from al_bench.errors import ALBenchError

    columns = metric_columns(frame)
    if metric not in columns:
        if metric not in frame.columns:
            why = "is not a column of curve.csv"
        elif frame[metric].isna().all():
            why = "has no values"
        else:
            why = "is not a higher-is-better score (a count, a time, a loss or text)"
        raise ALBenchError(f"--metric {metric} {why}; rank by one of: {', '.join(columns) or 'none'}")
    return frame[frame[metric].notna()].reset_index(drop=True)


def accuracy_scale(acc: np.ndarray | pd.Series) -> float:
    """100.0 when accuracies look like fractions (all <= 1), else 1.0 (already percent): multiply to get %."""
    values = np.asarray(acc, dtype=float)
    finite = values[np.isfinite(values)]
    return 100.0 if finite.size == 0 or finite.max() <= 1.0 else 1.0


def aubc(n_labeled: Sequence[float] | np.ndarray, acc: Sequence[float] | np.ndarray) -> float:
    """Area under the budget curve, normalised by the budget range: the mean accuracy over the budget axis.

    n_labeled[K], acc[K] -> float in acc's units. Trapezoid rule over the checkpoints sorted by budget,
    divided by ``n_max - n_min``, so a flat curve at a gives a and the number does not depend on how many
    checkpoints there are. K = 1 gives that single accuracy. Checkpoints must be distinct.
    """
    n = np.asarray(n_labeled, dtype=float)
    a = np.asarray(acc, dtype=float)
    if n.shape != a.shape or n.ndim != 1 or n.size == 0:
        raise ValueError(
            f"aubc needs two 1-d arrays of the same non-zero length, got {n.shape} and {a.shape}"
        )
    order = np.argsort(n, kind="stable")
    n, a = n[order], a[order]
    if np.any(np.diff(n) == 0):
        raise ValueError("aubc: n_labeled has repeated checkpoints")
    if n.size == 1:
        return float(a[0])
    area = np.sum(np.diff(n) * (a[1:] + a[:-1]) / 2.0)
    return float(area / (n[-1] - n[0]))


def labels_to_reach(
    n_labeled: Sequence[float] | np.ndarray, acc: Sequence[float] | np.ndarray, target: float
) -> float:
    """The smallest checkpoint budget whose accuracy is >= target; NaN if the curve never gets there.

    n_labeled[K], acc[K] (usually a mean curve over seeds). No interpolation between checkpoints: the answer
    is always a budget that was actually evaluated, so it is an upper bound on the labels truly needed and
    two strategies on the same checkpoint grid are compared on equal terms. ``>=`` allows a 1e-9 relative
    slack so that rounding in means over seeds (0.7 vs 0.6999999999999998) does not decide the answer.
    """
    n = np.asarray(n_labeled, dtype=float)
    a = np.asarray(acc, dtype=float)
    if n.shape != a.shape or n.ndim != 1:
        raise ValueError(
            f"labels_to_reach needs two 1-d arrays of the same length, got {n.shape} and {a.shape}"
        )
    order = np.argsort(n, kind="stable")
    reached = n[order][a[order] >= target - 1e-9 * max(1.0, abs(target))]
    return float(reached[0]) if reached.size else float("nan")


def mean_curves(frame: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Per setting, strategy and checkpoint: mean and std (ddof=1, NaN for one seed) over seeds, and n_seeds.

    Columns: the setting keys, strategy, n_labeled, mean, std, n_seeds. Each checkpoint averages the
    seeds that reached it (unfinished runs contribute their finished cycles).
    """
    keys = [*setting_keys(frame), "strategy", "n_labeled"]
    grouped = frame.groupby(keys, sort=True)[metric]
    out = grouped.agg(mean="mean", std=lambda s: s.std(ddof=1), n_seeds="count").reset_index()
    out["n_seeds"] = out["n_seeds"].astype(np.int64)
    return out


def seed_aubc(frame: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """AUBC of every run whose curve covers all checkpoints of its setting.

    Columns: the setting keys, strategy, seed, aubc. The setting's checkpoint grid is the union of
    n_labeled over its runs; a run missing any of them (unfinished, failed) is left out, because its area
    would cover a different budget range and not be comparable.
    """
    rows, keys = [], setting_keys(frame)
    for setting, g in frame.groupby(keys, sort=True):
        grid = np.sort(g["n_labeled"].unique())
        for (strategy, seed), run in g.groupby(["strategy", "seed"], sort=True):
            if len(run) == grid.size and np.array_equal(np.sort(run["n_labeled"].to_numpy()), grid):
                value = aubc(run["n_labeled"].to_numpy(), run[metric].to_numpy())
                rows.append((*setting, strategy, seed, value))
    return pd.DataFrame(rows, columns=[*keys, "strategy", "seed", "aubc"])


def annotation_savings(
    frame: pd.DataFrame, baseline: str = BASELINE, metric: str = "test_acc"
) -> pd.DataFrame:
    """Labels each strategy needs to reach the baseline's final mean accuracy, and the saving vs the baseline.

    Per setting: target = the baseline's mean accuracy (over seeds) at its largest checkpoint.
    labels_to_reach = the first checkpoint where the strategy's mean curve is >= target (see
    ``labels_to_reach``; NaN if never). labels_random = the same quantity for the baseline itself: its final
    budget, or an earlier checkpoint if its mean curve already touched the target there.
    saving = 1 - labels_to_reach / labels_random (0 for the baseline, > 0 = fewer labels, NaN when the
    strategy never reaches the target or the setting has no baseline run).
    Columns: the setting keys, strategy, target_acc, labels_to_reach, labels_random, saving.
    """
    curves = mean_curves(frame, metric)
    rows, keys = [], setting_keys(frame)
    for setting, g in curves.groupby(keys, sort=True):
        base = g[g["strategy"] == baseline].sort_values("n_labeled")
        if base.empty:
            target = labels_base = float("nan")
        else:
            target = float(base["mean"].iloc[-1])
            labels_base = labels_to_reach(base["n_labeled"], base["mean"], target)
        for strategy, curve in g.groupby("strategy", sort=True):
            labels = labels_to_reach(curve["n_labeled"], curve["mean"], target)  # NaN target -> NaN
            rows.append((*setting, strategy, target, labels, labels_base, 1.0 - labels / labels_base))
    columns = [*keys, "strategy", "target_acc", "labels_to_reach", "labels_random", "saving"]
    return pd.DataFrame(rows, columns=columns)


def penalty_matrix(
    frame: pd.DataFrame,
    strategies: Sequence[str] | None = None,
    max_seeds: int = 5,
    alpha: float = 0.05,
    metric: str = "test_acc",
) -> tuple[pd.DataFrame, pd.Series]:
    """BADGE's pairwise penalty matrix (Ash et al. 2020, PROTOCOLS.md): P[i, j] = how often i beats j.

    For each setting (the setting keys) with checkpoints = every n_labeled of its learning curves
    (union over its runs, the initial set included: there all strategies share the seed's initial set,
    so Z = 0 and nobody wins, but the checkpoint still counts in the denominator), for each checkpoint and
    ordered pair (i, j): take the seeds both strategies have at that checkpoint, sorted, the first
    N = min(n_common, max_seeds); Z = acc_i - acc_j (paired by seed); t = sqrt(N) mean(Z) / std(Z, ddof=1).
    i beats j when N >= 2, mean(Z) > 0 and the two-sided p = 2 sf_t(|t|, N - 1) < alpha; then
    P[i, j] += 1 / |checkpoints of the setting|. A constant Z (std 0) with mean > 0 is a win (t = +inf,
    p = 0); mean(Z) = 0 never wins; N < 2 allows no test and never wins. P is summed over settings, so each
    entry is at most the number of settings (kept in ``P.attrs["n_settings"]``).

    Differences from BADGE's script, on purpose: it pairs runs by file order, we pair by seed (same seed =
    same initial set); it uses geometric checkpoints up to 99% of random's final accuracy, PROTOCOLS.md asks
    for every checkpoint of the curve.

    Returns P (rows = winner i, columns = loser j, S x S, zero diagonal) and the column means of P
    (over all S rows, the zero diagonal included, as BADGE does): how often a strategy is beaten,
    lower is better.
    """
    names = sorted(frame["strategy"].unique()) if strategies is None else list(strategies)
    unknown = sorted(set(names) - set(frame["strategy"].unique()))
    if unknown:
        raise ValueError(f"penalty_matrix: no runs of strategies {unknown}")
    if max_seeds < 2:
        raise ValueError("penalty_matrix: max_seeds must be >= 2 for a t-test")
    index = pd.Index(names, name="winner")
    total = np.zeros((len(names), len(names)))
    data = frame[frame["strategy"].isin(names)]
    n_settings = 0
    for _, g in data.groupby(setting_keys(data), sort=True):
        n_settings += 1
        acc = _accuracy_cube(g, index, metric)  # [S, K, R]
        wins = _pairwise_wins(acc, max_seeds, alpha)  # [S, S, K]
        total += wins.sum(axis=-1) / acc.shape[1]
    matrix = pd.DataFrame(total, index=index, columns=pd.Index(names, name="loser"))
    matrix.attrs["n_settings"] = n_settings
    col_means = matrix.mean(axis=0).rename("beaten (column mean)")
    return matrix, col_means


def _accuracy_cube(g: pd.DataFrame, strategies: pd.Index, metric: str) -> np.ndarray:
    """One setting's accuracies as acc[S, K, R]: strategy x checkpoint x seed (sorted), NaN where missing."""
    checkpoints = np.sort(g["n_labeled"].unique())
    seeds = np.sort(g["seed"].unique())
    acc = np.full((len(strategies), checkpoints.size, seeds.size), np.nan)
    s = strategies.get_indexer(g["strategy"])
    k = np.searchsorted(checkpoints, g["n_labeled"].to_numpy())
    r = np.searchsorted(seeds, g["seed"].to_numpy())
    acc[s, k, r] = g[metric].to_numpy(dtype=float)
    return acc


def _pairwise_wins(acc: np.ndarray, max_seeds: int, alpha: float) -> np.ndarray:
    """wins[i, j, k] = strategy i significantly beats j at checkpoint k (paired one-sample t-test on Z).

    acc[S, K, R] with NaN for a missing (strategy, checkpoint, seed). Uses the first ``max_seeds`` seeds
    (in sorted order) that both strategies have at k.
    """
    present = ~np.isnan(acc)
    common = present[:, None] & present[None, :]  # [S, S, K, R]
    used = common & (np.cumsum(common, axis=-1) <= max_seeds)
    n = used.sum(axis=-1)  # [S, S, K]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(used, acc[:, None] - acc[None, :], 0.0)
        mean = z.sum(axis=-1) / np.maximum(n, 1)
        sq = np.where(used, (z - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        std = np.sqrt(sq / np.maximum(n - 1, 1))
        t = np.sqrt(n) * mean / std
        p = np.where(std > 0, 2.0 * stats.t.sf(np.abs(t), df=np.maximum(n - 1, 1)), 0.0)
    return (n >= 2) & (mean > 0) & (p < alpha)


def summary_table(frame: pd.DataFrame, baseline: str = BASELINE, metric: str = "test_acc") -> pd.DataFrame:
    """One tidy row per (setting, strategy, checkpoint) with the per-checkpoint and per-strategy summaries.

    Columns: the setting keys, strategy, n_labeled, acc_mean, acc_std, n_seeds (seeds at that
    checkpoint) | aubc_mean, aubc_std (ddof=1 over complete runs, see ``seed_aubc``), aubc_seeds |
    target_acc, labels_to_reach, labels_random, saving (see ``annotation_savings``) | train_s_mean,
    select_s_mean (mean seconds per cycle over all the strategy's rows, NaN ignored). The columns after
    n_seeds repeat on every checkpoint row of a strategy. Accuracies in the frame's units.
    """
    per_strategy = [*setting_keys(frame), "strategy"]
    curves = mean_curves(frame, metric).rename(columns={"mean": "acc_mean", "std": "acc_std"})
    areas = seed_aubc(frame, metric).groupby(per_strategy)["aubc"]
    area_summary = areas.agg(
        aubc_mean="mean", aubc_std=lambda s: s.std(ddof=1), aubc_seeds="count"
    ).reset_index()
    savings = annotation_savings(frame, baseline, metric)
    timing = frame.groupby(per_strategy)[["train_s", "select_s"]].mean().reset_index()
    timing = timing.rename(columns={"train_s": "train_s_mean", "select_s": "select_s_mean"})
    out = curves.merge(area_summary, on=per_strategy, how="left")
    out = out.merge(savings, on=per_strategy, how="left").merge(timing, on=per_strategy, how="left")
    out["aubc_seeds"] = out["aubc_seeds"].fillna(0).astype(np.int64)
    out[["aubc_mean", "aubc_std"]] = out[["aubc_mean", "aubc_std"]].astype(float)  # no complete run -> NaN
    return out.sort_values([*per_strategy, "n_labeled"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- validation labels, per-seed thresholds


def count_validation_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Validation labels are labels: a copy of the curve frame with ``n_labeled += n_val`` on every row.

    Every budget-indexed quantity computed from the result (curves, AUBC, labels to reach, thresholds) then
    counts the validation labels a run read. The pool-only count is kept as ``n_labeled_pool``. A frame
    without ``n_val`` (older runs) is treated as n_val = 0.
    """
    out = frame.copy()
    n_val = out["n_val"] if "n_val" in out.columns else 0
    out["n_labeled_pool"] = out["n_labeled"]
    out["n_labeled"] = (out["n_labeled"] + n_val).astype(np.int64)
    return out


def labels_to_reach_per_seed(frame: pd.DataFrame, target: float, metric: str = "test_acc") -> pd.DataFrame:
    """Per run: the labeled-set size (initial set included) of the first cycle whose model reaches ``target``.

    "First" is by n_labeled; ``>=`` with the same 1e-9 relative slack as :func:`labels_to_reach`. A run that
    never reaches the target gets +inf (so that quantiles over seeds treat it as "more than the budget").
    Columns: the setting keys, strategy, seed, labels (float: a budget or inf), max_labeled (the run's
    largest evaluated budget).
    """
    rows, keys = [], setting_keys(frame)
    for key, run in frame.groupby([*keys, "strategy", "seed"], sort=True):
        n = run["n_labeled"].to_numpy(dtype=float)
        labels = labels_to_reach(n, run[metric].to_numpy(dtype=float), target)
        rows.append((*key, float("inf") if np.isnan(labels) else labels, float(n.max())))
    return pd.DataFrame(rows, columns=[*keys, "strategy", "seed", "labels", "max_labeled"])


def quantiles_with_inf(
    values: Sequence[float] | np.ndarray, qs: Sequence[float] = (0.25, 0.5, 0.75)
) -> list[float]:
    """Quantiles by linear interpolation between order statistics (numpy's default), +inf allowed.

    values[R] may hold +inf ("never reached"); position h = (R - 1) q between the sorted values x[floor h] and
    x[ceil h]: a quantile that lands exactly on a finite value is that value, one that needs any weight on an
    inf is inf (numpy would give NaN from inf * 0). Returns NaN for every q when values is empty.
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return [float("nan")] * len(qs)
    if np.isnan(x).any():
        raise ValueError("quantiles_with_inf: NaN values (use +inf for 'never reached')")
    out = []
    for q in qs:
        h = (x.size - 1) * float(q)
        lo, hi = int(np.floor(h)), int(np.ceil(h))
        frac = h - lo
        if frac == 0.0 or x[lo] == x[hi]:
            out.append(float(x[lo]))
        elif np.isinf(x[hi]):
            out.append(float("inf"))
        else:
            out.append(float(x[lo] + frac * (x[hi] - x[lo])))
    return out


def threshold_quartiles(
    frame: pd.DataFrame,
    targets: Sequence[float],
    qs: Sequence[float] = (0.25, 0.5, 0.75),
    metric: str = "test_acc",
) -> pd.DataFrame:
    """Labels to X per seed (:func:`labels_to_reach_per_seed`), then quantiles over seeds (BatchBALD's table).

    One row per setting, strategy and target. Columns: the setting keys, strategy, target, n_seeds,
    n_reached (seeds that reach it), q25, q50, q75 (named ``q{100 q}``; inf = more than ``max_labeled``),
    max_labeled (the largest budget any run of the strategy evaluated).
    """
    names = [f"q{round(100 * q)}" for q in qs]
    rows, keys = [], setting_keys(frame)
    for target in targets:
        per_seed = labels_to_reach_per_seed(frame, target, metric)
        for key, g in per_seed.groupby([*keys, "strategy"], sort=True):
            labels = g["labels"].to_numpy(dtype=float)
            reached = int(np.isfinite(labels).sum())
            quartiles = quantiles_with_inf(labels, qs)
            rows.append((*key, float(target), len(g), reached, *quartiles, float(g["max_labeled"].max())))
    columns = [*keys, "strategy", "target", "n_seeds", "n_reached", *names, "max_labeled"]
    return pd.DataFrame(rows, columns=columns)


def accuracy_at_budgets(
    frame: pd.DataFrame, budgets: Sequence[int], stat: str = "median", metric: str = "test_acc"
) -> pd.DataFrame:
    """``stat`` (median, mean) over seeds of ``metric`` at exactly these labeled-set sizes.

    One row per setting, strategy and budget. Columns: the setting keys, strategy, n_labeled, value (NaN
    when no run evaluated that budget), n_seeds (runs that did).
    """
    rows, keys = [], setting_keys(frame)
    for key, g in frame.groupby([*keys, "strategy"], sort=True):
        for n in budgets:
            values = g.loc[g["n_labeled"] == n, metric].to_numpy(dtype=float)
            value = float(getattr(np, stat)(values)) if values.size else float("nan")
            rows.append((*key, int(n), value, int(values.size)))
    return pd.DataFrame(rows, columns=[*keys, "strategy", "n_labeled", "value", "n_seeds"])
