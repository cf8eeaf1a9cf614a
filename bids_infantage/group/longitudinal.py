"""Longitudinal group level: per-infant brain-age trajectories across sessions.

* :func:`subject_trajectories`: per subject with at least two sessions with both ages, the
  OLS slope of brain age on chronological age (the maturation rate; 1 = on track) with its
  standard error, the change of the (bias-corrected) brain-age gap per month, and a
  reliable-change test (Jacobson & Truax, J Consult Clin Psychol 1991) of the infant's move
  away from the cohort's reference trajectory, whose slope is the median of the infants'
  maturation rates (so that a minority of delayed infants does not pull it, as it pulls a
  least-squares bias fit and would flag every on-track infant).
* :func:`fit_mixed_model`: a linear mixed-effects model (statsmodels ``MixedLM``, REML):
  ``predicted_age ~ 1 + (chronological_age - 12)`` with a random intercept and slope per
  subject (Laird & Ware, Biometrics 1982); fixed effects, variance components and each
  infant's deviation (BLUPs).

Missing ages and single-session subjects are left out (counted in the returned notes), never
an error.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

#: Chronological age (months) at which the mixed model's intercept is read.
CENTER_MONTHS = 12.0
#: |reliable change index| above which a gap change is beyond measurement noise (two-sided 5%).
RCI_THRESHOLD = 1.96
#: Fewest subjects with two or more sessions for the mixed model.
MIXED_MIN_SUBJECTS = 3

TRAJECTORY_COLUMNS: dict[str, dict] = {
    "participant_id": {"Description": "Participant identifier (sub-<label>)."},
    "n_sessions": {"Description": "Sessions of the subject in the cohort table.", "Units": "count"},
    "n_sessions_used": {"Description": "Sessions with both a predicted and a chronological age, "
                                       "not flagged out of range (unless --include-flagged).",
                        "Units": "count"},
    "sessions": {"Description": "Session labels used, in order of chronological age, "
                                "comma-separated."},
    "first_age_months": {"Description": "Chronological age at the first session used.", "Units": "months"},
    "last_age_months": {"Description": "Chronological age at the last session used.", "Units": "months"},
    "maturation_rate": {"Description": "OLS slope of predicted on chronological age over the "
                                       "subject's sessions: months of brain age per month (1 = "
                                       "on track, < 1 falling behind).", "Units": "months/month"},
    "maturation_rate_se": {"Description": "Standard error of maturation_rate (residual SD with "
                                          "n - 2 degrees of freedom); n/a with two sessions.",
                           "Units": "months/month"},
    "gap_change_per_month": {"Description": "Change of the brain-age gap per month of age: "
                                            "maturation_rate - beta of the cohort's bias correction "
                                            "(corrected gap), or maturation_rate - 1 without one.",
                             "Units": "months/month"},
    "gap_first_months": {"Description": "Brain-age gap (corrected when available) at the first "
                                        "session used.", "Units": "months"},
    "gap_last_months": {"Description": "Brain-age gap at the last session used.", "Units": "months"},
    "gap_change_months": {"Description": "gap_last_months - gap_first_months.", "Units": "months"},
    "deviation_first_months": {
        "Description": "Predicted age minus the cohort's reference trajectory at the first "
                       "session used. The reference trajectory has the median of the infants' "
                       "maturation rates as slope (1 with fewer than 3 infants, or the bias "
                       "correction's beta when there is one) and the median of their offsets as "
                       "intercept.", "Units": "months"},
    "deviation_last_months": {"Description": "The same at the last session used.", "Units": "months"},
    "reliable_change_index": {
        "Description": "(deviation_last_months - deviation_first_months) / (sqrt(2) x noise SD), "
                       "the noise SD being the mixed model's residual SD (or the cohort SD of the "
                       "gaps without a mixed model); Jacobson & Truax (1991).", "Units": "z"},
    "gap_widening": {"Description": f"true when |reliable_change_index| > {RCI_THRESHOLD} and "
                                    "|deviation_last_months| > |deviation_first_months|: the infant "
                                    "moves away from the cohort's reference trajectory beyond "
                                    "measurement noise (two-sided 5%).",
                     "Levels": {"true": "gap widens", "false": "no reliable widening"}},
    "mixed_intercept_deviation_months": {
        "Description": "The infant's random intercept (BLUP): brain age at "
                       f"{CENTER_MONTHS:g} months above the cohort's fixed effect.", "Units": "months"},
    "mixed_slope_deviation": {
        "Description": "The infant's random slope (BLUP): maturation rate above the cohort's.",
        "Units": "months/month"},
}


def _gap(table: pd.DataFrame) -> np.ndarray:
    corrected = table["brain_age_gap_corrected_months"].to_numpy(dtype=float)
    raw = (table["predicted_age_months"].to_numpy(dtype=float)
           - table["chronological_age_months"].to_numpy(dtype=float))
    return np.where(np.isfinite(corrected), corrected, raw)


def longitudinal_sessions(table: pd.DataFrame, *, include_flagged: bool = False) -> pd.DataFrame:
    """Sessions usable for trajectories: both ages finite (and not flagged unless asked), of
    subjects with at least two such sessions; sorted by subject and age.

    Parameters
    ----------
    table : pandas.DataFrame
        The cohort table (``group_brainage.tsv`` columns).
    """
    chron = table["chronological_age_months"].to_numpy(dtype=float)
    pred = table["predicted_age_months"].to_numpy(dtype=float)
    ok = np.isfinite(chron) & np.isfinite(pred)
    if not include_flagged:
        ok &= ~table["qc_out_of_range"].to_numpy(dtype=bool)
    used = table[ok].copy()
    counts = used.groupby("participant_id")["participant_id"].transform("size")
    used = used[counts >= 2]
    return used.sort_values(["participant_id", "chronological_age_months"], kind="stable")


def fit_mixed_model(sessions: pd.DataFrame) -> dict | None:
    """Linear mixed-effects model of brain age on chronological age (random intercept and slope).

    Parameters
    ----------
    sessions : pandas.DataFrame
        From :func:`longitudinal_sessions` (columns participant_id, chronological_age_months,
        predicted_age_months).

    Returns
    -------
    dict or None
        ``formula``, ``n_subjects``, ``n_sessions``, ``center_months``, ``fixed_effects``
        ({name: {estimate, se, ci_low, ci_high, p}}), ``variance_components`` (intercept and
        slope variances and their covariance, residual variance; months^2), ``converged``,
        ``method`` and ``random_effects`` ({participant_id: (intercept, slope)}); ``None``
        with fewer than :data:`MIXED_MIN_SUBJECTS` subjects.
    """
    import statsmodels.formula.api as smf

    n_subjects = sessions["participant_id"].nunique()
    if n_subjects < MIXED_MIN_SUBJECTS:
        return None
    data = pd.DataFrame({
        "brain_age": sessions["predicted_age_months"].to_numpy(dtype=float),
        "age_c": sessions["chronological_age_months"].to_numpy(dtype=float) - CENTER_MONTHS,
        "subject": sessions["participant_id"].to_numpy(),
    })
    model = smf.mixedlm("brain_age ~ age_c", data, groups=data["subject"], re_formula="~age_c")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=True, method=["lbfgs", "powell"])
    messages = sorted({str(w.message).splitlines()[0] for w in caught})
    names = {"Intercept": f"intercept (brain age at {CENTER_MONTHS:g} months)",
             "age_c": "slope (months of brain age per month)"}
    ci = result.conf_int()
    fixed = {}
    for key, label in names.items():
        fixed[key] = {"label": label, "estimate": float(result.fe_params[key]),
                      "se": float(result.bse_fe[key]), "ci_low": float(ci.loc[key, 0]),
                      "ci_high": float(ci.loc[key, 1]), "p": float(result.pvalues[key])}
    cov = np.asarray(result.cov_re, dtype=float)
    random = {str(k): (float(v.iloc[0]), float(v.iloc[1])) for k, v in result.random_effects.items()}
    return {
        "formula": "predicted_age_months ~ 1 + (chronological_age_months - "
                   f"{CENTER_MONTHS:g}) + (1 + chronological_age_months | participant_id)",
        "method": "REML (statsmodels MixedLM)",
        "n_subjects": int(n_subjects), "n_sessions": int(len(data)),
        "center_months": CENTER_MONTHS,
        "fixed_effects": fixed,
        "variance_components": {"intercept_var": float(cov[0, 0]), "slope_var": float(cov[1, 1]),
                                "intercept_slope_cov": float(cov[0, 1]),
                                "residual_var": float(result.scale)},
        "converged": bool(result.converged),
        "warnings": messages,
        "random_effects": random,
    }


def population_band(mixed: dict, ages, z: float = 1.96):
    """Mean and (low, high) of the cohort's brain age at ``ages`` (months) under the mixed
    model: fixed effects +/- z x sqrt(random-effect variance at that age + residual variance)."""
    ages = np.asarray(ages, dtype=float)
    fe, vc = mixed["fixed_effects"], mixed["variance_components"]
    x = ages - mixed["center_months"]
    mean = fe["Intercept"]["estimate"] + fe["age_c"]["estimate"] * x
    var = (vc["intercept_var"] + 2 * x * vc["intercept_slope_cov"] + x**2 * vc["slope_var"]
           + vc["residual_var"])
    sd = np.sqrt(np.maximum(var, 0))
    return mean, mean - z * sd, mean + z * sd


def subject_trajectories(table: pd.DataFrame, *, bias_beta: float | None = None,
                         mixed: dict | None = None, include_flagged: bool = False) -> pd.DataFrame:
    """One row per subject with two or more usable sessions (:data:`TRAJECTORY_COLUMNS`).

    Parameters
    ----------
    table : pandas.DataFrame
        The cohort table with ``brain_age_gap_corrected_months``.
    bias_beta : float, optional
        Slope of the cohort's age-bias correction (gap changes are of the corrected gap).
    mixed : dict, optional
        From :func:`fit_mixed_model` (random effects and the residual SD for the RCI).
    include_flagged : bool
        Keep sessions flagged out of range.

    Returns
    -------
    pandas.DataFrame
        Empty (with the columns) when no subject has two usable sessions.
    """
    sessions = longitudinal_sessions(table, include_flagged=include_flagged)
    gaps_all = _gap(sessions) if len(sessions) else np.array([])
    if mixed is not None and mixed["variance_components"]["residual_var"] > 0:
        noise_sd = math.sqrt(mixed["variance_components"]["residual_var"])
    else:
        finite = gaps_all[np.isfinite(gaps_all)]
        noise_sd = float(np.std(finite, ddof=1)) if finite.size > 2 else float("nan")
    n_all = table.groupby("participant_id")["participant_id"].size()
    fits = {}
    for subject, group in sessions.groupby("participant_id", sort=True):
        x = group["chronological_age_months"].to_numpy(dtype=float)
        y = group["predicted_age_months"].to_numpy(dtype=float)
        fits[subject] = (group, x, y, _ols(x, y))
    rates = np.array([f[3][0] for f in fits.values()], dtype=float)
    rates = rates[np.isfinite(rates)]
    expected_rate = bias_beta if bias_beta is not None else 1.0  # of the (corrected) gap
    reference = float(np.median(rates)) if rates.size >= MIXED_MIN_SUBJECTS else expected_rate
    offsets = [float(np.mean(y - reference * x)) for _, x, y, _ in fits.values()]
    reference_intercept = float(np.median(offsets)) if offsets else 0.0
    rows = []
    for subject, (group, x, y, (slope, se)) in fits.items():
        gap = _gap(group)
        n = len(x)
        deviation = y - (reference_intercept + reference * x)
        row = {"participant_id": subject, "n_sessions": int(n_all[subject]), "n_sessions_used": n,
               "sessions": ",".join(s if isinstance(s, str) else "n/a" for s in group["session_id"]),
               "first_age_months": float(x[0]), "last_age_months": float(x[-1])}
        change = float(deviation[-1] - deviation[0])
        rci = change / (math.sqrt(2) * noise_sd) if noise_sd and np.isfinite(noise_sd) else float("nan")
        row.update(
            maturation_rate=float(slope), maturation_rate_se=float(se),
            gap_change_per_month=float(slope - expected_rate),
            gap_first_months=float(gap[0]), gap_last_months=float(gap[-1]),
            gap_change_months=float(gap[-1] - gap[0]),
            deviation_first_months=float(deviation[0]), deviation_last_months=float(deviation[-1]),
            reliable_change_index=rci,
            gap_widening=(bool(abs(rci) > RCI_THRESHOLD and abs(deviation[-1]) > abs(deviation[0]))
                          if np.isfinite(rci) else None),
        )
        effects = (mixed or {}).get("random_effects", {}).get(subject)
        row["mixed_intercept_deviation_months"] = effects[0] if effects else float("nan")
        row["mixed_slope_deviation"] = effects[1] if effects else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    out.attrs["reference_rate"] = float(reference)
    out.attrs["reference_intercept_months"] = reference_intercept
    return out


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """OLS slope of y on x and its standard error (n - 2 degrees of freedom; NaN with 2 points,
    both NaN without a spread of x)."""
    if np.ptp(x) <= 0:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    n = len(x)
    if n <= 2:
        return float(slope), float("nan")
    resid = y - (intercept + slope * x)
    sxx = (x - x.mean()) @ (x - x.mean())
    return float(slope), math.sqrt(resid @ resid / (n - 2) / sxx)
