"""Cohort statistics for the ``group`` analysis level.

Everything here is a small, pure function on arrays or on the cohort table, so the
``group`` workflow (:mod:`bids_infantage.workflows.group`) only wires them together.

* :func:`collect_cohort` gathers the participant-level ``*_brainage.tsv`` rows.
* :func:`regression_metrics` gives MAE, RMSE, R², Pearson r and Spearman ρ of predicted
  against chronological age, each with a paired percentile-bootstrap 95% CI.
* :func:`fit_bias_correction` / :func:`apply_bias_correction` implement the linear
  age-bias correction of the brain-age gap (Smith et al., 2019; de Lange & Cole, 2020);
  :func:`save_bias_correction` / :func:`load_bias_correction` store the parameters as JSON
  so that a correction fitted on one cohort can be applied to another.
* :func:`flag_outliers` applies the outlier rule.

References
----------
Smith SM, Vidaurre D, Alfaro-Almagro F, Nichols TE, Miller KL. Estimation of brain age
delta from brain imaging. NeuroImage 2019;200:528-539. doi:10.1016/j.neuroimage.2019.06.017

de Lange AMG, Cole JH. Commentary: Correction procedures in brain-age prediction.
NeuroImage: Clinical 2020;26:102229. doi:10.1016/j.nicl.2020.102229
"""
from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bids_infantage.utils.columns import BRAINAGE_COLUMNS as _COLUMNS
from bids_infantage.utils.errors import InputError
from bids_infantage.utils.io import atomic_write_text as write_text_atomic  # noqa: F401 (re-export)

#: Columns every participant-level ``*_brainage.tsv`` must have, in output order
#: (:mod:`bids_infantage.utils.columns`).
BRAINAGE_COLUMNS = tuple(_COLUMNS)
_TEXT_COLUMNS = (
    "participant_id",
    "session_id",
    "model_configuration",
    "qc_flags",
    "model_name",
    "model_sha256",
)
_BOOL_COLUMNS = ("qc_out_of_range",)
_NUMERIC_COLUMNS = tuple(
    c for c in BRAINAGE_COLUMNS if c not in _TEXT_COLUMNS and c not in _BOOL_COLUMNS
)

#: Metrics returned by :func:`regression_metrics`: name -> (units, description).
METRICS = {
    "mae": ("months", "Mean absolute error, mean(|predicted - chronological|)"),
    "rmse": ("months", "Root mean squared error, sqrt(mean((predicted - chronological)^2))"),
    "r2": (
        "dimensionless",
        "Coefficient of determination of predictions against chronological age, "
        "1 - SS_res / SS_tot with SS_res = sum((chronological - predicted)^2) and "
        "SS_tot = sum((chronological - mean(chronological))^2); can be negative",
    ),
    "pearson_r": ("dimensionless", "Pearson correlation of predicted and chronological age"),
    "spearman_rho": (
        "dimensionless",
        "Spearman rank correlation of predicted and chronological age",
    ),
}

#: Outlier threshold, in standard deviations of the corrected brain-age gap.
OUTLIER_SD = 2.0

