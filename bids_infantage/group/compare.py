"""Statistics that compare input configurations (or models) under cross-validation.

The protocol follows Park, Choi & Gho (JMRI 2026): K-fold cross-validation repeated over
random splits, accuracy per fold (MAE, RMSE, R², Pearson r, Spearman ρ) reported as
mean ± SD with 95% confidence intervals; configurations compared by one-way ANOVA on the
fold MAEs, pairwise t-tests, Mann–Whitney U tests and Cohen's d; on an external set, the
Wilcoxon signed-rank test on paired absolute errors.

All functions are pure, take arrays (ages and errors in months) and call :mod:`scipy.stats`
and :mod:`statsmodels` for the tests themselves.

Choices, stated in the output:

* Fold-level tests (ANOVA, paired t-test) use the per-fold MAE. Every configuration is
  evaluated on the same splits, so the t-test is paired (``scipy.stats.ttest_rel``).
  Repeated-CV folds overlap in their training data, so these p-values are optimistic
  (Nadeau & Bengio, Machine Learning 2003); the corrected resampled t-test is also given.
* Subject-level tests (Mann–Whitney U, Cohen's d) use each subject's absolute error
  averaged over repeats.
* Pairwise p-values are also given after Holm's correction for the number of pairs
  (``statsmodels.stats.multitest.multipletests``).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd


def fold_metrics(true, pred) -> dict:
    """Accuracy of one fold: ``mae``, ``rmse``, ``r2``, ``pearson_r``, ``spearman_rho``.

    Parameters
    ----------
    true, pred : array-like, shape (N,)
        Chronological and predicted ages (months).

    Returns
    -------
    dict of float
        Correlations are NaN when either array is constant.
    """
    from .metrics import _point_estimates

    return _point_estimates(np.asarray(true, float), np.asarray(pred, float))


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, SD (ddof 1) and Student-t confidence interval of the mean.

    Parameters
    ----------
    values : array-like, shape (K,)
        E.g. the MAE of each fold (months).

    Returns
    -------
    mean, sd, low, high : float
        ``low``/``high`` are NaN for fewer than two values.
    """
    from scipy import stats

    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    mean = float(x.mean()) if len(x) else math.nan
    if len(x) < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * sd / math.sqrt(len(x)))
    return mean, sd, mean - half, mean + half


def cohens_d(a, b) -> float:
    """Cohen's d of two independent samples with the pooled SD (ddof 1).

    ``d = (mean(a) - mean(b)) / sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2))``
    (Cohen 1988); positive when ``a`` is larger (for absolute errors: ``a`` is worse).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


def corrected_resampled_ttest(diffs, n_train: int, n_test: int) -> tuple[float, float]:
    """Nadeau & Bengio's corrected resampled t-test for repeated cross-validation.

    Parameters
    ----------
    diffs : array-like, shape (J,)
        Per-fold differences of a metric between two models (J = folds x repeats).
    n_train, n_test : int
        Training and test set sizes of one fold.

    Returns
    -------
    t, p : float
        Statistic and two-sided p-value (J - 1 degrees of freedom); the variance is
        inflated by ``1/J + n_test/n_train`` instead of ``1/J``.
    """
    from scipy import stats

    d = np.asarray(diffs, float)
    j = len(d)
    var = d.var(ddof=1)
    if j < 2 or var == 0:
        return math.nan, math.nan
    t = float(d.mean() / math.sqrt((1.0 / j + n_test / n_train) * var))
    return t, float(2 * stats.t.sf(abs(t), j - 1))


def summarize_folds(folds: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean, SD and t-interval of each metric per configuration.

    Parameters
    ----------
    folds : DataFrame
        One row per (configuration, repeat, fold) with columns ``configuration`` and the
        metrics of :func:`fold_metrics`.

    Returns
    -------
    DataFrame
        One row per (configuration, metric): ``mean``, ``sd``, ``ci_low``, ``ci_high``, ``n``.
    """
    rows = []
    metrics = [c for c in ("mae", "rmse", "r2", "pearson_r", "spearman_rho") if c in folds]
    for config, part in folds.groupby("configuration", sort=False):
        for metric in metrics:
            mean, sd, low, high = mean_ci(part[metric], level)
            rows.append({"configuration": config, "metric": metric, "mean": mean, "sd": sd,
                         "ci_low": low, "ci_high": high, "n": int(part[metric].notna().sum())})
    return pd.DataFrame(rows)


