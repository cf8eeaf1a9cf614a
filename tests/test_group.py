"""Tests of the ``group`` analysis level (statistics, figures, report, workflow)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bids_infantage import group as stats  # the package's public statistics API
from bids_infantage.group.analysis import run_group
from bids_infantage.utils.errors import InputError
from bids_infantage.workflows.group import init_group_wf

COLUMNS = list(stats.BRAINAGE_COLUMNS)

# participant, session, chronological age, predicted age (months), out of range
COHORT = [
    ("sub-01", None, 1.0, 3.1, False),
    ("sub-02", None, 3.0, 4.6, False),
    ("sub-03", None, 6.0, 7.2, False),
    ("sub-04", None, 9.0, 9.1, False),
    ("sub-05", None, 12.0, 11.8, False),
    ("sub-06", None, 15.0, 21.0, True),
    ("sub-07", "ses-01", 18.0, 16.9, False),
    ("sub-07", "ses-02", 24.0, 21.5, False),
    ("sub-08", "ses-01", None, 10.2, False),
]
# A second cohort, with another bias, to check reuse of a saved correction.
COHORT_B = [
    ("sub-11", None, 2.0, 5.0, False),
    ("sub-12", None, 5.0, 6.5, False),
    ("sub-13", None, 10.0, 10.0, False),
    ("sub-14", "ses-01", 14.0, 12.9, False),
    ("sub-14", "ses-02", 20.0, 16.0, False),
]

GROUP_FILES = {
    "group_brainage.tsv",
    "group_brainage.json",
    "group_metrics.tsv",
    "group_metrics.json",
    "group_bias-correction.json",
    "group.html",
    "figures/group_predicted-vs-chronological.svg",
    "figures/group_bland-altman.svg",
    "figures/group_gap-distribution.svg",
    # one participant of the fixture has two sessions: trajectories (no mixed model: 1 subject)
    "group_trajectories.tsv",
    "group_trajectories.json",
    "figures/group_growth-chart.svg",
}
METRIC_NAMES = ["mae", "rmse", "r2", "pearson_r", "spearman_rho"]


def _write_cohort(output_dir: Path, cohort, *, drop_ages=False):
    for participant, session, chron, pred, out_of_range in cohort:
        folder = output_dir / participant / (session or "") / "anat"
        folder.mkdir(parents=True, exist_ok=True)
        stem = "_".join(x for x in (participant, session) if x)
        chron = None if drop_ages else chron
        row = {
            "participant_id": participant,
            "session_id": session or "n/a",
            "model_configuration": "T1w+T2w+ratio",
            "predicted_age_months": pred,
            "predicted_age_sd_months": 1.0,
            "predicted_age_lower_months": pred - 1.645,
            "predicted_age_upper_months": pred + 1.645,
            "interval_coverage": 0.9,
            "chronological_age_months": "n/a" if chron is None else chron,
            "brain_age_gap_months": "n/a" if chron is None else round(pred - chron, 4),
            "brain_volume_ml": 650.0 + 10 * pred,
            "brain_volume_z": 0.1,
            "qc_out_of_range": "true" if out_of_range else "false",
            "qc_flags": "age_above_training_range;low_snr" if out_of_range else "none",
            "t1w_t2w_mask_dice": 0.93,
            "normalization_mask_dice": 0.88,
            "model_name": "agenet-v1",
            "model_sha256": "0" * 64,
        }
        (folder / f"{stem}_brainage.tsv").write_text(
            "\t".join(COLUMNS) + "\n" + "\t".join(str(row[c]) for c in COLUMNS) + "\n"
        )
    return output_dir


def _arrays(cohort):
    chron = np.array([np.nan if c is None else c for _, _, c, _, _ in cohort])
    pred = np.array([p for _, _, _, p, _ in cohort])
    return chron, pred


@pytest.fixture
def cohort_dir(tmp_path):
    return _write_cohort(tmp_path / "derivatives", COHORT)


# --------------------------------------------------------------------------- collect_cohort
def test_collect_cohort(cohort_dir):
    # A stray file that is not a participant-level output must be ignored.
    (cohort_dir / "sub-01" / "anat" / "notes_brainage.txt").write_text("x")
    table = stats.collect_cohort(cohort_dir)

    assert len(table) == len(COHORT)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert table["participant_id"].tolist() == [c[0] for c in COHORT]
    sessions = table["session_id"].tolist()
    assert sessions[6:] == ["ses-01", "ses-02", "ses-01"]
    assert all(pd.isna(s) for s in sessions[:6])
    assert table["predicted_age_months"].dtype == float
    np.testing.assert_allclose(table["predicted_age_months"], [c[3] for c in COHORT])
    assert np.isnan(table.loc[8, "chronological_age_months"])
    assert np.isnan(table.loc[8, "brain_age_gap_months"])
    assert table["qc_out_of_range"].dtype == bool
    assert table["qc_out_of_range"].tolist() == [c[4] for c in COHORT]
    assert table.loc[5, "qc_flags"] == "age_above_training_range;low_snr"
    assert table.loc[0, "qc_flags"] == "none"
    assert table.index.tolist() == list(range(len(COHORT)))


def test_collect_cohort_sorts_unordered_input(tmp_path):
    shuffled = [COHORT[i] for i in (7, 2, 8, 0, 6, 5, 1, 4, 3)]
    table = stats.collect_cohort(_write_cohort(tmp_path / "d", shuffled))
    assert table["participant_id"].tolist() == [c[0] for c in COHORT]
    assert table.loc[6:, "session_id"].tolist() == ["ses-01", "ses-02", "ses-01"]


def test_collect_cohort_without_outputs_raises(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError) as info:
        stats.collect_cohort(empty)
    message = str(info.value)
    assert str(empty) in message
    assert "participant level" in message
    assert "\n" not in message


def test_collect_cohort_rejects_missing_columns(cohort_dir):
    bad = cohort_dir / "sub-09" / "anat" / "sub-09_brainage.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("participant_id\tpredicted_age_months\nsub-09\t3.0\n")
    with pytest.raises(InputError, match="sub-09_brainage.tsv lacks column"):
        stats.collect_cohort(cohort_dir)


# --------------------------------------------------------------------------- metrics
TRUE = np.array([1.0, 2.5, 4.0, 6.0, 8.0, 11.0, 13.5, 17.0, 20.0, 23.0])
PRED = np.array([2.2, 2.0, 5.1, 6.4, 7.1, 12.3, 12.0, 15.9, 19.2, 20.5])


def test_regression_metrics_match_independent_computation():
    metrics = stats.regression_metrics(TRUE, PRED, n_boot=500, seed=3)
    assert list(metrics) == METRIC_NAMES

    err = PRED - TRUE
    expected = {
        "mae": np.mean(np.abs(err)),
        "rmse": np.sqrt(np.mean(err**2)),
        "r2": 1 - np.sum(err**2) / np.sum((TRUE - TRUE.mean()) ** 2),
        "pearson_r": np.corrcoef(TRUE, PRED)[0, 1],
        "spearman_rho": pd.Series(TRUE).corr(pd.Series(PRED), method="spearman"),
    }
    for name, value in expected.items():
        entry = metrics[name]
        assert entry["value"] == pytest.approx(value, rel=1e-12), name
        assert entry["n"] == TRUE.size
        assert entry["note"] == ""
        assert np.isfinite(entry["ci_low"]) and np.isfinite(entry["ci_high"]), name
        assert entry["ci_low"] < entry["ci_high"], name
    # Percentile intervals of these well-behaved statistics bracket the point estimate.
    for name in ("mae", "rmse", "pearson_r"):
        assert metrics[name]["ci_low"] <= metrics[name]["value"] <= metrics[name]["ci_high"]
    assert metrics["mae"]["units"] == "months"
    assert metrics["r2"]["units"] == "dimensionless"


def test_regression_metrics_bootstrap_is_paired_percentile_and_seeded():
    first = stats.regression_metrics(TRUE, PRED, n_boot=400, seed=11)
    again = stats.regression_metrics(TRUE, PRED, n_boot=400, seed=11)
    other = stats.regression_metrics(TRUE, PRED, n_boot=400, seed=12)
    assert first["mae"]["ci_low"] == again["mae"]["ci_low"]
    assert first["rmse"]["ci_high"] == again["rmse"]["ci_high"]
    assert first["mae"]["ci_low"] != other["mae"]["ci_low"]

    # Same resamples as scipy.stats.bootstrap with paired percentile resampling.
    reference = sps.bootstrap(
        (TRUE, PRED),
        lambda t, p, axis=-1: np.mean(np.abs(p - t), axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=400,
        method="percentile",
        rng=np.random.default_rng(11),
    )
    assert first["mae"]["ci_low"] == pytest.approx(reference.confidence_interval.low)
    assert first["mae"]["ci_high"] == pytest.approx(reference.confidence_interval.high)


def test_regression_metrics_drops_missing_pairs():
    true = np.append(TRUE, [np.nan, 5.0])
    pred = np.append(PRED, [4.0, np.nan])
    with_nan = stats.regression_metrics(true, pred, n_boot=50)
    clean = stats.regression_metrics(TRUE, PRED, n_boot=50)
    assert with_nan["mae"]["n"] == TRUE.size
    assert with_nan["rmse"]["value"] == pytest.approx(clean["rmse"]["value"])


@pytest.mark.parametrize("n", [0, 1, 2])
def test_regression_metrics_small_n_is_nan_with_note(n):
    metrics = stats.regression_metrics(TRUE[:n], PRED[:n], n_boot=100)
    for name in METRIC_NAMES:
        entry = metrics[name]
        assert np.isnan(entry["value"]) and np.isnan(entry["ci_low"]) and np.isnan(entry["ci_high"])
        assert entry["n"] == n
        assert "< 3" in entry["note"]


def test_regression_metrics_constant_truth_gives_nan_correlations():
    metrics = stats.regression_metrics([6.0, 6.0, 6.0, 6.0], [5.0, 6.5, 7.0, 6.0], n_boot=100)
    assert metrics["mae"]["value"] == pytest.approx(0.625)
    for name in ("r2", "pearson_r", "spearman_rho"):
        assert np.isnan(metrics[name]["value"])
        assert "constant" in metrics[name]["note"]


def test_metrics_table_layout():
    table = stats.metrics_table(stats.regression_metrics(TRUE, PRED, n_boot=50))
    assert table.columns.tolist() == ["metric", "value", "ci_low", "ci_high", "n"]
    assert table["metric"].tolist() == METRIC_NAMES
    assert (table["n"] == TRUE.size).all()


# --------------------------------------------------------------------------- bias correction
def test_fit_bias_correction_matches_polyfit_and_ols():
    import statsmodels.api as sm

    params = stats.fit_bias_correction(TRUE, PRED, fitted_on="test cohort")
    beta, alpha = np.polyfit(TRUE, PRED, 1)
    assert params["alpha"] == pytest.approx(alpha, rel=1e-10)
    assert params["beta"] == pytest.approx(beta, rel=1e-10)
    ols = sm.OLS(PRED, sm.add_constant(TRUE)).fit()
    assert params["beta_se"] == pytest.approx(ols.bse[1])
    assert params["n"] == TRUE.size
    assert params["fitted_on"] == "test cohort"
    assert params["method"] == stats.BIAS_CORRECTION_METHOD
    assert params["chronological_age_range_months"] == [1.0, 23.0]
    json.dumps(params)  # serialisable as is


def test_bias_correction_removes_age_dependence():
    raw_gap = PRED - TRUE
    assert abs(sps.pearsonr(TRUE, raw_gap)[0]) > 0.5  # regression to the mean

    params = stats.fit_bias_correction(TRUE, PRED)
    gap = stats.apply_bias_correction(TRUE, PRED, params)
    assert abs(sps.pearsonr(TRUE, gap)[0]) < 1e-6
    # de Lange & Cole: corrected = pred + (chron - (alpha + beta chron)); gap = corrected - chron
    beta, alpha = np.polyfit(TRUE, PRED, 1)
    corrected = PRED + (TRUE - (alpha + beta * TRUE))
    np.testing.assert_allclose(stats.corrected_predicted_age(TRUE, PRED, params), corrected)
    np.testing.assert_allclose(gap, corrected - TRUE)
    np.testing.assert_allclose(gap, PRED - (alpha + beta * TRUE), atol=1e-12)
    assert gap.mean() == pytest.approx(0.0, abs=1e-10)


def test_bias_correction_needs_three_distinct_ages():
    with pytest.raises(InputError, match="at least 3"):
        stats.fit_bias_correction([1.0, 2.0], [1.5, 2.5])
    with pytest.raises(InputError, match="at least 3"):
        stats.fit_bias_correction([4.0, 4.0, 4.0], [3.0, 5.0, 4.5])


def test_bias_correction_saved_and_reused(tmp_path):
    params = stats.fit_bias_correction(TRUE, PRED, fitted_on="cohort A")
    path = stats.save_bias_correction(params, tmp_path / "bias.json")
    loaded = stats.load_bias_correction(path)
    assert loaded["alpha"] == params["alpha"] and loaded["beta"] == params["beta"]

    chron_b, pred_b = _arrays(COHORT_B)
    gap_b = stats.apply_bias_correction(chron_b, pred_b, loaded)
    np.testing.assert_allclose(gap_b, pred_b - (params["alpha"] + params["beta"] * chron_b))


def test_load_bias_correction_rejects_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        stats.load_bias_correction(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        stats.load_bias_correction(broken)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"alpha": 1.0}))
    with pytest.raises(InputError, match="alpha' and 'beta"):
        stats.load_bias_correction(partial)


# --------------------------------------------------------------------------- outliers
def test_flag_outliers_rule():
    gap = np.array([0.2, -0.4, 0.1, -0.3, 0.5, -0.2, 0.3, 4.0, np.nan])
    out_of_range = np.array([False] * 8 + [True])
    flags, threshold = stats.flag_outliers(gap, out_of_range)
    expected_threshold = 2 * np.std(gap[:8], ddof=1)
    assert threshold == pytest.approx(expected_threshold)
    assert flags.tolist() == [False] * 7 + [True, True]

    # Without 2 finite gaps only the out-of-range flag counts.
    flags, threshold = stats.flag_outliers([np.nan, 1.0], [True, False])
    assert np.isnan(threshold)
    assert flags.tolist() == [True, False]


# --------------------------------------------------------------------------- run_group
def _group_files(output_dir: Path):
    return {
        p.relative_to(output_dir).as_posix()
        for p in output_dir.rglob("*")
        if p.is_file() and not p.relative_to(output_dir).as_posix().startswith("sub-")
    }


def _read_tsv(path):
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


def test_run_group_writes_every_output(cohort_dir):
    result = run_group(cohort_dir, n_boot=200)

    assert _group_files(cohort_dir) == GROUP_FILES  # also: no temporary files left behind
    assert result["report"] == cohort_dir / "group.html"
    assert set(result["figures"]) == {
        "predicted_vs_chronological", "bland_altman", "gap_distribution", "growth_chart"
    }
    assert result["n_sessions"] == 9 and result["n_with_age"] == 8 and result["n_used"] == 7

    # Cohort table: the participant rows plus the corrected gap and the outlier flag.
    table = _read_tsv(cohort_dir / "group_brainage.tsv")
    assert table.columns.tolist() == COLUMNS + ["brain_age_gap_corrected_months", "outlier"]
    assert table["participant_id"].tolist() == [c[0] for c in COHORT]
    chron, pred = _arrays(COHORT)
    flagged = np.array([c[4] for c in COHORT])
    has_age = np.isfinite(chron)
    used = has_age & ~flagged  # sub-06, out of range, is left out of the fit and the metrics
    beta, alpha = np.polyfit(chron[used], pred[used], 1)
    expected_gap = pred - (alpha + beta * chron)
    np.testing.assert_allclose(table["brain_age_gap_corrected_months"], expected_gap, rtol=1e-5)
    assert np.isnan(table.loc[8, "brain_age_gap_corrected_months"])
    sd = np.std(expected_gap[has_age], ddof=1)
    expected_outlier = (np.abs(np.nan_to_num(expected_gap)) > 2 * sd) | np.array(
        [c[4] for c in COHORT]
    )
    assert table["outlier"].tolist() == expected_outlier.tolist()
    assert table.loc[5, "outlier"]  # sub-06: out of range

    sidecar = json.loads((cohort_dir / "group_brainage.json").read_text())
    assert set(sidecar) == set(table.columns)
    assert all(entry["Description"] for entry in sidecar.values())
    for column in table.columns:
        if column.endswith("_months"):
            assert sidecar[column]["Units"] == "months", column
    assert sidecar["brain_volume_ml"]["Units"] == "ml"

    # Metrics equal an independent computation on the pairs with both ages.
    metrics = _read_tsv(cohort_dir / "group_metrics.tsv")
    assert metrics.columns.tolist() == ["metric", "value", "ci_low", "ci_high", "n"]
    assert metrics["metric"].tolist() == METRIC_NAMES
    assert (metrics["n"] == 7).all()
    values = dict(zip(metrics["metric"], metrics["value"]))
    err = pred[used] - chron[used]
    assert values["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
    assert values["pearson_r"] == pytest.approx(
        np.corrcoef(chron[used], pred[used])[0, 1], rel=1e-5
    )
    assert (metrics["ci_low"] <= metrics["ci_high"]).all()
    metrics_sidecar = json.loads((cohort_dir / "group_metrics.json").read_text())
    assert set(metrics_sidecar) == set(metrics.columns)
    assert set(metrics_sidecar["metric"]["Levels"]) == set(METRIC_NAMES)

    bias = json.loads((cohort_dir / "group_bias-correction.json").read_text())
    assert bias["alpha"] == pytest.approx(alpha) and bias["beta"] == pytest.approx(beta)
    assert bias["n"] == 7
    assert str(cohort_dir) in bias["fitted_on"]

    for rel in GROUP_FILES:
        if rel.endswith(".svg"):
            svg = (cohort_dir / rel).read_text()
            assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert "sub-06" in (cohort_dir / "figures/group_predicted-vs-chronological.svg").read_text()

    report = (cohort_dir / "group.html").read_text()
    for name in METRIC_NAMES:
        assert f"<td class=\"t\">{name}</td>" in report
    assert report.count("data:image/svg+xml;base64,") == 4  # with the growth chart
    assert "Smith SM" in report and "de Lange AMG" in report
    assert "reliable change index" in report and "Jacobson NS" in report  # longitudinal methods
    assert "sub-06" in report and "age_above_training_range" in report
    assert "1 of 9 subject/session(s) lack a chronological" in report
    assert "1 subject/session(s) flagged out of range" in report and "--include-flagged" in report


def test_run_group_include_flagged_keeps_out_of_range_sessions(cohort_dir):
    """#19 item 11: with include_flagged (--include-flagged) the flagged session is in the
    fit and the metrics again."""
    result = run_group(cohort_dir, n_boot=200, include_flagged=True)
    chron, pred = _arrays(COHORT)
    has_age = np.isfinite(chron)
    beta, alpha = np.polyfit(chron[has_age], pred[has_age], 1)
    assert result["n_used"] == 8
    assert result["bias_correction_params"]["beta"] == pytest.approx(beta)
    assert result["metrics"]["mae"]["value"] == pytest.approx(
        np.abs(pred[has_age] - chron[has_age]).mean())
    assert not any("--include-flagged" in note for note in result["notes"])


def test_run_group_copies_participant_values_unchanged(cohort_dir):
    """#19 item 11: group_brainage.tsv holds the participants' text as written (1214.644 was
    re-formatted as 1214.64, 0.900 as 0.9)."""
    tsv = cohort_dir / "sub-01" / "anat" / "sub-01_brainage.tsv"
    header, row = tsv.read_text().splitlines()
    values = dict(zip(header.split("\t"), row.split("\t")))
    values.update(brain_volume_ml="1214.644", interval_coverage="0.900",
                  predicted_age_months="3.10000001")
    tsv.write_text(header + "\n" + "\t".join(values[c] for c in header.split("\t")) + "\n")
    run_group(cohort_dir, n_boot=50)
    lines = (cohort_dir / "group_brainage.tsv").read_text().splitlines()
    columns = lines[0].split("\t")
    first = dict(zip(columns, lines[1].split("\t")))
    for column in header.split("\t"):
        assert first[column] == values[column], column


def test_run_group_refuses_outputs_of_several_models(cohort_dir):
    """#19 item 11: sessions predicted by different model bundles are not pooled."""
    tsv = cohort_dir / "sub-03" / "anat" / "sub-03_brainage.tsv"
    tsv.write_text(tsv.read_text().replace("0" * 64, "a" * 64))
    with pytest.raises(InputError, match=r"come from 2 models \(000000000000 \(8 session\(s\), "
                                         r"e\.g\. sub-01\), aaaaaaaaaaaa \(1 session\(s\), e\.g\. sub-03\)\)"):
        run_group(cohort_dir, n_boot=50)
    assert not (cohort_dir / "group_brainage.tsv").exists()