BIAS_CORRECTION_METHOD = "linear age-bias correction (de Lange & Cole 2020)"
BIAS_CORRECTION_FORMULA = (
    "predicted = alpha + beta * chronological (OLS); "
    "corrected_predicted = predicted + (chronological - (alpha + beta * chronological)); "
    "gap_corrected = corrected_predicted - chronological "
    "= predicted - (alpha + beta * chronological)"
)
REFERENCES = {
    "smith2019": (
        "Smith SM, Vidaurre D, Alfaro-Almagro F, Nichols TE, Miller KL. Estimation of brain "
        "age delta from brain imaging. NeuroImage 2019;200:528-539. "
        "doi:10.1016/j.neuroimage.2019.06.017"
    ),
    "delange2020": (
        "de Lange AMG, Cole JH. Commentary: Correction procedures in brain-age prediction. "
        "NeuroImage: Clinical 2020;26:102229. doi:10.1016/j.nicl.2020.102229"
    ),
    "blandaltman1986": (
        "Bland JM, Altman DG. Statistical methods for assessing agreement between two "
        "methods of clinical measurement. Lancet 1986;1(8476):307-310. "
        "doi:10.1016/S0140-6736(86)90837-8"
    ),
    "lairdware1982": (
        "Laird NM, Ware JH. Random-effects models for longitudinal data. Biometrics "
        "1982;38(4):963-974. doi:10.2307/2529876"
    ),
    "jacobsontruax1991": (
        "Jacobson NS, Truax P. Clinical significance: a statistical approach to defining "
        "meaningful change in psychotherapy research. J Consult Clin Psychol 1991;59(1):12-19. "
        "doi:10.1037/0022-006X.59.1.12"
    ),
}


def _to_bool(value, *, source):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "n/a", "nan", ""):
        return False
    raise InputError(
        f"{source}: qc_out_of_range must be 'true' or 'false', found {value!r}; "
        "re-run the participant level to regenerate the file."
    )


def _brainage_files(output_dir: Path):
    """The session-level age tables: ``*_brainage.tsv`` without a ``desc-`` entity (the
    ``desc-regional`` tables are per region, not per session)."""
    patterns = ("sub-*/anat/sub-*_brainage.tsv", "sub-*/ses-*/anat/sub-*_brainage.tsv")
    return sorted({p for pattern in patterns for p in output_dir.glob(pattern)
                   if p.is_file() and "_desc-" not in p.name})


def collect_cohort(output_dir, *, with_text: bool = False):
    """Gather the participant-level brain-age tables of a derivatives folder.

    Reads every ``sub-<label>[/ses-<label>]/anat/sub-<label>[_ses-<label>]_brainage.tsv``
    under ``output_dir`` (``n/a`` means missing).

    Parameters
    ----------
    output_dir : str or os.PathLike
        Output folder of the participant-level runs.

    Returns
    -------
    pandas.DataFrame
        One row per subject/session, sorted by ``participant_id`` then ``session_id``
        (sessionless rows first), with a fresh ``RangeIndex``. The columns of
        :data:`BRAINAGE_COLUMNS` come first (ages and intervals in months, volume in mL),
        then any extra columns found. Numeric columns are ``float`` (``NaN`` where ``n/a``),
        ``qc_out_of_range`` is ``bool``, text columns keep their text (``session_id`` is
        ``NaN`` without sessions).
    text : pandas.DataFrame
        Only with ``with_text``: the same rows and columns as the files hold them (str,
        ``n/a`` kept), so that the group table copies the participants' values unchanged.

    Raises
    ------
    bids_infantage.utils.errors.InputError
        If no ``*_brainage.tsv`` exists, a file lacks required columns, or a
        subject/session appears twice.
    """
    output_dir = Path(output_dir)
    files = _brainage_files(output_dir)
    if not files:
        raise InputError(
            f"No sub-*/[ses-*/]anat/*_brainage.tsv under {output_dir}: run the participant "
            "level into this output folder first, then run the group level on it."
        )

    frames, texts = [], []
    for path in files:
        table = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            na_values=["n/a"],
            keep_default_na=False,
        )
        missing = [c for c in BRAINAGE_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(
                f"{path} lacks column(s) {', '.join(missing)}; re-run the participant level "
                "with this version of bids-infantage to regenerate it."
            )
        texts.append(table.copy())
        for column in _NUMERIC_COLUMNS:
            try:
                table[column] = pd.to_numeric(table[column]).astype(float)
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"{path}: column {column} must be numeric or n/a ({err}); "
                    "re-run the participant level to regenerate the file."
                ) from None
        for column in _BOOL_COLUMNS:
            table[column] = [_to_bool(v, source=path) for v in table[column]]
        frames.append(table)

    cohort = pd.concat(frames, ignore_index=True)
    cohort["qc_out_of_range"] = cohort["qc_out_of_range"].astype(bool)
    extra = [c for c in cohort.columns if c not in BRAINAGE_COLUMNS]
    cohort = cohort[list(BRAINAGE_COLUMNS) + extra]

    duplicated = cohort.duplicated(["participant_id", "session_id"], keep=False)
    if duplicated.any():
        first = cohort.loc[duplicated].iloc[0]
        session = first["session_id"] if isinstance(first["session_id"], str) else "no session"
        raise InputError(
            f"{first['participant_id']} ({session}) appears more than once under "
            f"{output_dir}; remove the stale *_brainage.tsv and run the group level again."
        )
    order = cohort.sort_values(
        ["participant_id", "session_id"], na_position="first", kind="stable"
    ).index
    cohort = cohort.loc[order].reset_index(drop=True)
    if not with_text:
        return cohort
    text = pd.concat(texts, ignore_index=True)[list(cohort.columns)].fillna("n/a")
    return cohort, text.loc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- metrics