def anova_configurations(folds: pd.DataFrame, metric: str = "mae") -> dict:
    """One-way ANOVA of a fold metric across configurations (``scipy.stats.f_oneway``).

    Returns
    -------
    dict
        ``f``, ``p``, ``df_between``, ``df_within``, ``metric``; NaN with fewer than two
        configurations.
    """
    from scipy import stats

    groups = [g[metric].to_numpy(float) for _, g in folds.groupby("configuration", sort=False)]
    if len(groups) < 2:
        return {"metric": metric, "f": math.nan, "p": math.nan, "df_between": 0, "df_within": 0}
    res = stats.f_oneway(*groups)
    n = sum(len(g) for g in groups)
    return {"metric": metric, "f": float(res.statistic), "p": float(res.pvalue),
            "df_between": len(groups) - 1, "df_within": n - len(groups)}


def pairwise_comparisons(folds: pd.DataFrame, subject_errors: pd.DataFrame, *,
                         n_train: int, n_test: int, level: float = 0.95) -> pd.DataFrame:
    """Every pair of configurations: paired t-test on fold MAEs (plain and corrected),
    Mann–Whitney U and Cohen's d on subject absolute errors, Holm-adjusted p-values.

    Parameters
    ----------
    folds : DataFrame
        Columns ``configuration``, ``repeat``, ``fold``, ``mae``.
    subject_errors : DataFrame
        Columns ``configuration``, ``subject``, ``abs_error`` (months, mean over repeats).
    n_train, n_test : int
        Fold sizes, for the corrected t-test.

    Returns
    -------
    DataFrame
        One row per pair ``a``, ``b``: ``mae_diff`` (a - b, months) with its t-interval,
        ``t``, ``p_t``, ``t_corrected``, ``p_t_corrected``, ``mannwhitney_u``, ``p_mw``,
        ``cohens_d``, and ``p_t_holm``, ``p_mw_holm``.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    configs = list(dict.fromkeys(folds["configuration"]))
    wide = folds.pivot_table(index=["repeat", "fold"], columns="configuration", values="mae")
    errs = subject_errors.pivot_table(index="subject", columns="configuration", values="abs_error")
    rows = []
    for a, b in itertools.combinations(configs, 2):
        diff = (wide[a] - wide[b]).to_numpy(float)
        mean, _, low, high = mean_ci(diff, level)
        t = stats.ttest_rel(wide[a], wide[b])
        t_c, p_c = corrected_resampled_ttest(diff, n_train, n_test)
        mw = stats.mannwhitneyu(errs[a], errs[b], alternative="two-sided")
        rows.append({"a": a, "b": b, "mae_diff": mean, "mae_diff_ci_low": low,
                     "mae_diff_ci_high": high, "t": float(t.statistic), "p_t": float(t.pvalue),
                     "t_corrected": t_c, "p_t_corrected": p_c,
                     "mannwhitney_u": float(mw.statistic), "p_mw": float(mw.pvalue),
                     "cohens_d": cohens_d(errs[a], errs[b])})
    out = pd.DataFrame(rows)
    if len(out):
        for col in ("p_t", "p_mw"):
            ok = out[col].notna()
            out[f"{col}_holm"] = np.nan
            if ok.any():
                out.loc[ok, f"{col}_holm"] = multipletests(out.loc[ok, col], method="holm")[1]
    return out


def wilcoxon_external(abs_err_a, abs_err_b) -> dict:
    """Wilcoxon signed-rank test on paired absolute errors of two models on one external set.

    Parameters
    ----------
    abs_err_a, abs_err_b : array-like, shape (N,)
        Absolute errors (months) of the same subjects under models a and b.

    Returns
    -------
    dict
        ``n``, ``mae_a``, ``mae_b``, ``median_diff`` (a - b), ``w``, ``p``
        (``scipy.stats.wilcoxon``, two-sided; NaN when all differences are zero).
    """
    from scipy import stats

    a, b = np.asarray(abs_err_a, float), np.asarray(abs_err_b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired errors need equal lengths, got {a.shape} and {b.shape}")
    out = {"n": int(len(a)), "mae_a": float(a.mean()), "mae_b": float(b.mean()),
           "median_diff": float(np.median(a - b)), "w": math.nan, "p": math.nan}
    if np.any(a != b):
        res = stats.wilcoxon(a, b)
        out.update(w=float(res.statistic), p=float(res.pvalue))
    return out
