"""The group report, ``<output_dir>/group.html``.

:func:`render_group_report` turns the results of
:func:`bids_infantage.group.analysis.run_group` into a plain context (numbers formatted as
text, links resolved, figures base64-encoded) and renders ``data/templates/group.html.j2``
with it (:func:`bids_infantage.reports.templating.render`). The templates hold the markup
and the report's fixed text (methods, captions); every value is escaped there.

The report is self-contained: the SVG figures are embedded as ``data:`` URIs and the style
sheet is inline.
"""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from bids_infantage.group import longitudinal
from bids_infantage.group.outliers import OUTLIER_SD
from bids_infantage.group.references import REFERENCES
from bids_infantage.reports.templating import render

#: Template of the group report, in ``bids_infantage/data/templates``.
TEMPLATE = "group.html.j2"


def _fmt(value, digits=3):
    """``value`` with ``digits`` decimals; integers as they are; ``n/a`` for None/NaN/inf."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def _session_link(output_dir, participant, session) -> dict:
    """A session's label, and the relative link to its participant-level report when that
    report exists (``href`` is None otherwise)."""
    name = participant + (f"_{session}" if isinstance(session, str) else "") + ".html"
    label = session if isinstance(session, str) else participant
    return {"label": label, "href": name if (Path(output_dir) / name).is_file() else None}


def _summary(output_dir, table) -> dict:
    from bids_infantage import __version__

    with_age = np.isfinite(table["chronological_age_months"].to_numpy(dtype=float))
    models = sorted(
        {f"{n} ({s[:12]})" for n, s in zip(table["model_name"].fillna("n/a"),
                                           table["model_sha256"].fillna("n/a"))}
    )
    return {
        "output_dir": str(output_dir),
        "n_rows": len(table),
        "n_subjects": int(table["participant_id"].nunique()),
        "n_with_age": int(with_age.sum()),
        "n_out_of_range": int(table["qc_out_of_range"].sum()),
        "n_outliers": int(table["outlier"].sum()),
        "models": ", ".join(models),
        # --modality auto gives sessions with fewer images, or a T1w and T2w that fail the
        # same-brain check, another configuration: their ages come from other networks
        "configurations": ", ".join(f"{c} ({n})" for c, n in
                                    table["model_configuration"].fillna("n/a").value_counts().items()),
        "version": __version__,
    }


def _accuracy_rows(metrics):
    """Rows of the accuracy table (``None`` without metrics): metric, units, value, CI, n,
    note, as text."""
    if metrics is None:
        return None
    return [
        [name, entry["units"], _fmt(entry["value"]), _fmt(entry["ci_low"]),
         _fmt(entry["ci_high"]), str(entry["n"]), entry["note"]]
        for name, entry in metrics.items()
    ]


def _bias_correction(params, reused):
    """The age-bias correction paragraph's values (``None`` when not applied)."""
    if params is None:
        return None
    return {
        "alpha": _fmt(params["alpha"]),
        "beta": _fmt(params["beta"]),
        "reused_from": str(params.get("reused_from")) if reused else None,
        "fitted_on": str(params.get("fitted_on", "n/a")),
        "n": str(params.get("n", "n/a")),
    }


def _trajectory_rows(output_dir, trajectories):
    """One dict per infant of ``group_trajectories.tsv``: ``participant_id``, ``sessions``
    (label and link, see :func:`_session_link`) and ``cells`` (the other columns, as text)."""
    rows = []
    for _, row in trajectories.iterrows():
        widening = row["gap_widening"]
        rows.append({
            "participant_id": row["participant_id"],
            "sessions": [_session_link(output_dir, row["participant_id"], s)
                         for s in str(row["sessions"]).split(",")],
            "cells": [
                str(row["n_sessions_used"]),
                _fmt(row["maturation_rate"], 2), _fmt(row["maturation_rate_se"], 2),
                _fmt(row["gap_change_per_month"], 2), _fmt(row["gap_change_months"], 2),
                _fmt(row["deviation_last_months"] - row["deviation_first_months"], 2),
                _fmt(row["reliable_change_index"], 2),
            ],
            "widening": ("n/a" if widening is None or widening != widening
                         else ("yes" if widening else "no")),
        })
    return rows


