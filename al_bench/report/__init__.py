"""Reports of a sweep: aggregation of run files, curve metrics, cross-strategy statistics, plots, paper tables
and one HTML page.

``python -m al_bench.report RESULTS_DIR`` writes them all; the functions are importable for notebooks.
"""

from __future__ import annotations

from al_bench.report.aggregate import load_curves, load_status, parse_variant, setting_label
from al_bench.report.families import family_of
from al_bench.report.metrics import (
    accuracy_at_budgets,
    annotation_savings,
    aubc,
    count_validation_labels,
    labels_to_reach,
    labels_to_reach_per_seed,
    mean_curves,
    penalty_matrix,
    quantiles_with_inf,
    summary_table,
    threshold_quartiles,
)
from al_bench.report.stats import diff_to_random, rank_test, setting_aubc

__all__ = [
    "accuracy_at_budgets",
    "annotation_savings",
    "aubc",
    "count_validation_labels",
    "diff_to_random",
    "family_of",
    "labels_to_reach",
    "labels_to_reach_per_seed",
    "load_curves",
    "load_status",
    "mean_curves",
    "parse_variant",
    "penalty_matrix",
    "quantiles_with_inf",
    "rank_test",
    "setting_aubc",
    "setting_label",
    "summary_table",
    "threshold_quartiles",
]
