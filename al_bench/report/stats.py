"""Statistics across strategies: AUBC per setting with bootstrap intervals, differences to random with
confidence bands, ranks, the Friedman test with the Nemenyi post-hoc test (Demšar, JMLR 2006), and the
summary's claims.

All functions are pure (frames in, frames / numbers out); the only randomness, the bootstrap, draws from a
``np.random.Generator`` passed in. Higher metric values are better (accuracy-like metrics). A *block* of the
rank test is one setting (its AUBC averaged over seeds) when there are two settings or more, else one seed of
the single setting (then the test speaks for that setting only, and says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from al_bench.report.aggregate import parse_variant, setting_keys, setting_label
from al_bench.report.families import family_of
from al_bench.report.metrics import BASELINE, accuracy_scale, seed_aubc


def bootstrap_mean_ci(
    values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values[R]`` (resampling the R seeds with replacement).

    R = 1 gives (value, value): one seed has no spread to resample. R = 0 gives (NaN, NaN).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)  # [n_boot]
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def setting_aubc(
    frame: pd.DataFrame,
    metric: str = "test_acc",
    baseline: str = BASELINE,
    rng: np.random.Generator | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per setting x strategy: the AUBC over the seeds whose curve is complete (see ``seed_aubc``).

    Columns: the setting keys, strategy, family, aubc_mean, aubc_std (ddof 1; NaN for one seed), n_seeds,
    ci_lo, ci_hi (bootstrap interval of the mean over seeds, ``level``), rank (within the setting, 1 = best,
    ties share the average rank), diff_random (aubc_mean - the baseline's), random_std (the baseline's AUBC
    std over its seeds), within_random_spread (|diff_random| <= random_std; False where random_std is
    unknown).
    ``rng`` defaults to ``np.random.default_rng(0)``; rows are visited in sorted order, so the same frame and
    seed give the same intervals.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    per_seed = seed_aubc(frame, metric)
    keys = setting_keys(per_seed)
    columns = [*keys, "strategy", "family", "aubc_mean", "aubc_std", "n_seeds", "ci_lo", "ci_hi", "rank"]
    columns += ["diff_random", "random_std", "within_random_spread"]
    rows = []
    for setting, g in per_seed.groupby(keys, sort=True):
        base = g.loc[g["strategy"] == baseline, "aubc"].to_numpy(dtype=float)
        base_mean = float(base.mean()) if base.size else float("nan")
        base_std = float(base.std(ddof=1)) if base.size >= 2 else float("nan")
        for strategy, runs in g.groupby("strategy", sort=True):
            values = runs.sort_values("seed")["aubc"].to_numpy(dtype=float)
            lo, hi = bootstrap_mean_ci(values, rng, n_boot, level)
            mean = float(values.mean())
            std = float(values.std(ddof=1)) if values.size >= 2 else float("nan")
            diff = mean - base_mean
            inside = bool(np.isfinite(base_std) and abs(diff) <= base_std)
            rows.append(
                (*setting, strategy, family_of(strategy), mean, std, values.size, lo, hi, np.nan, diff)
                + (base_std, inside)
            )
    out = pd.DataFrame(rows, columns=columns)
    if not out.empty:
        out["rank"] = out.groupby(keys, sort=False)["aubc_mean"].rank(ascending=False, method="average")
    out["n_seeds"] = out["n_seeds"].astype(np.int64)
    return out


def diff_to_random(
    frame: pd.DataFrame, metric: str = "test_acc", baseline: str = BASELINE, level: float = 0.95
) -> pd.DataFrame:
    """Per setting, strategy and checkpoint: the metric minus the baseline's, paired by seed, t interval.

    Pairs are the seeds both have at that checkpoint (same seed = same initial set). diff = mean of the paired
    differences d[P]; lo / hi = diff -+ t_{(1+level)/2, P-1} std(d, ddof 1) / sqrt(P), NaN for P < 2.
    random_std = the baseline's std over all its seeds at that checkpoint (its seed spread, ddof 1).
    Columns: the setting keys, strategy, family, n_labeled, diff, lo, hi, n_pairs, random_std. Settings
    without a baseline run give no rows. Values in the frame's units.
    """
    keys = setting_keys(frame)
    columns = [*keys, "strategy", "family", "n_labeled", "diff", "lo", "hi", "n_pairs", "random_std"]
    rows = []
    for setting, g in frame.groupby(keys, sort=True):
        base = g[g["strategy"] == baseline].pivot_table(index="n_labeled", columns="seed", values=metric)
        if base.empty:
            continue
        spread = base.std(axis=1, ddof=1)
        for strategy, runs in g[g["strategy"] != baseline].groupby("strategy", sort=True):
            table = runs.pivot_table(index="n_labeled", columns="seed", values=metric)
            for n, row in table.iterrows():
                if n not in base.index:
                    continue
                d = (row - base.loc[n]).dropna().to_numpy(dtype=float)  # [P]: paired by seed
                if d.size == 0:
                    continue
                mean = float(d.mean())
                if d.size >= 2:
                    half = stats.t.ppf((1.0 + level) / 2.0, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
                    lo, hi = mean - half, mean + half
                else:
                    lo = hi = float("nan")
                rows.append(
                    (*setting, strategy, family_of(strategy), int(n), mean, lo, hi, d.size, spread[n])
                )
    out = pd.DataFrame(rows, columns=columns)
    out["n_pairs"] = out["n_pairs"].astype(np.int64)
    return out


@dataclass
class RankTest:
    """Average ranks over blocks, the Friedman test and the Nemenyi post-hoc p-values (or why not applicable).

    ``values``: blocks x strategies, the AUBC each block gave (the data the test used); ``ranks``: the same
    shape, 1 = best; ``avg_ranks``: ascending (best first). ``nemenyi``: strategies x strategies p-values.
    ``cd``: Nemenyi's critical difference of average ranks at ``alpha``. ``reason`` is "" when the Friedman
    test applies, else one sentence why not (the ranks are still reported).
    """

    blocks: str  # "settings" | "seeds"
    description: str
    values: pd.DataFrame
    ranks: pd.DataFrame
    avg_ranks: pd.Series
    alpha: float = 0.05
    statistic: float = float("nan")
    p_value: float = float("nan")
    nemenyi: pd.DataFrame | None = None
    cd: float = float("nan")
    reason: str = ""
    dropped: list[str] = field(default_factory=list)

    @property
    def applicable(self) -> bool:
        return not self.reason

    @property
    def n_blocks(self) -> int:
        return int(self.values.shape[0])


def friedman_nemenyi(
    values: pd.DataFrame, alpha: float = 0.05, blocks: str = "settings", description: str = ""
) -> RankTest:
    """Rank test on ``values`` (rows = blocks, columns = strategies, higher is better).

    Blocks missing more than half of the strategies are dropped first, then strategies missing any remaining
    block (both listed in ``dropped``): Friedman needs complete blocks. Ranks within a block: 1 = best, ties
    averaged. Friedman (``scipy.stats.friedmanchisquare``) needs >= 3 strategies and >= 2 blocks; all-tied
    blocks give statistic 0 and p = 1. Nemenyi p-values: ``scikit_posthocs.posthoc_nemenyi_friedman``;
    CD = q_alpha sqrt(k (k + 1) / (6 N)), q_alpha = studentized range quantile(1 - alpha, k, inf) / sqrt 2.
    """
    dropped = []
    sparse = values.notna().sum(axis=1) * 2 < values.shape[1]
    dropped += [
        f"block {b} (has {int(values.loc[b].notna().sum())} strategies)" for b in values.index[sparse]
    ]
    values = values.loc[~sparse]
    incomplete = values.columns[values.isna().any(axis=0)]
    dropped += [f"{s} (missing in a block)" for s in incomplete]
    values = values.drop(columns=incomplete)
    ranks = values.rank(axis=1, ascending=False, method="average")
    avg = ranks.mean(axis=0).sort_values(kind="stable")
    test = RankTest(blocks, description, values, ranks, avg, alpha=alpha, dropped=dropped)
    k, n = values.shape[1], values.shape[0]
    if k < 3 or n < 2:
        test.reason = (
            f"the Friedman test needs >= 3 strategies and >= 2 blocks; there are {k} strategies with "
            f"complete results over {n} {blocks}"
        )
        return test
    if (values.nunique(axis=1) == 1).all():  # every block all tied: no evidence of any difference
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = stats.friedmanchisquare(*values.to_numpy(dtype=float).T)
    test.statistic, test.p_value = float(statistic), float(p_value)
    import scikit_posthocs as sp

    test.nemenyi = sp.posthoc_nemenyi_friedman(values.reset_index(drop=True)).loc[
        values.columns, values.columns
    ]
    q_alpha = stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0)
    test.cd = float(q_alpha * np.sqrt(k * (k + 1) / (6.0 * n)))
    return test


def rank_test(frame: pd.DataFrame, metric: str = "test_acc", alpha: float = 0.05) -> RankTest:
    """The rank test of a curve frame: blocks = settings (AUBC mean over seeds) when there are >= 2, else the
    seeds of the single setting (per-seed AUBC; complete runs only, see ``seed_aubc``)."""
    per_seed = seed_aubc(frame, metric)
    keys = setting_keys(per_seed)
    settings = per_seed[keys].drop_duplicates()
    if len(settings) >= 2:
        means = per_seed.groupby([*keys, "strategy"], sort=True)["aubc"].mean().reset_index()
        means["block"] = [setting_label(row, keys) for row in means[keys].itertuples(index=False)]
        values = means.pivot(index="block", columns="strategy", values="aubc")
        seeds = per_seed.groupby([*keys, "strategy"])["seed"].count()
        description = (
            f"{len(settings)} settings (differing in {', '.join(_swept(settings))}; each strategy's AUBC "
            f"averaged over {_span(seeds)} seeds per setting)"
        )
        return friedman_nemenyi(values, alpha, "settings", description)
    label = setting_label(settings.iloc[0].tolist(), keys) if len(settings) else "none"
    values = per_seed.pivot(index="seed", columns="strategy", values="aubc")
    values.index = [f"seed {s}" for s in values.index]
    description = (
        f"{len(values)} seeds of the single setting {label} (blocks = seeds: this ranking speaks for this "
        "setting only, not for other datasets, models or budgets)"
    )
    return friedman_nemenyi(values, alpha, "seeds", description)


def claims(
    table: pd.DataFrame, test: RankTest, metric: str = "test_acc", baseline: str = BASELINE
) -> list[str]:
    """The summary's sentences, each stating the seeds and settings behind it (plain text, one claim a line).

    ``table``: :func:`setting_aubc`; ``test``: :func:`rank_test`.
    """
    if table.empty:
        return [f"No run has a complete curve of {metric}: no AUBC, no ranking."]
    keys = setting_keys(table)
    scale = accuracy_scale(table["aubc_mean"])
    unit = " %" if scale == 100.0 else ""
    n_settings = table[keys].drop_duplicates().shape[0]
    lines = [
        f"Basis: {n_settings} setting(s), {_span(table['n_seeds'])} complete seeds per strategy and setting, "
        f"{int(table['n_seeds'].sum())} runs; every number below is the AUBC of {metric}."
    ]
    avg = test.avg_ranks
    if len(avg):
        top = ", ".join(f"{s} ({r:.2f})" for s, r in avg.head(3).items())
        where = ""
        if baseline in avg.index:
            position = int(np.flatnonzero(avg.index == baseline)[0]) + 1
            where = f"; {baseline} {avg[baseline]:.2f} (place {position} of {len(avg)})"
        lines.append(
            f"Average rank (1 = best) of {len(avg)} strategies over {test.description}: best {top}{where}."
        )
    if test.dropped:
        lines.append(f"Left out of the rank test (incomplete): {', '.join(test.dropped)}.")
    if not test.applicable:
        lines.append(f"Friedman test not applicable: {test.reason}.")
    else:
        verdict = (
            "the strategies' ranks differ"
            if test.p_value < test.alpha
            else "no detectable difference between the strategies' ranks (the order above is not evidence)"
        )
        k = len(avg)
        lines.append(
            f"Friedman chi2({k - 1}) = {test.statistic:.2f}, p = {test.p_value:.3g} over {test.n_blocks} "
            f"{test.blocks}: {verdict} (alpha = {test.alpha})."
        )
        if test.nemenyi is not None and baseline in test.nemenyi.index:
            p = test.nemenyi[baseline].drop(baseline)
            differ = p[p < test.alpha].index
            better = [s for s in differ if avg[s] < avg[baseline]]
            worse = [s for s in differ if avg[s] > avg[baseline]]
            lines.append(
                f"Nemenyi post-hoc (alpha = {test.alpha}, critical difference {test.cd:.2f} ranks over "
                f"{test.n_blocks} {test.blocks}): better than {baseline}: {', '.join(better) or 'none'}; "
                f"worse: {', '.join(worse) or 'none'}; {len(p) - len(differ)} of {len(p)} not "
                f"distinguishable from {baseline}."
            )
    for setting, g in table.groupby(keys, sort=True):
        label = setting_label(setting, keys)
        best = g.sort_values("aubc_mean", ascending=False, kind="stable").iloc[0]
        value = f"{best['aubc_mean'] * scale:.2f}{unit}"
        text = f"{label}: best {best['strategy']} {value} ({_seeds(best['n_seeds'])})"
        base = g[g["strategy"] == baseline]
        if base.empty:
            lines.append(f"{text}; no {baseline} runs, so no comparison with {baseline}.")
            continue
        b = base.iloc[0]
        spread = b["random_std"] * scale
        text += f"; {baseline} {b['aubc_mean'] * scale:.2f}{unit} ± {spread:.2f} ({_seeds(b['n_seeds'])})"
        others = g[g["strategy"] != baseline]
        if not np.isfinite(b["random_std"]):
            lines.append(f"{text}; {baseline} has fewer than 2 seeds, so its seed spread is unknown.")
            continue
        inside = others[others["within_random_spread"]]["strategy"].tolist()
        outside = others[~others["within_random_spread"]]
        above, below = int((outside["diff_random"] > 0).sum()), int((outside["diff_random"] < 0).sum())
        lines.append(
            f"{text}. Of the other {len(others)} strategies, {above} beat {baseline} by more than its seed "
            f"std, {below} fall below it by more, and {len(inside)} differ from it by less (inside its seed "
            f"spread: not evidence): {', '.join(inside) or 'none'}."
        )
    return lines


def _swept(settings: pd.DataFrame) -> list[str]:
    """The setting keys whose value differs between settings, the variant replaced by its override keys."""
    swept = []
    for key in settings.columns:
        if settings[key].nunique() <= 1:
            continue
        if key == "variant":
            swept += list(dict.fromkeys(k for v in settings[key] for k in parse_variant(v)))
        else:
            swept.append(key)
    return swept or ["nothing"]


def _seeds(n: int) -> str:
    return f"{int(n)} seed" if int(n) == 1 else f"{int(n)} seeds"


def _span(counts: pd.Series) -> str:
    """``3`` or ``3-5``: the range of a count column."""
    lo, hi = int(counts.min()), int(counts.max())
    return f"{lo}" if lo == hi else f"{lo}-{hi}"