def test_run_group_is_reproducible(cohort_dir):
    run_group(cohort_dir, n_boot=100)
    first = {rel: (cohort_dir / rel).read_bytes() for rel in GROUP_FILES}
    run_group(cohort_dir, n_boot=100)
    for rel in GROUP_FILES:
        assert (cohort_dir / rel).read_bytes() == first[rel], rel


def test_run_group_reuses_saved_bias_correction(cohort_dir, tmp_path):
    run_group(cohort_dir, n_boot=50)
    saved = cohort_dir / "group_bias-correction.json"
    params_a = json.loads(saved.read_text())

    cohort_b = _write_cohort(tmp_path / "cohort-b", COHORT_B)
    result = run_group(cohort_b, bias_correction_file=saved, n_boot=50)
    params_b = json.loads((cohort_b / "group_bias-correction.json").read_text())
    assert params_b["alpha"] == params_a["alpha"]
    assert params_b["beta"] == params_a["beta"]
    assert params_b["fitted_on"] == params_a["fitted_on"]
    assert params_b["reused_from"] == str(saved)

    chron_b, pred_b = _arrays(COHORT_B)
    table_b = _read_tsv(cohort_b / "group_brainage.tsv")
    np.testing.assert_allclose(
        table_b["brain_age_gap_corrected_months"],
        pred_b - (params_a["alpha"] + params_a["beta"] * chron_b),
        rtol=1e-5,
    )
    # A fit on cohort B itself would differ: the reused parameters were really used.
    own_beta = np.polyfit(chron_b, pred_b, 1)[0]
    assert abs(own_beta - params_a["beta"]) > 0.1
    assert result["bias_correction_params"]["beta"] == params_a["beta"]
    assert "reused from" in (cohort_b / "group.html").read_text()


