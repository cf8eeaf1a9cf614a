"""Accuracy of predicted against chronological age, with paired-bootstrap 95% CIs.

:func:`regression_metrics` gives MAE, RMSE, R², Pearson r and Spearman ρ, each with a
paired percentile-bootstrap 95% CI (:func:`scipy.stats.bootstrap`); :func:`metrics_table`
turns them into the ``group_metrics.tsv`` table.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd

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