def _mixed_model(mixed):
    """The mixed model's description, fixed-effect rows and variance components, as text
    (``None`` when no model was fitted)."""
    if mixed is None:
        return None
    fe, vc = mixed["fixed_effects"], mixed["variance_components"]
    return {
        "method": mixed["method"],
        "n_subjects": str(mixed["n_subjects"]),
        "n_sessions": str(mixed["n_sessions"]),
        "converged": "yes" if mixed["converged"] else "no",
        "formula": mixed["formula"],
        "fixed_effects": [[v["label"], _fmt(v["estimate"]), _fmt(v["se"]), _fmt(v["ci_low"]),
                           _fmt(v["ci_high"]), _fmt(v["p"])] for v in fe.values()],
        "variance": {key: _fmt(vc[key]) for key in (
            "intercept_var", "slope_var", "intercept_slope_cov", "residual_var")},
        "warnings": list(mixed.get("warnings", [])),
    }


def _outlier_rows(table, threshold):
    """Rows of the outlier table: participant, session, predicted and chronological age,
    corrected gap (months) and the reasons, as text."""
    rows = []
    for _, row in table[table["outlier"]].iterrows():
        reasons = []
        gap = row["brain_age_gap_corrected_months"]
        if np.isfinite(gap) and np.isfinite(threshold) and abs(gap) > threshold:
            reasons.append(f"|corrected gap| > {threshold:.2f} months")
        if row["qc_out_of_range"]:
            reasons.append(f"out of range ({row['qc_flags']})")
        rows.append([
            row["participant_id"],
            row["session_id"] if isinstance(row["session_id"], str) else "n/a",
            _fmt(row["predicted_age_months"], 1),
            _fmt(row["chronological_age_months"], 1),
            _fmt(gap, 2),
            "; ".join(reasons),
        ])
    return rows


def render_group_report(*, output_dir, table, metrics, params, reused, threshold, notes,
                        figures, n_boot, trajectories=None, mixed=None) -> str:
    """HTML text of the group report.

    Parameters
    ----------
    output_dir : pathlib.Path
        The output folder (shown in the summary; session links are relative to it and only
        made to the participant-level reports that exist there).
    table : pandas.DataFrame
        The group table, with the ``brain_age_gap_corrected_months`` and ``outlier``
        columns.
    metrics : dict or None
        From :func:`bids_infantage.group.metrics.regression_metrics`.
    params : dict or None
        Bias-correction parameters (``alpha``, ``beta``; ``fitted_on``, ``n``,
        ``reused_from`` shown when present).
    reused : bool
        Whether ``params`` were fitted on another cohort.
    threshold : float
        Outlier threshold on the corrected gap (months; NaN when undefined).
    notes : list of str
        Notes shown under the summary.
    figures : dict
        Figure name (a key of :data:`bids_infantage.group.outputs.FIGURES`) -> SVG path; the
        SVGs are embedded in that order.
    n_boot : int
        Bootstrap resamples of the metric CIs (methods text).
    trajectories : pandas.DataFrame, optional
        From :func:`bids_infantage.group.longitudinal.subject_trajectories`.
    mixed : dict, optional
        From :func:`bids_infantage.group.longitudinal.fit_mixed_model`.

    Returns
    -------
    str
        The whole HTML document, ending with a newline.
    """
    has_trajectories = trajectories is not None and not trajectories.empty
    return render(
        TEMPLATE,
        summary=_summary(output_dir, table),
        notes=list(notes),
        accuracy=_accuracy_rows(metrics),
        bias_correction=_bias_correction(params, reused),
        trajectories=_trajectory_rows(output_dir, trajectories) if has_trajectories else None,
        mixed=_mixed_model(mixed),
        mixed_min_subjects=longitudinal.MIXED_MIN_SUBJECTS,
        center_months=f"{longitudinal.CENTER_MONTHS:g}",
        figures=[{"key": key, "data": base64.b64encode(Path(path).read_bytes()).decode("ascii")}
                 for key, path in figures.items()],
        outliers=_outlier_rows(table, threshold),
        n_boot=n_boot,
        correction=("none" if params is None else "reused" if reused else "fitted"),
        outlier_sd=f"{OUTLIER_SD:g}",
        references=list(REFERENCES.values()),
    )