def test_run_group_without_chronological_ages(cohort_dir):
    run_group(cohort_dir, n_boot=50)  # an earlier run with ages
    _write_cohort(cohort_dir, COHORT, drop_ages=True)

    result = run_group(cohort_dir, n_boot=50)
    # Table and report only; outputs of the earlier run that need ages are gone.
    assert _group_files(cohort_dir) == {"group_brainage.tsv", "group_brainage.json", "group.html"}
    assert result["metrics"] is None and result["metrics_tsv"] is None
    assert result["bias_correction"] is None and result["figures"] == {}
    assert result["n_with_age"] == 0

    table = _read_tsv(cohort_dir / "group_brainage.tsv")
    assert len(table) == len(COHORT)
    assert table["brain_age_gap_corrected_months"].isna().all()
    assert table["outlier"].tolist() == [c[4] for c in COHORT]  # out-of-range only
    report = (cohort_dir / "group.html").read_text()
    assert "No chronological age is available" in report
    assert "data:image/svg+xml" not in report
    assert "sub-06" in report  # still listed as an out-of-range outlier


def test_run_group_without_outputs_raises(tmp_path):
    with pytest.raises(InputError, match="participant level"):
        run_group(tmp_path, n_boot=10)
    assert not (tmp_path / "group.html").exists()


# --------------------------------------------------------------------------- workflow
def test_init_group_wf_graph(cohort_dir):
    wf = init_group_wf(output_dir=cohort_dir)
    assert wf.name == "group_wf"
    assert sorted(wf.list_node_names()) == ["outputnode", "run_group"]
    node = wf.get_node("run_group")
    assert node.inputs.output_dir == str(cohort_dir.absolute())
    assert node.inputs.bias_correction_file == ""
    assert node.inputs.n_boot == 2000


def test_init_group_wf_runs(cohort_dir, tmp_path):
    wf = init_group_wf(output_dir=cohort_dir, n_boot=50, name="grp")
    wf.base_dir = str(tmp_path / "work")
    graph = wf.run(plugin="Linear")
    node = next(n for n in graph.nodes() if n.name == "run_group")
    assert node.result.outputs.report == str(cohort_dir / "group.html")
    assert node.result.outputs.metrics_tsv == str(cohort_dir / "group_metrics.tsv")
    assert _group_files(cohort_dir) == GROUP_FILES
