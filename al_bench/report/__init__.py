"""Reports of a sweep: aggregation of run files, curve metrics, plots and paper tables.

``python -m al_bench.report RESULTS_DIR`` writes them all; the functions are importable for notebooks.
"""

from __future__ import annotations

from al_bench.report.aggregate import load_curves, load_status
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

__all__ = [
    "accuracy_at_budgets",
    "annotation_savings",
    "aubc",
    "count_validation_labels",
    "labels_to_reach",
    "labels_to_reach_per_seed",
    "load_curves",
    "load_status",
    "mean_curves",
    "penalty_matrix",
    "quantiles_with_inf",
    "summary_table",
    "threshold_quartiles",
]
