"""The ``group`` analysis level.

After the participant level has written one ``*_brainage.tsv`` per subject/session,
:func:`run_group` gathers them into a cohort table, measures accuracy against
chronological age, corrects the age bias of the brain-age gap (Smith et al., 2019;
de Lange & Cole, 2020), flags outliers, draws figures and writes a self-contained HTML
report. :func:`init_group_wf` wraps it in a nipype workflow for consistency with the
participant level.

Outputs, all at the top of the output folder (every file written atomically)::

    group_brainage.tsv / .json        cohort table + corrected gap + outlier flag, sidecar
    group_metrics.tsv / .json         MAE, RMSE, R2, Pearson r, Spearman rho with 95% CI
    group_bias-correction.json        alpha, beta (fitted here or reused)
    figures/group_predicted-vs-chronological.svg
    figures/group_bland-altman.svg
    figures/group_gap-distribution.svg
    group_trajectories.tsv / .json    per-infant trajectories (subjects with 2+ sessions)
    group_mixed-model.json            linear mixed-effects model (3+ such subjects)
    figures/group_growth-chart.svg    growth chart
    group.html                        report

The metrics, bias-correction and figure files need chronological ages; when none exists,
only the table and the report are written, and the report says why.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from bids_infantage.group import longitudinal, stats
from bids_infantage.utils.columns import BRAINAGE_COLUMNS

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
_FLOAT_FORMAT = "%.6g"

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
        f"{stats.OUTLIER_SD:g} x the sample SD (ddof=1) of the corrected gaps of this "
        "cohort, or qc_out_of_range is true.",
        "Levels": {"true": "outlier", "false": "not an outlier"},
    },
}

METRICS_DESCRIPTIONS = {
    "metric": {
        "Description": "Accuracy of predicted_age_months against chronological_age_months "
        "(uncorrected predictions; sessions with both ages).",
        "Levels": {
            name: f"{desc} [{units}]" for name, (units, desc) in stats.METRICS.items()
        },
    },
    "value": {"Description": "Point estimate, in the units of the metric (months for mae, "
              "rmse; dimensionless otherwise)."},
    "ci_low": {},
    "ci_high": {},
    "n": {"Description": "Number of subjects/sessions with both ages.", "Units": "count"},
}


def _ci_description(n_boot, bound):
    return {
        "Description": f"{bound} bound of the 95% percentile bootstrap confidence interval "
        f"({n_boot} paired resamples of subjects/sessions, seed 0; scipy.stats.bootstrap), "
        "in the units of the metric."
    }


def _refuse_mixed_models(table, output_dir) -> None:
    """Raise InputError when the sessions come from more than one model (``model_sha256``):
    their ages are not comparable, and one bias correction cannot serve them."""
    from ..utils.errors import InputError

    counts = table["model_sha256"].dropna().value_counts()
    if len(counts) > 1:
        example = {sha: table.loc[table["model_sha256"] == sha, "participant_id"].iloc[0]
                   for sha in counts.index}
        listed = ", ".join(f"{sha[:12]} ({n} session(s), e.g. {example[sha]})"
                           for sha, n in counts.items())
        raise InputError(
            f"{output_dir}: the participant outputs come from {len(counts)} models ({listed}); "
            "rerun the participant level with one model (--model) for every session, or write "
            "each model's outputs to its own folder.")


# --------------------------------------------------------------------------- writers
def _tsv_text(table, text=None):
    """TSV of ``table``; the columns of ``text`` (the participants' values as written) are
    copied from it unchanged, the others formatted here (``%.6g``, ``true``/``false``)."""
    out = table.copy()
    for column in out.columns:
        if text is not None and column in text.columns:
            out[column] = text[column].to_numpy()
        elif out[column].dtype == bool:
            out[column] = np.where(out[column], "true", "false")
    return out.to_csv(sep="\t", index=False, na_rep="n/a", float_format=_FLOAT_FORMAT,
                      lineterminator="\n")


def _json_text(obj):
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


def _json_safe(value):
    """NaN -> None, numpy scalars -> Python, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --------------------------------------------------------------------------- report
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;
 padding:.25rem .6rem;text-align:right}th{background:#f4f4f4}td.t,th.t{text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4rem .8rem;margin:.5rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto}figcaption{font-size:.9rem;color:#555}
.refs li{margin-bottom:.3rem}
"""


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


_TEXT = ' class="t"'


def _table_html(header, rows, text_columns=(), escape=True):
    head = "".join(
        f'<th{_TEXT if i in text_columns else ""}>{html.escape(h)}</th>'
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td{_TEXT if i in text_columns else ""}>{html.escape(str(c)) if escape else c}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _longitudinal_methods_text() -> str:
    return (
        "<p>For infants with two or more sessions with ages, the maturation rate is the "
        "least-squares slope of predicted on chronological age (1 = on track). Brain age was "
        "modelled by a linear mixed-effects model with a random intercept and slope per infant "
        f"(Laird &amp; Ware, 1982; statsmodels MixedLM, REML; age centred at "
        f"{longitudinal.CENTER_MONTHS:g} months), fitted from {longitudinal.MIXED_MIN_SUBJECTS} "
        "such infants. A gap is reported as widening when the change of the infant's deviation "
        "from the cohort's reference trajectory (slope: the median maturation rate) between "
        "the first and the last session exceeds 1.96 times &radic;2 times the model's residual "
        "SD (reliable change index; Jacobson &amp; Truax, 1991) and the deviation grows. The "
        "flag assumes most of the cohort is on track; read it with the growth chart.</p>"
    )


def _methods_text(*, n_boot, params, reused):
    correction = (
        "The age bias of the brain-age gap was removed with a linear correction "
        "(Smith et al., 2019; de Lange &amp; Cole, 2020): "
        "<i>predicted = &alpha; + &beta; &times; chronological</i> was fitted by ordinary "
        "least squares (statsmodels), the corrected predicted age is "
        "<i>predicted + (chronological &minus; (&alpha; + &beta; &times; chronological))</i> "
        "and the corrected gap is <i>corrected &minus; chronological = predicted &minus; "
        "(&alpha; + &beta; &times; chronological)</i>. "
    )
    if params is None:
        correction += "No correction could be applied to this cohort (see the notes). "
    elif reused:
        correction += (
            "The parameters were fitted on another cohort and reused here unchanged, "
            "as recommended to avoid fitting and testing on the same data "
            "(de Lange &amp; Cole, 2020). "
        )
    else:
        correction += (
            "The parameters were fitted on this cohort; the corrected gap is then "
            "uncorrelated with chronological age by construction, so accuracy is reported "
            "on the uncorrected predictions (de Lange &amp; Cole, 2020). To correct a new "
            "cohort without refitting, pass this run's group_bias-correction.json. "
        )
    return (
        "<p>Brain age was predicted per subject/session by bids-infantage; the brain-age "
        "gap is predicted minus chronological age (months). Accuracy of the uncorrected "
        "predictions was measured by the mean absolute error (mae), root mean squared error "
        "(rmse), coefficient of determination (r2 = 1 &minus; SS<sub>res</sub>/"
        "SS<sub>tot</sub>), Pearson correlation (pearson_r) and Spearman rank correlation "
        "(spearman_rho), each with a 95% percentile bootstrap confidence interval from "
        f"{n_boot} paired resamples of subjects/sessions (scipy.stats.bootstrap, seed 0).</p>"
        f"<p>{correction}</p>"
        "<p>A subject/session is reported as an outlier when the absolute corrected gap "
        f"exceeds {stats.OUTLIER_SD:g} times the standard deviation of the corrected gaps "
        "of this cohort, or when the participant-level quality control flagged it outside "
        "the model's range. Agreement is shown as a Bland&ndash;Altman plot (bias and "
        "bias &plusmn; 1.96 SD limits of agreement; Bland &amp; Altman, 1986).</p>"
    )


def _session_link(output_dir, participant, session):
    """Relative link to a session's participant-level report, or the label alone."""
    name = participant + (f"_{session}" if isinstance(session, str) else "") + ".html"
    label = html.escape(session if isinstance(session, str) else participant)
    if (Path(output_dir) / name).is_file():
        return f'<a href="{html.escape(name)}">{label}</a>'
    return label


def _trajectories_html(output_dir, trajectories, mixed):
    parts = ["<h2>Trajectories</h2>"]
    if trajectories is None or trajectories.empty:
        parts.append("<p>No subject has two or more sessions with both ages.</p>")
        return parts
    rows = []
    for _, row in trajectories.iterrows():
        links = ", ".join(_session_link(output_dir, row["participant_id"], s)
                          for s in str(row["sessions"]).split(","))
        widening = row["gap_widening"]
        rows.append([
            html.escape(row["participant_id"]), links, row["n_sessions_used"],
            _fmt(row["maturation_rate"], 2), _fmt(row["maturation_rate_se"], 2),
            _fmt(row["gap_change_per_month"], 2), _fmt(row["gap_change_months"], 2),
            _fmt(row["deviation_last_months"] - row["deviation_first_months"], 2),
            _fmt(row["reliable_change_index"], 2),
            "n/a" if widening is None or widening != widening else ("yes" if widening else "no"),
        ])
    parts.append(_table_html(
        ["participant_id", "sessions", "n", "maturation rate", "SE", "gap change / month",
         "gap change (mo)", "change vs cohort (mo)", "RCI", "gap widening"], rows, (0, 1, 9),
        escape=False))
    if mixed is None:
        parts.append(f"<p>Mixed model not fitted: it needs {longitudinal.MIXED_MIN_SUBJECTS} or "
                     "more subjects with two or more sessions.</p>")
    else:
        fe, vc = mixed["fixed_effects"], mixed["variance_components"]
        rows = [[v["label"], _fmt(v["estimate"]), _fmt(v["se"]), _fmt(v["ci_low"]),
                 _fmt(v["ci_high"]), _fmt(v["p"])] for v in fe.values()]
        parts.append(f"<p>Linear mixed-effects model ({html.escape(mixed['method'])}; "
                     f"{mixed['n_subjects']} infants, {mixed['n_sessions']} sessions; "
                     f"converged: {'yes' if mixed['converged'] else 'no'}): "
                     f"<code>{html.escape(mixed['formula'])}</code>.</p>")
        parts.append(_table_html(["fixed effect", "estimate", "SE", "ci_low", "ci_high", "p"],
                                 rows, (0,)))
        parts.append(
            f"<p>Variance components (months²): intercept {_fmt(vc['intercept_var'])}, slope "
            f"{_fmt(vc['slope_var'])}, covariance {_fmt(vc['intercept_slope_cov'])}, residual "
            f"{_fmt(vc['residual_var'])}.</p>")
        for warning in mixed.get("warnings", []):
            parts.append(f'<p class="note">statsmodels: {html.escape(warning)}</p>')
    return parts


def _report_html(*, output_dir, table, metrics, params, reused, threshold, notes,
                 figures, n_boot, trajectories=None, mixed=None):
    from bids_infantage import __version__

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>bids-infantage group report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>bids-infantage: group report</h1>",
    ]
    n_subjects = table["participant_id"].nunique()
    with_age = np.isfinite(table["chronological_age_months"].to_numpy(dtype=float))
    models = sorted(
        {f"{n} ({s[:12]})" for n, s in zip(table["model_name"].fillna("n/a"),
                                           table["model_sha256"].fillna("n/a"))}
    )
    parts.append(
        "<h2>Summary</h2><ul>"
        f"<li>Output folder: <code>{html.escape(str(output_dir))}</code></li>"
        f"<li>{len(table)} subject/session(s) from {n_subjects} participant(s); "
        f"{int(with_age.sum())} with a chronological age</li>"
        f"<li>Out of range (participant-level QC): {int(table['qc_out_of_range'].sum())}</li>"
        f"<li>Outliers: {int(table['outlier'].sum())}</li>"
        f"<li>Model(s): {html.escape(', '.join(models))}</li>"
        f"<li>bids-infantage {html.escape(__version__)}</li></ul>"
    )
    for note in notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')

    parts.append("<h2>Accuracy</h2>")
    if metrics is None:
        parts.append("<p>Not computed: no chronological age is available.</p>")
    else:
        rows = []
        for name, entry in metrics.items():
            rows.append([
                name, entry["units"], _fmt(entry["value"]), _fmt(entry["ci_low"]),
                _fmt(entry["ci_high"]), entry["n"], entry["note"],
            ])
        parts.append(_table_html(
            ["metric", "units", "value", "ci_low", "ci_high", "n", "note"], rows, (0, 1, 6)
        ))

    parts.append("<h2>Age-bias correction</h2>")
    if params is None:
        parts.append("<p>Not applied.</p>")
    else:
        source = (f"reused from <code>{html.escape(str(params.get('reused_from')))}</code>"
                  if reused else "fitted on this cohort")
        parts.append(
            f"<p>&alpha; = {_fmt(params['alpha'])} months, &beta; = {_fmt(params['beta'])} "
            f"({source}; fitting cohort: {html.escape(str(params.get('fitted_on', 'n/a')))}, "
            f"n = {html.escape(str(params.get('n', 'n/a')))}).</p>"
        )

    parts.extend(_trajectories_html(output_dir, trajectories, mixed))

    if figures:
        parts.append("<h2>Figures</h2>")
        captions = {
            "predicted_vs_chronological": "Predicted against chronological age; bars: "
            "predictive intervals; dashed: identity. Outliers labelled.",
            "bland_altman": "Bland–Altman: difference (predicted − chronological) against "
            "the mean; bias and ±1.96 SD limits of agreement.",
            "gap_distribution": "Distribution of the brain-age gap; dashed: outlier threshold.",
            "growth_chart": "Growth chart: brain age against chronological age, one line per "
            "infant (red: gap widening); grey: the cohort's mixed-model fixed effect and 95% "
            "population band; dashed: identity.",
        }
        for key, path in figures.items():
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(key)}" src="data:image/svg+xml;base64,{data}">'
                f"<figcaption>{html.escape(captions[key])}</figcaption></figure>"
            )

    parts.append("<h2>Outliers</h2>")
    outliers = table[table["outlier"]]
    if outliers.empty:
        parts.append("<p>None.</p>")
    else:
        rows = []
        for _, row in outliers.iterrows():
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
        parts.append(_table_html(
            ["participant_id", "session_id", "predicted (mo)", "chronological (mo)",
             "corrected gap (mo)", "reason"],
            rows,
            (0, 1, 5),
        ))

    parts.append("<h2>Methods</h2>")
    parts.append(_methods_text(n_boot=n_boot, params=params, reused=reused))
    if trajectories is not None and not trajectories.empty:
        parts.append(_longitudinal_methods_text())
    parts.append('<h2>References</h2><ol class="refs">')
    parts.extend(f"<li>{html.escape(ref)}</li>" for ref in stats.REFERENCES.values())
    parts.append("</ol></body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- entry point
def run_group(output_dir, *, bias_correction_file=None, n_boot: int = 2000,
              include_flagged: bool = False) -> dict:
    """Run the group level on a participant-level output folder.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Output folder of the participant level; the group files are written at its top.
    bias_correction_file : str or os.PathLike, optional
        A ``group_bias-correction.json`` from an earlier group run. Its ``alpha``/``beta``
        are applied unchanged instead of fitting them on this cohort.
    n_boot : int
        Bootstrap resamples for the 95% CIs of the metrics.
    include_flagged : bool
        Keep the sessions flagged ``qc_out_of_range`` in the bias-correction fit and the
        metrics (default: left out, and the report says how many). Their corrected gap is
        computed either way.

    Returns
    -------
    dict
        ``group_tsv``, ``group_json``, ``report`` (paths), ``metrics_tsv``,
        ``metrics_json``, ``bias_correction`` (paths or ``None`` when not written),
        ``figures`` (dict name -> path), ``metrics`` (from
        :func:`~bids_infantage.group.stats.regression_metrics` or ``None``),
        ``bias_correction_params`` (dict or ``None``), ``outlier_threshold_months``
        (float, NaN if undefined), ``n_sessions``, ``n_with_age``, ``n_used`` (with an age
        and used in the fit and the metrics), ``n_outliers`` (int) and ``notes`` (list of str).

    Raises
    ------
    bids_infantage.utils.errors.InputError
        If the folder holds no ``*_brainage.tsv``, its sessions come from more than one model
        (``model_sha256``), or ``bias_correction_file`` is unusable.

    Notes
    -----
    Group files of an earlier run that this run does not produce (e.g. metrics when the
    chronological ages have since been removed) are deleted, so the folder never mixes
    two runs.
    """
    output_dir = Path(output_dir).absolute()
    table, text = stats.collect_cohort(output_dir, with_text=True)
    _refuse_mixed_models(table, output_dir)
    params = stats.load_bias_correction(bias_correction_file) if bias_correction_file else None
    reused = params is not None
    notes = []

    chron = table["chronological_age_months"].to_numpy(dtype=float)
    pred = table["predicted_age_months"].to_numpy(dtype=float)
    paired = np.isfinite(chron) & np.isfinite(pred)
    n_with_age_all = int(paired.sum())
    if n_with_age_all < len(table):
        notes.append(
            f"{len(table) - n_with_age_all} of {len(table)} subject/session(s) lack a "
            "chronological (or predicted) age: they are left out of the accuracy metrics, "
            "the bias correction and the gap figures."
        )
    flagged = table["qc_out_of_range"].to_numpy(dtype=bool) & paired
    if flagged.any() and not include_flagged:
        notes.append(
            f"{int(flagged.sum())} subject/session(s) flagged out of range at the participant "
            "level (qc_out_of_range) are left out of the bias-correction fit and the accuracy "
            "metrics (their corrected gap is still given); pass --include-flagged to keep them."
        )
        chron_all = chron
        chron = np.where(flagged, np.nan, chron)
    else:
        chron_all = chron
    paired = np.isfinite(chron) & np.isfinite(pred)
    n_with_age = int(paired.sum())

    if reused:
        params["reused_from"] = str(Path(bias_correction_file).absolute())
        params["applied_to"] = f"{n_with_age} subject/session(s) in {output_dir}"
        age_range = params.get("chronological_age_range_months")
        if age_range and n_with_age and (
            chron[paired].min() < age_range[0] or chron[paired].max() > age_range[1]
        ):
            notes.append(
                "Some chronological ages lie outside the range the reused correction was "
                f"fitted on ({age_range[0]:g}-{age_range[1]:g} months): the correction is "
                "extrapolated there."
            )
    elif n_with_age >= 3 and np.ptp(chron[paired]) > 0:
        params = stats.fit_bias_correction(
            chron, pred, fitted_on=f"{n_with_age} subject/session(s) in {output_dir}"
        )
    elif n_with_age:
        notes.append(
            "Too few distinct chronological ages to fit the age-bias correction (needs 3): "
            "the corrected gap is n/a; pass a saved correction with --bias-correction."
        )

    if params is not None and n_with_age_all:
        table["brain_age_gap_corrected_months"] = stats.apply_bias_correction(chron_all, pred, params)
    else:
        table["brain_age_gap_corrected_months"] = np.nan
    outlier, threshold = stats.flag_outliers(
        table["brain_age_gap_corrected_months"], table["qc_out_of_range"]
    )
    table["outlier"] = outlier

    written = {}
    written["group_tsv"] = stats.write_text_atomic(output_dir / GROUP_TSV, _tsv_text(table, text))
    sidecar = {
        column: COLUMN_DESCRIPTIONS.get(
            column, {"Description": "Copied from the participant-level *_brainage.tsv."}
        )
        for column in table.columns
    }
    if np.isfinite(threshold):
        sidecar["outlier"] = {
            **sidecar["outlier"],
            "Description": sidecar["outlier"]["Description"]
            + f" Threshold in this cohort: {threshold:.4g} months.",
        }
    written["group_json"] = stats.write_text_atomic(output_dir / GROUP_JSON, _json_text(sidecar))

    metrics = None
    figures = {}
    if n_with_age:
        metrics = stats.regression_metrics(chron, pred, n_boot=n_boot, seed=0)
        written["metrics_tsv"] = stats.write_text_atomic(
            output_dir / METRICS_TSV, _tsv_text(stats.metrics_table(metrics))
        )
        metrics_sidecar = dict(METRICS_DESCRIPTIONS)
        metrics_sidecar["ci_low"] = _ci_description(n_boot, "Lower")
        metrics_sidecar["ci_high"] = _ci_description(n_boot, "Upper")
        written["metrics_json"] = stats.write_text_atomic(
            output_dir / METRICS_JSON, _json_text(metrics_sidecar)
        )

        from bids_infantage.group import plots

        gap_column = (
            "brain_age_gap_corrected_months" if params is not None else "brain_age_gap_months"
        )
        if params is None:
            table_for_gap = table.assign(brain_age_gap_months=pred - chron_all)
        else:
            table_for_gap = table
        figures["predicted_vs_chronological"] = plots.plot_predicted_vs_chronological(
            table, output_dir / FIGURES["predicted_vs_chronological"]
        )
        figures["bland_altman"] = plots.plot_bland_altman(
            table, output_dir / FIGURES["bland_altman"]
        )
        figures["gap_distribution"] = plots.plot_gap_distribution(
            table_for_gap,
            output_dir / FIGURES["gap_distribution"],
            column=gap_column,
            threshold=threshold if params is not None else None,
        )
    else:
        notes.append(
            "No chronological age is available: accuracy metrics, bias correction and "
            "figures are not produced; add ages (e.g. an age column in participants.tsv or "
            "sessions.tsv) and re-run the participant level to get them."
        )

    sessions = longitudinal.longitudinal_sessions(table, include_flagged=include_flagged)
    trajectories = mixed = None
    if len(sessions):
        try:
            mixed = longitudinal.fit_mixed_model(sessions)
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"The mixed model could not be fitted ({exc}); trajectories are "
                         "given without it.")
        trajectories = longitudinal.subject_trajectories(
            table, bias_beta=params["beta"] if params is not None else None, mixed=mixed,
            include_flagged=include_flagged)
        written["trajectories_tsv"] = stats.write_text_atomic(
            output_dir / TRAJECTORIES_TSV, _tsv_text(trajectories.assign(
                gap_widening=[None if v is None else ("true" if v else "false")
                              for v in trajectories["gap_widening"]])))
        written["trajectories_json"] = stats.write_text_atomic(
            output_dir / TRAJECTORIES_JSON, _json_text({
                **longitudinal.TRAJECTORY_COLUMNS,
                "ReferenceTrajectory": {
                    "Description": "The cohort's reference trajectory of the deviation columns: "
                                   "predicted = intercept + rate x chronological age (months).",
                    "rate": trajectories.attrs.get("reference_rate"),
                    "intercept_months": trajectories.attrs.get("reference_intercept_months")}}))
        if mixed is not None:
            written["mixed_model"] = stats.write_text_atomic(
                output_dir / MIXED_JSON, _json_text(_json_safe(mixed)))
        from bids_infantage.group import plots

        figures["growth_chart"] = plots.plot_growth_chart(
            sessions, trajectories, output_dir / FIGURES["growth_chart"], mixed=mixed)
        n_single = int(table["participant_id"].nunique() - sessions["participant_id"].nunique())
        if n_single:
            notes.append(f"{n_single} participant(s) with fewer than two sessions with ages are "
                         "not in the trajectories.")

    if params is not None:
        written["bias_correction"] = stats.save_bias_correction(
            _json_safe(params), output_dir / BIAS_JSON
        )

    written["report"] = stats.write_text_atomic(
        output_dir / REPORT_HTML,
        _report_html(
            output_dir=output_dir,
            table=table,
            metrics=metrics,
            params=params,
            reused=reused,
            threshold=threshold,
            notes=notes,
            figures=figures,
            n_boot=n_boot,
            trajectories=trajectories,
            mixed=mixed,
        ),
    )

    # Remove group files of an earlier run that this run did not produce.
    produced = {Path(p) for p in written.values()} | {Path(p) for p in figures.values()}
    stale = [output_dir / name for name in (METRICS_TSV, METRICS_JSON, BIAS_JSON, TRAJECTORIES_TSV,
                                            TRAJECTORIES_JSON, MIXED_JSON)]
    stale += [output_dir / rel for rel in FIGURES.values()]
    for path in stale:
        if path not in produced and path.is_file():
            path.unlink()

    return {
        "group_tsv": written["group_tsv"],
        "group_json": written["group_json"],
        "metrics_tsv": written.get("metrics_tsv"),
        "metrics_json": written.get("metrics_json"),
        "bias_correction": written.get("bias_correction"),
        "figures": figures,
        "report": written["report"],
        "metrics": metrics,
        "bias_correction_params": params,
        "outlier_threshold_months": threshold,
        "n_sessions": int(len(table)),
        "n_with_age": n_with_age_all,
        "n_used": n_with_age,
        "n_outliers": int(table["outlier"].sum()),
        "trajectories_tsv": written.get("trajectories_tsv"),
        "mixed_model": written.get("mixed_model"),
        "trajectories": trajectories,
        "mixed_model_fit": mixed,
        "notes": notes,
    }


