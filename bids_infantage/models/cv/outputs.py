"""The tables and HTML report of a cross-validation (``cv_*.tsv``, ``cv_report.html``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .final import external_statistics


def _fmt_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a", border=0)


def write_outputs(out_dir: Path, folds, predictions, settings, configs, *, n_subjects: int,
                  seconds: float, external=None, source: str = "") -> dict:
    """Statistics tables (TSV) and ``cv_report.html``; returns the tables."""
    from ...group.compare import anova_configurations, pairwise_comparisons, summarize_folds
    from ...utils.io import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize_folds(folds)
    anova = pd.DataFrame([anova_configurations(folds, m) for m in ("mae", "rmse")])
    subject_errors = (predictions.assign(abs_error=(predictions["predicted_age"] - predictions["age"]).abs())
                      .groupby(["configuration", "subject"], as_index=False)["abs_error"].mean())
    n_test = int(round(folds["n_test"].mean()))
    n_train = int(round(folds["n_train"].mean()))
    pairwise = pairwise_comparisons(folds, subject_errors, n_train=n_train, n_test=n_test) \
        if len(configs) > 1 else pd.DataFrame()
    tables = {"cv_folds": folds, "cv_predictions": predictions, "cv_summary": summary,
              "cv_anova": anova, "cv_pairwise": pairwise}
    if external is not None:
        ext_metrics, ext_tests = external_statistics(external)
        tables.update(cv_external_predictions=external, cv_external_metrics=ext_metrics,
                      cv_external_wilcoxon=ext_tests)
    for name, df in tables.items():
        atomic_write_text(out_dir / f"{name}.tsv", df.to_csv(sep="\t", index=False, na_rep="n/a",
                                                             float_format="%.6g"))
    mae = summary[summary.metric == "mae"][["configuration", "mean", "sd", "ci_low", "ci_high", "n"]]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>bids-infantage "
        "cross-validation</title><style>body{font-family:sans-serif;max-width:70em;margin:auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ccc}"
        "</style></head><body>",
        "<h1>bids-infantage cross-validation</h1>",
        f"<p>Cohort: {source} ({n_subjects} subjects). {settings['folds']}-fold CV stratified by "
        f"age, {settings['repeats']} repeat(s) of random splits, {settings['members']} member(s) "
        f"per fold, {settings['epochs']} epochs; {len(folds)} fold evaluations in "
        f"{seconds / 60:.1f} min. Ages in months. Predictions are the ensemble mean calibrated "
        "linearly on each fold's training subjects (as the shipped models are calibrated); "
        "<code>mae_raw</code> in cv_folds.tsv is before calibration.</p>",
        "<h2>MAE per configuration (mean ± SD over folds, t-based 95% CI)</h2>", _fmt_table(mae),
        "<h2>All metrics</h2>", _fmt_table(summary),
        "<h2>One-way ANOVA across configurations (fold metrics; scipy.stats.f_oneway)</h2>",
        _fmt_table(anova),
    ]
    if len(pairwise):
        parts += ["<h2>Pairwise comparisons</h2><p>mae_diff = MAE(a) − MAE(b) over paired folds "
                  "with its t-interval; t/p_t: paired t-test on fold MAEs; t_corrected: Nadeau & "
                  "Bengio corrected resampled t-test; Mann–Whitney U and Cohen's d on subject "
                  "absolute errors (mean over repeats); *_holm: Holm-adjusted.</p>",
                  _fmt_table(pairwise)]
    if external is not None:
        parts += ["<h2>External set</h2>", _fmt_table(tables["cv_external_metrics"]),
                  "<h3>Wilcoxon signed-rank on paired absolute errors</h3>",
                  _fmt_table(tables["cv_external_wilcoxon"])]
    parts.append("<p>Methods: Park, Choi &amp; Gho, JMRI 2026 (protocol); Nadeau &amp; Bengio, "
                 "Machine Learning 2003 (corrected t-test).</p></body></html>\n")
    atomic_write_text(out_dir / "cv_report.html", "\n".join(parts))
    return tables


# --------------------------------------------------------------------------- CLI
def _print_table(tables: dict) -> None:
    summary = tables["cv_summary"]
    wide = summary.pivot_table(index="configuration", columns="metric", values="mean", sort=False)
    print("\n| configuration | MAE (mean ± SD) | 95% CI | RMSE | R² | Pearson r | Spearman ρ |")
    print("|---|---|---|---|---|---|---|")
    for c in wide.index:
        row = summary[(summary.configuration == c) & (summary.metric == "mae")].iloc[0]
        print(f"| {c} | {row['mean']:.2f} ± {row['sd']:.2f} | {row['ci_low']:.2f}–{row['ci_high']:.2f} "
              f"| {wide.loc[c, 'rmse']:.2f} | {wide.loc[c, 'r2']:.3f} | {wide.loc[c, 'pearson_r']:.3f} "
              f"| {wide.loc[c, 'spearman_rho']:.3f} |")
    a = tables["cv_anova"].iloc[0]
    print(f"\nANOVA on fold MAE: F({a['df_between']}, {a['df_within']}) = {a['f']:.2f}, p = {a['p']:.3g}")