def _paired_finite(true, pred):
    true = np.asarray(true, dtype=float).ravel()
    pred = np.asarray(pred, dtype=float).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"true and pred differ in length ({true.size} != {pred.size})")
    keep = np.isfinite(true) & np.isfinite(pred)
    return true[keep], pred[keep]


def _pearson_axis(x, y, axis=-1):
    """Pearson r along ``axis`` (vectorised, for the bootstrap); NaN when a side is constant."""
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=axis) / np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))
    return np.clip(r, -1.0, 1.0)


def _mae(true, pred, axis=-1):
    return np.mean(np.abs(pred - true), axis=axis)


def _rmse(true, pred, axis=-1):
    return np.sqrt(np.mean((pred - true) ** 2, axis=axis))


def _r2(true, pred, axis=-1):
    ss_res = np.sum((true - pred) ** 2, axis=axis)
    ss_tot = np.sum((true - true.mean(axis=axis, keepdims=True)) ** 2, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    return np.where(ss_tot > 0, r2, np.nan)


def _spearman_axis(true, pred, axis=-1):
    from scipy.stats import rankdata

    return _pearson_axis(rankdata(true, axis=axis), rankdata(pred, axis=axis), axis=axis)


def _point_estimates(true, pred):
    """Point estimates; correlations from :mod:`scipy.stats` itself."""
    from scipy import stats

    constant = np.ptp(true) == 0 or np.ptp(pred) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pearson = np.nan if constant else float(stats.pearsonr(true, pred)[0])
        spearman = np.nan if constant else float(stats.spearmanr(true, pred)[0])
    return {
        "mae": float(_mae(true, pred)),
        "rmse": float(_rmse(true, pred)),
        "r2": float(_r2(true, pred)),
        "pearson_r": pearson,
        "spearman_rho": spearman,
    }


_BOOT_STATISTICS = {
    "mae": _mae,
    "rmse": _rmse,
    "r2": _r2,
    "pearson_r": _pearson_axis,
    "spearman_rho": _spearman_axis,
}


def _bootstrap_ci(true, pred, statistic, *, n_boot, seed, level=0.95):
    """Paired percentile-bootstrap CI with :func:`scipy.stats.bootstrap`.

    Resamples that make the statistic undefined (e.g. a constant resample for a
    correlation) are left out of the percentiles. Returns ``(low, high, n_degenerate)``.
    """
    from scipy.stats import bootstrap

    rng = np.random.default_rng(seed)
    seed_kw = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = bootstrap(
            (true, pred),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=n_boot,
            confidence_level=level,
            method="percentile",
            **{seed_kw: rng},
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    distribution = np.asarray(res.bootstrap_distribution, dtype=float)
    finite = np.isfinite(distribution)
    n_degenerate = int((~finite).sum())
    if not (np.isfinite(low) and np.isfinite(high)):
        if finite.sum() >= 2:
            alpha = (1.0 - level) / 2.0
            low, high = np.percentile(distribution[finite], [100 * alpha, 100 * (1 - alpha)])
            low, high = float(low), float(high)
        else:
            low = high = np.nan
    return low, high, n_degenerate


def regression_metrics(true, pred, n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of predicted against chronological age, with bootstrap 95% CIs.

    Pairs where either value is missing (NaN) are dropped first. Each CI is the 2.5th and
    97.5th percentile of the statistic over ``n_boot`` paired bootstrap resamples
    (subjects/sessions resampled with replacement, keeping ``true`` and ``pred`` together;
    :func:`scipy.stats.bootstrap` with ``paired=True, method='percentile'``). Resamples in
    which a statistic is undefined (constant values) are excluded and counted in ``note``.

    Parameters
    ----------
    true : array_like of float
        Chronological ages (months).
    pred : array_like of float
        Predicted ages (months), same length.
    n_boot : int
        Number of bootstrap resamples.
    seed : int
        Seed of the bootstrap random generator (results are reproducible).

    Returns
    -------
    dict
        Keys ``mae``, ``rmse`` (months), ``r2``, ``pearson_r``, ``spearman_rho``
        (dimensionless), in that order; each maps to a dict with ``value``, ``ci_low``,
        ``ci_high`` (floats, NaN when undefined), ``n`` (pairs used), ``units`` and ``note``
        (empty string, or why a value is NaN). With fewer than 3 pairs every value is NaN.

    Examples
    --------
    >>> m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.0], n_boot=200)
    >>> round(m["mae"]["value"], 3), m["mae"]["n"]
    (0.25, 4)
    >>> m = regression_metrics([1.0, 2.0], [1.0, 2.0])
    >>> bool(np.isnan(m["r2"]["value"])), m["r2"]["note"]
    (True, 'n = 2 < 3 pairs with both ages: not computed')
    """
    true, pred = _paired_finite(true, pred)
    n = int(true.size)
    results = {
        name: {
            "value": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "n": n,
            "units": units,
            "note": "",
        }
        for name, (units, _) in METRICS.items()
    }
    if n < 3:
        for entry in results.values():
            entry["note"] = f"n = {n} < 3 pairs with both ages: not computed"
        return results

    values = _point_estimates(true, pred)
    for name, entry in results.items():
        entry["value"] = values[name]
        if not np.isfinite(values[name]):
            entry["note"] = "undefined: chronological or predicted ages are constant"
            continue
        if n_boot < 2:
            entry["note"] = "no bootstrap requested (n_boot < 2)"
            continue
        low, high, n_degenerate = _bootstrap_ci(
            true, pred, _BOOT_STATISTICS[name], n_boot=n_boot, seed=seed
        )
        entry["ci_low"], entry["ci_high"] = low, high
        if n_degenerate:
            entry["note"] = (
                f"{n_degenerate} of {n_boot} bootstrap resamples undefined and left out"
            )
    return results


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Turn the output of :func:`regression_metrics` into a ``group_metrics.tsv`` table.

    Parameters
    ----------
    metrics : dict
        As returned by :func:`regression_metrics`.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``value``, ``ci_low``, ``ci_high`` (units of the metric: months
        for ``mae``/``rmse``, dimensionless otherwise) and ``n`` (int).
    """
    rows = [
        {
            "metric": name,
            "value": entry["value"],
            "ci_low": entry["ci_low"],
            "ci_high": entry["ci_high"],
            "n": int(entry["n"]),
        }
        for name, entry in metrics.items()
    ]
    return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high", "n"])


# --------------------------------------------------------------------------- bias correction
def fit_bias_correction(chron, pred, *, fitted_on: str = "unspecified cohort") -> dict:
    """Fit the linear age bias of predicted brain age.

    Brain-age predictions regress toward the mean age of the training data, so the raw gap
    (predicted - chronological) correlates negatively with age (Smith et al., 2019). This
    fits ``pred = alpha + beta * chron`` by ordinary least squares
    (:class:`statsmodels.regression.linear_model.OLS`) on the pairs where both ages exist;
    :func:`apply_bias_correction` then removes it following de Lange & Cole (2020).

    Parameters
    ----------
    chron : array_like of float
        Chronological ages (months); NaN pairs are dropped.
    pred : array_like of float
        Predicted ages (months), same length.
    fitted_on : str
        Free-text description of the fitting cohort, stored with the parameters.

    Returns
    -------
    dict
        JSON-serialisable parameters: ``method``, ``formula``, ``alpha`` (intercept, months),
        ``beta`` (slope, months per month), ``alpha_se``/``beta_se`` (OLS standard errors,
        same units), ``r2_fit`` (R² of the fit), ``n`` (pairs used), ``fitted_on``,
        ``chronological_age_range_months`` ([min, max]) and ``references``.

    Raises
    ------
    bids_infantage.utils.errors.InputError
        With fewer than 3 pairs or constant chronological ages (the slope is undefined).

    Examples
    --------
    >>> p = fit_bias_correction([0.0, 6.0, 12.0], [3.0, 7.0, 11.0])
    >>> round(p["alpha"], 6), round(p["beta"], 6), p["n"]
    (3.0, 0.666667, 3)
    """
    import statsmodels.api as sm

    chron, pred = _paired_finite(chron, pred)
    if chron.size < 3 or np.ptp(chron) == 0:
        raise InputError(
            f"Cannot fit the age-bias correction on {fitted_on}: it needs at least 3 "
            f"sessions with distinct chronological ages (found {chron.size}); add ages to "
            "the BIDS dataset or pass a saved correction with --bias-correction."
        )
    result = sm.OLS(pred, sm.add_constant(chron, has_constant="add")).fit()
    alpha, beta = (float(v) for v in result.params)
    alpha_se, beta_se = (float(v) for v in result.bse)
    return {
        "method": BIAS_CORRECTION_METHOD,
        "formula": BIAS_CORRECTION_FORMULA,
        "alpha": alpha,
        "beta": beta,
        "alpha_se": alpha_se,
        "beta_se": beta_se,
        "alpha_units": "months",
        "beta_units": "months per month (dimensionless)",
        "r2_fit": float(result.rsquared),
        "n": int(chron.size),
        "fitted_on": str(fitted_on),
        "chronological_age_range_months": [float(chron.min()), float(chron.max())],
        "references": [REFERENCES["smith2019"], REFERENCES["delange2020"]],
    }


def corrected_predicted_age(chron, pred, params: dict) -> np.ndarray:
    """Bias-corrected predicted age (de Lange & Cole, 2020).

    ``corrected = pred + (chron - (alpha + beta * chron))``.

    Parameters
    ----------
    chron, pred : array_like of float
        Chronological and predicted ages (months).
    params : dict
        Parameters from :func:`fit_bias_correction` or :func:`load_bias_correction`.

    Returns
    -------
    numpy.ndarray of float
        Corrected predicted ages (months); NaN where either input is NaN.
    """
    chron = np.asarray(chron, dtype=float)
    pred = np.asarray(pred, dtype=float)
    return pred + (chron - (float(params["alpha"]) + float(params["beta"]) * chron))


def apply_bias_correction(chron, pred, params: dict) -> np.ndarray:
    """Bias-corrected brain-age gap.

    With ``alpha``, ``beta`` from :func:`fit_bias_correction`, the corrected predicted age
    is ``corrected = pred + (chron - (alpha + beta * chron))`` (de Lange & Cole, 2020) and
    the corrected gap is ``corrected - chron = pred - (alpha + beta * chron)``: the residual
    of the age-bias fit. On the cohort the parameters were fitted on, it is uncorrelated
    with chronological age by construction; on a new cohort it is not exactly so.

    Parameters
    ----------
    chron, pred : array_like of float
        Chronological and predicted ages (months), same length.
    params : dict
        Must hold ``alpha`` (months) and ``beta`` (months per month).

    Returns
    -------
    numpy.ndarray of float
        Corrected brain-age gap (months); NaN where either age is missing.

    Examples
    --------
    >>> apply_bias_correction([0.0, 12.0], [4.0, 10.0], {"alpha": 3.0, "beta": 0.5})
    array([1., 1.])
    """
    return corrected_predicted_age(chron, pred, params) - np.asarray(chron, dtype=float)


def save_bias_correction(params: dict, path) -> Path:
    """Save bias-correction parameters as JSON (atomically).

    Parameters
    ----------
    params : dict
        From :func:`fit_bias_correction` (or loaded and annotated).
    path : str or os.PathLike
        Destination ``.json`` file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write_text_atomic(path, json.dumps(params, indent=2, sort_keys=True) + "\n")


def load_bias_correction(path) -> dict:
    """Load bias-correction parameters saved by :func:`save_bias_correction`.

    Parameters
    ----------
    path : str or os.PathLike
        JSON file with at least finite ``alpha`` (months) and ``beta`` (months per month).

    Returns
    -------
    dict
        The parameters, ``alpha``/``beta`` as floats.

    Raises
    ------
    bids_infantage.utils.errors.InputError
        If the file is missing, is not JSON, or lacks finite ``alpha``/``beta``.
    """
    path = Path(path)
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"Bias-correction file {path} does not exist; give the group_bias-correction.json "
            "written by an earlier group run."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"Bias-correction file {path} is not valid JSON ({err}); give the "
            "group_bias-correction.json written by an earlier group run."
        ) from None
    try:
        params["alpha"] = float(params["alpha"])
        params["beta"] = float(params["beta"])
        if not (np.isfinite(params["alpha"]) and np.isfinite(params["beta"])):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"Bias-correction file {path} lacks finite 'alpha' and 'beta'; give the "
            "group_bias-correction.json written by an earlier group run."
        ) from None
    return params


# --------------------------------------------------------------------------- outliers
def flag_outliers(gap_corrected, out_of_range=None, *, n_sd: float = OUTLIER_SD):
    """Flag brain-age outliers.

    A subject/session is an outlier when ``|gap_corrected| > n_sd * SD`` where SD is the
    sample standard deviation (``ddof=1``) of the finite corrected gaps of the cohort, or
    when the participant level flagged it out of the model's range. The gap is compared
    with 0 (no delay/advance), not with the cohort mean. Without at least 2 finite gaps,
    only the out-of-range flag applies.

    Parameters
    ----------
    gap_corrected : array_like of float
        Corrected brain-age gaps (months); NaN where unknown (never an outlier by gap).
    out_of_range : array_like of bool, optional
        ``qc_out_of_range`` of each row.
    n_sd : float
        Threshold in standard deviations.

    Returns
    -------
    outlier : numpy.ndarray of bool
        One flag per row.
    threshold : float
        ``n_sd * SD`` (months), NaN when it could not be computed.

    Examples
    --------
    >>> flags, thr = flag_outliers([0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 9.0], n_sd=2.0)
    >>> flags.nonzero()[0].tolist(), round(thr, 3)
    ([7], 6.453)
    """
    gap = np.asarray(gap_corrected, dtype=float).ravel()
    finite = np.isfinite(gap)
    threshold = float(n_sd * np.std(gap[finite], ddof=1)) if finite.sum() >= 2 else np.nan
    flags = np.zeros(gap.shape, dtype=bool)
    if np.isfinite(threshold):
        flags[finite] = np.abs(gap[finite]) > threshold
    if out_of_range is not None:
        flags = flags | np.asarray(out_of_range, dtype=bool).ravel()
    return flags, threshold
