"""Configuration-comparison statistics against scipy/statsmodels/pingouin on fixed numbers."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_infantage.group import compare

# fixed fold MAEs (months): 3 configurations x (2 repeats x 3 folds)
MAE = {
    "t1w": [2.1, 2.5, 1.9, 2.4, 2.2, 2.0],
    "ratio": [1.4, 1.6, 1.5, 1.3, 1.8, 1.5],
    "t1w+t2w": [1.2, 1.5, 1.1, 1.6, 1.3, 1.4],
}
# fixed subject absolute errors (months), 8 subjects
ERR = {
    "t1w": [2.0, 3.1, 0.5, 1.7, 2.8, 4.0, 1.1, 2.2],
    "ratio": [1.1, 2.0, 0.4, 1.9, 1.5, 2.2, 0.7, 1.6],
    "t1w+t2w": [0.9, 1.2, 0.6, 1.0, 1.8, 1.9, 0.3, 1.4],
}


@pytest.fixture
def folds():
    rows = []
    for config, values in MAE.items():
        for k, v in enumerate(values):
            rows.append({"configuration": config, "repeat": k // 3, "fold": k % 3, "mae": v,
                         "rmse": v * 1.2, "r2": 1 - v / 10, "pearson_r": 1 - v / 20,
                         "spearman_rho": 1 - v / 25})
    return pd.DataFrame(rows)


@pytest.fixture
def subject_errors():
    return pd.DataFrame([{"configuration": c, "subject": f"sub-{i}", "abs_error": e}
                         for c, errs in ERR.items() for i, e in enumerate(errs)])


def test_mean_ci_matches_scipy_t_interval():
    x = np.array(MAE["ratio"])
    mean, sd, low, high = compare.mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (mean, sd) == pytest.approx((x.mean(), x.std(ddof=1)))
    assert (low, high) == pytest.approx((lo, hi))
    assert math.isnan(compare.mean_ci([1.0])[2])


def test_fold_metrics():
    true = np.array([0.0, 3.0, 6.0, 12.0, 18.0, 24.0])
    pred = np.array([1.0, 2.5, 7.0, 11.0, 19.5, 22.0])
    m = compare.fold_metrics(true, pred)
    assert m["mae"] == pytest.approx(np.mean(np.abs(pred - true)))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - true) ** 2)))
    assert m["pearson_r"] == pytest.approx(stats.pearsonr(true, pred)[0])
    assert m["spearman_rho"] == pytest.approx(stats.spearmanr(true, pred)[0])


def test_summary_per_configuration(folds):
    table = compare.summarize_folds(folds)
    row = table[(table.configuration == "t1w") & (table.metric == "mae")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(MAE["t1w"]))
    assert row["sd"] == pytest.approx(np.std(MAE["t1w"], ddof=1))
    assert row["n"] == 6
    assert set(table.metric) == {"mae", "rmse", "r2", "pearson_r", "spearman_rho"}


def test_anova_matches_scipy_and_statsmodels(folds):
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    res = compare.anova_configurations(folds)
    ref = stats.f_oneway(*MAE.values())
    assert (res["f"], res["p"]) == pytest.approx((ref.statistic, ref.pvalue))
    table = sm.stats.anova_lm(ols("mae ~ C(configuration)", data=folds).fit())
    assert res["f"] == pytest.approx(table["F"].iloc[0])
    assert (res["df_between"], res["df_within"]) == (2, 15)


def test_pairwise(folds, subject_errors):
    from statsmodels.stats.multitest import multipletests

    table = compare.pairwise_comparisons(folds, subject_errors, n_train=20, n_test=10)
    assert len(table) == 3
    row = table[(table.a == "t1w") & (table.b == "ratio")].iloc[0]
    t = stats.ttest_rel(MAE["t1w"], MAE["ratio"])
    assert (row["t"], row["p_t"]) == pytest.approx((t.statistic, t.pvalue))
    mw = stats.mannwhitneyu(ERR["t1w"], ERR["ratio"], alternative="two-sided")
    assert (row["mannwhitney_u"], row["p_mw"]) == pytest.approx((mw.statistic, mw.pvalue))
    diff = np.subtract(MAE["t1w"], MAE["ratio"])
    assert row["mae_diff"] == pytest.approx(diff.mean())
    # corrected resampled t: variance inflated by 1/J + n_test/n_train
    t_c = diff.mean() / np.sqrt((1 / 6 + 10 / 20) * diff.var(ddof=1))
    assert row["t_corrected"] == pytest.approx(t_c)
    assert row["p_t_corrected"] == pytest.approx(2 * stats.t.sf(abs(t_c), 5))
    assert row["p_t_corrected"] > row["p_t"]
    holm = multipletests(table["p_t"], method="holm")[1]
    assert table["p_t_holm"].to_numpy() == pytest.approx(holm)


def test_cohens_d_against_formula_and_pingouin():
    a, b = np.array(ERR["t1w"]), np.array(ERR["t1w+t2w"])
    pooled = np.sqrt((7 * a.var(ddof=1) + 7 * b.var(ddof=1)) / 14)
    assert compare.cohens_d(a, b) == pytest.approx((a.mean() - b.mean()) / pooled)
    assert compare.cohens_d(b, a) == pytest.approx(-compare.cohens_d(a, b))
    pg = pytest.importorskip("pingouin", reason="pingouin not installed (cross-check only)")
    assert compare.cohens_d(a, b) == pytest.approx(pg.compute_effsize(a, b, eftype="cohen"))


def test_wilcoxon_external():
    a, b = np.array(ERR["t1w"]), np.array(ERR["ratio"])
    res = compare.wilcoxon_external(a, b)
    ref = stats.wilcoxon(a, b)
    assert (res["w"], res["p"]) == pytest.approx((ref.statistic, ref.pvalue))
    assert res["mae_a"] == pytest.approx(a.mean()) and res["n"] == 8
    assert math.isnan(compare.wilcoxon_external(a, a)["p"])
    with pytest.raises(ValueError, match="equal lengths"):
        compare.wilcoxon_external(a, b[:3])