# --------------------------------------------------------------------------- workflow
def _run_group_node(output_dir, bias_correction_file, n_boot):
    """nipype Function wrapper of :func:`run_group` (imports inside: run in a fresh process)."""
    from bids_infantage.workflows.group import run_group

    result = run_group(
        output_dir,
        bias_correction_file=bias_correction_file or None,
        n_boot=n_boot,
    )

    def _str(path):
        return str(path) if path is not None else ""

    return (
        _str(result["group_tsv"]),
        _str(result["metrics_tsv"]),
        _str(result["bias_correction"]),
        _str(result["report"]),
    )


def init_group_wf(*, output_dir, bias_correction_file=None, n_boot=2000, name="group_wf"):
    """Build the group-level workflow.

    Workflow Graph
        .. workflow::
            :graph2use: orig
            :simple_form: yes

            from bids_infantage.workflows.group import init_group_wf
            wf = init_group_wf(output_dir=".")

    Parameters
    ----------
    output_dir : str or os.PathLike
        Output folder of the participant level (group files are written there).
    bias_correction_file : str or os.PathLike, optional
        Saved ``group_bias-correction.json`` to apply instead of fitting one.
    n_boot : int
        Bootstrap resamples for the metric CIs.
    name : str
        Workflow name.

    Outputs
    -------
    group_tsv
        ``group_brainage.tsv``.
    metrics_tsv
        ``group_metrics.tsv``, or ``''`` without chronological ages.
    bias_correction
        ``group_bias-correction.json``, or ``''`` when no correction was available.
    report
        ``group.html``.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Brain-age gaps were corrected for age bias with a linear model fitted by ordinary "
        "least squares (Smith et al., 2019; de Lange & Cole, 2020), and accuracy was "
        "summarised with bootstrap 95% confidence intervals."
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["group_tsv", "metrics_tsv", "bias_correction", "report"]),
        name="outputnode",
    )
    # The result depends on the participant TSVs, which the node hash cannot see: always rerun.
    run_group_node = pe.Node(
        niu.Function(
            function=_run_group_node,
            input_names=["output_dir", "bias_correction_file", "n_boot"],
            output_names=["group_tsv", "metrics_tsv", "bias_correction", "report"],
        ),
        name="run_group",
        overwrite=True,
    )
    run_group_node.inputs.output_dir = str(Path(output_dir).absolute())
    run_group_node.inputs.bias_correction_file = (
        str(Path(bias_correction_file).absolute()) if bias_correction_file else ""
    )
    run_group_node.inputs.n_boot = n_boot

    workflow.connect([
        (run_group_node, outputnode, [
            ("group_tsv", "group_tsv"),
            ("metrics_tsv", "metrics_tsv"),
            ("bias_correction", "bias_correction"),
            ("report", "report"),
        ]),
    ])  # fmt:skip
    return workflow
