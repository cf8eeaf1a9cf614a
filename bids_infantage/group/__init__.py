"""The ``group`` analysis level: cohort table, accuracy metrics, age-bias correction, plots.

The statistics live in :mod:`bids_infantage.group.stats`, the figures in
:mod:`bids_infantage.group.plots`; :mod:`bids_infantage.workflows.group` runs them on a
derivatives folder.
"""
from bids_infantage.group.stats import (
    apply_bias_correction,
    collect_cohort,
    corrected_predicted_age,
    fit_bias_correction,
    flag_outliers,
    load_bias_correction,
    metrics_table,
    regression_metrics,
    save_bias_correction,
)

__all__ = [
    "apply_bias_correction",
    "collect_cohort",
    "corrected_predicted_age",
    "fit_bias_correction",
    "flag_outliers",
    "load_bias_correction",
    "metrics_table",
    "regression_metrics",
    "save_bias_correction",
]
