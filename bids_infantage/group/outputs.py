"""What the group level writes: file names, BIDS sidecar descriptions and text formats.

File names are relative to the top of the output folder. :func:`tsv_text` and
:func:`json_text` give the exact text of the tables and sidecars (``%.6g`` floats, ``n/a``
for missing values, ``true``/``false`` booleans; JSON with a 2-space indent and no NaN).
"""
from __future__ import annotations

import json

import numpy as np

from bids_infantage.group.metrics import METRICS
from bids_infantage.group.outliers import OUTLIER_SD
from bids_infantage.utils.columns import BRAINAGE_COLUMNS

#: Output files, relative to the top of the output folder.
GROUP_TSV = "group_brainage.tsv"
GROUP_JSON = "group_brainage.json"
METRICS_TSV = "group_metrics.tsv"
METRICS_JSON = "group_metrics.json"
BIAS_JSON = "group_bias-correction.json"
REPORT_HTML = "group.html"
FIGURES = {
    "predicted_vs_chronological": "figures/group_predicted-vs-chronological.svg",
    "bland_altman": "figures/group_bland-altman.svg",
    "gap_distribution": "figures/group_gap-distribution.svg",
    "growth_chart": "figures/group_growth-chart.svg",
}
TRAJECTORIES_TSV = "group_trajectories.tsv"
TRAJECTORIES_JSON = "group_trajectories.json"
MIXED_JSON = "group_mixed-model.json"
#: Float format of the TSV columns computed by the group level.
FLOAT_FORMAT = "%.6g"

#: Sidecar entries of the group table: column -> BIDS column description (the participant
#: columns of :mod:`bids_infantage.utils.columns`, then the group level's own).
COLUMN_DESCRIPTIONS = {
    **BRAINAGE_COLUMNS,
    "brain_age_gap_corrected_months": {
        "Description": "Bias-corrected brain-age gap (de Lange & Cole, 2020): with "
        "predicted = alpha + beta * chronological fitted by OLS (parameters in "
        "group_bias-correction.json), corrected predicted age = predicted + (chronological "
        "- (alpha + beta * chronological)) and this gap = corrected - chronological = "
        "predicted - (alpha + beta * chronological). n/a without a chronological age or "
        "without a correction.",
        "Units": "months",
    },
    "outlier": {
        "Description": "Brain-age outlier: |brain_age_gap_corrected_months| > "
        f"{OUTLIER_SD:g} x the sample SD (ddof=1) of the corrected gaps of this "
        "cohort, or qc_out_of_range is true.",
        "Levels": {"true": "outlier", "false": "not an outlier"},
    },
}

METRICS_DESCRIPTIONS = {
    "metric": {
        "Description": "Accuracy of predicted_age_months against chronological_age_months "
        "(uncorrected predictions; sessions with both ages).",
        "Levels": {
            name: f"{desc} [{units}]" for name, (units, desc) in METRICS.items()
        },
    },
    "value": {"Description": "Point estimate, in the units of the metric (months for mae, "
              "rmse; dimensionless otherwise)."},
    "ci_low": {},
    "ci_high": {},
    "n": {"Description": "Number of subjects/sessions with both ages.", "Units": "count"},
}


def ci_description(n_boot, bound):
    return {
        "Description": f"{bound} bound of the 95% percentile bootstrap confidence interval "
        f"({n_boot} paired resamples of subjects/sessions, seed 0; scipy.stats.bootstrap), "
        "in the units of the metric."
    }


def tsv_text(table, text=None):
    """TSV of ``table``; the columns of ``text`` (the participants' values as written) are
    copied from it unchanged, the others formatted here (``%.6g``, ``true``/``false``)."""
    out = table.copy()
    for column in out.columns:
        if text is not None and column in text.columns:
            out[column] = text[column].to_numpy()
        elif out[column].dtype == bool:
            out[column] = np.where(out[column], "true", "false")
    return out.to_csv(sep="\t", index=False, na_rep="n/a", float_format=FLOAT_FORMAT,
                      lineterminator="\n")


def json_text(obj):
    """JSON text: 2-space indent, keys in insertion order, a final newline; raises
    ValueError on NaN/inf (pass the object through :func:`json_safe` first)."""
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


def json_safe(value):
    """NaN -> None, numpy scalars -> Python, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
