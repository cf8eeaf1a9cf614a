"""The ``group`` analysis level: cohort table, accuracy metrics, age-bias correction, plots.

Modules:

* :mod:`~bids_infantage.group.cohort`: the cohort table (participant-level rows gathered).
* :mod:`~bids_infantage.group.metrics`: accuracy metrics with bootstrap 95% CIs.
* :mod:`~bids_infantage.group.bias_correction`: linear age-bias correction of the gap.
* :mod:`~bids_infantage.group.outliers`: the outlier rule.
* :mod:`~bids_infantage.group.longitudinal`: per-infant trajectories and the mixed model.
* :mod:`~bids_infantage.group.plots`: the figures (SVG).
* :mod:`~bids_infantage.group.compare`: comparisons of model configurations (benchmarks).
* :mod:`~bids_infantage.group.references`: the references cited by the group outputs.
* :mod:`~bids_infantage.group.outputs`: file names, sidecars and text formats of the outputs.
* :mod:`~bids_infantage.group.analysis`: :func:`~bids_infantage.group.analysis.run_group`,
  which runs them on a derivatives folder (:mod:`bids_infantage.workflows.group` wraps it in
  a nipype workflow; :mod:`bids_infantage.reports.group` renders its report).

The names below are the package's public statistics API.
"""
from bids_infantage.group.bias_correction import (
    BIAS_CORRECTION_FORMULA,
    BIAS_CORRECTION_METHOD,
    apply_bias_correction,
    corrected_predicted_age,
    fit_bias_correction,
    load_bias_correction,
    save_bias_correction,
)
from bids_infantage.group.cohort import BRAINAGE_COLUMNS, collect_cohort
from bids_infantage.group.metrics import METRICS, metrics_table, regression_metrics
from bids_infantage.group.outliers import OUTLIER_SD, flag_outliers
from bids_infantage.group.references import REFERENCES

__all__ = [
    "BIAS_CORRECTION_FORMULA",
    "BIAS_CORRECTION_METHOD",
    "BRAINAGE_COLUMNS",
    "METRICS",
    "OUTLIER_SD",
    "REFERENCES",
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
