"""Reports of a sweep: aggregation of run files, curve metrics, plots and paper tables.

``python -m al_bench.report RESULTS_DIR`` writes them all; the functions are importable for notebooks.
"""

from __future__ import annotations

from al_bench.report.aggregate import load_curves, load_status
from al_bench.report.metrics import (
    annotation_savings,
    aubc,
    labels_to_reach,
    mean_curves,
    penalty_matrix,
    summary_table,
)

__all__ = [
    "annotation_savings",
    "aubc",
    "labels_to_reach",
    "load_curves",
    "load_status",
    "mean_curves",
    "penalty_matrix",
    "summary_table",
]
