"""The ``group`` analysis level: :func:`run_group`.

After the participant level has written one ``*_brainage.tsv`` per subject/session,
:func:`run_group` gathers them into a cohort table, measures accuracy against
chronological age, corrects the age bias of the brain-age gap (Smith et al., 2019;
de Lange & Cole, 2020), flags outliers, draws figures and writes a self-contained HTML
report (:mod:`bids_infantage.reports.group`).
:func:`bids_infantage.workflows.group.init_group_wf` wraps it in a nipype workflow for
consistency with the participant level.

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

from pathlib import Path

import numpy as np

from bids_infantage.group import longitudinal
from bids_infantage.group.bias_correction import (
    apply_bias_correction,
    fit_bias_correction,
    load_bias_correction,
    save_bias_correction,
)
from bids_infantage.group.cohort import collect_cohort, refuse_mixed_models
from bids_infantage.group.metrics import metrics_table, regression_metrics
from bids_infantage.group.outliers import flag_outliers
from bids_infantage.group.outputs import (
    BIAS_JSON,
    COLUMN_DESCRIPTIONS,
    FIGURES,
    GROUP_JSON,
    GROUP_TSV,
    METRICS_DESCRIPTIONS,
    METRICS_JSON,
    METRICS_TSV,
    MIXED_JSON,
    REPORT_HTML,
    TRAJECTORIES_JSON,
    TRAJECTORIES_TSV,
    ci_description,
    json_safe,
    json_text,
    tsv_text,
)
from bids_infantage.reports.group import render_group_report
from bids_infantage.utils.io import atomic_write_text


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
        :func:`~bids_infantage.group.metrics.regression_metrics` or ``None``),
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
    table, text = collect_cohort(output_dir, with_text=True)
    refuse_mixed_models(table, output_dir)
    params = load_bias_correction(bias_correction_file) if bias_correction_file else None
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
        params = fit_bias_correction(
            chron, pred, fitted_on=f"{n_with_age} subject/session(s) in {output_dir}"
        )
    elif n_with_age:
        notes.append(
            "Too few distinct chronological ages to fit the age-bias correction (needs 3): "
            "the corrected gap is n/a; pass a saved correction with --bias-correction."
        )

    if params is not None and n_with_age_all:
        table["brain_age_gap_corrected_months"] = apply_bias_correction(chron_all, pred, params)
    else:
        table["brain_age_gap_corrected_months"] = np.nan
    outlier, threshold = flag_outliers(
        table["brain_age_gap_corrected_months"], table["qc_out_of_range"]
    )
    table["outlier"] = outlier

    written = {}
    written["group_tsv"] = atomic_write_text(output_dir / GROUP_TSV, tsv_text(table, text))
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
    written["group_json"] = atomic_write_text(output_dir / GROUP_JSON, json_text(sidecar))

    metrics = None
    figures = {}
    if n_with_age:
        metrics = regression_metrics(chron, pred, n_boot=n_boot, seed=0)
        written["metrics_tsv"] = atomic_write_text(
            output_dir / METRICS_TSV, tsv_text(metrics_table(metrics))
        )
        metrics_sidecar = dict(METRICS_DESCRIPTIONS)
        metrics_sidecar["ci_low"] = ci_description(n_boot, "Lower")
        metrics_sidecar["ci_high"] = ci_description(n_boot, "Upper")
        written["metrics_json"] = atomic_write_text(
            output_dir / METRICS_JSON, json_text(metrics_sidecar)
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
        written["trajectories_tsv"] = atomic_write_text(
            output_dir / TRAJECTORIES_TSV, tsv_text(trajectories.assign(
                gap_widening=[None if v is None else ("true" if v else "false")
                              for v in trajectories["gap_widening"]])))
        written["trajectories_json"] = atomic_write_text(
            output_dir / TRAJECTORIES_JSON, json_text({
                **longitudinal.TRAJECTORY_COLUMNS,
                "ReferenceTrajectory": {
                    "Description": "The cohort's reference trajectory of the deviation columns: "
                                   "predicted = intercept + rate x chronological age (months).",
                    "rate": trajectories.attrs.get("reference_rate"),
                    "intercept_months": trajectories.attrs.get("reference_intercept_months")}}))
        if mixed is not None:
            written["mixed_model"] = atomic_write_text(
                output_dir / MIXED_JSON, json_text(json_safe(mixed)))
        from bids_infantage.group import plots

        figures["growth_chart"] = plots.plot_growth_chart(
            sessions, trajectories, output_dir / FIGURES["growth_chart"], mixed=mixed)
        n_single = int(table["participant_id"].nunique() - sessions["participant_id"].nunique())
        if n_single:
            notes.append(f"{n_single} participant(s) with fewer than two sessions with ages are "
                         "not in the trajectories.")

    if params is not None:
        written["bias_correction"] = save_bias_correction(
            json_safe(params), output_dir / BIAS_JSON
        )

    written["report"] = atomic_write_text(
        output_dir / REPORT_HTML,
        render_group_report(
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
