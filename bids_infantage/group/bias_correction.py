"""Linear age-bias correction of the brain-age gap (Smith et al., 2019; de Lange & Cole, 2020).

:func:`fit_bias_correction` / :func:`apply_bias_correction` fit and remove the bias;
:func:`save_bias_correction` / :func:`load_bias_correction` store the parameters as JSON so
that a correction fitted on one cohort can be applied to another.

References
----------
Smith SM, Vidaurre D, Alfaro-Almagro F, Nichols TE, Miller KL. Estimation of brain age
delta from brain imaging. NeuroImage 2019;200:528-539. doi:10.1016/j.neuroimage.2019.06.017

de Lange AMG, Cole JH. Commentary: Correction procedures in brain-age prediction.
NeuroImage: Clinical 2020;26:102229. doi:10.1016/j.nicl.2020.102229
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bids_infantage.group.metrics import _paired_finite
from bids_infantage.group.references import REFERENCES
from bids_infantage.utils.errors import InputError
from bids_infantage.utils.io import atomic_write_text

BIAS_CORRECTION_METHOD = "linear age-bias correction (de Lange & Cole 2020)"
BIAS_CORRECTION_FORMULA = (
    "predicted = alpha + beta * chronological (OLS); "
    "corrected_predicted = predicted + (chronological - (alpha + beta * chronological)); "
    "gap_corrected = corrected_predicted - chronological "
    "= predicted - (alpha + beta * chronological)"
)


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
    return atomic_write_text(path, json.dumps(params, indent=2, sort_keys=True) + "\n")


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
