"""Longitudinal group level (#16): trajectories and the mixed model against statsmodels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bids_infantage.group import longitudinal


def _cohort(rates=(1.0, 1.0, 1.0, 1.0, 0.5), ages=(3.0, 9.0, 15.0), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s, rate in enumerate(rates):
        for k, age in enumerate(ages):
            pred = 0.5 + rate * age + rng.normal(0, 0.4)
            rows.append({"participant_id": f"sub-{s}", "session_id": f"ses-{k}",
                         "chronological_age_months": age, "predicted_age_months": pred,
                         "qc_out_of_range": False, "brain_age_gap_corrected_months": np.nan})
    rows.append({"participant_id": "sub-single", "session_id": "ses-0",
                 "chronological_age_months": 6.0, "predicted_age_months": 6.1,
                 "qc_out_of_range": False, "brain_age_gap_corrected_months": np.nan})
    rows.append({"participant_id": "sub-noage", "session_id": "ses-0",
                 "chronological_age_months": np.nan, "predicted_age_months": 6.1,
                 "qc_out_of_range": False, "brain_age_gap_corrected_months": np.nan})
    rows.append({"participant_id": "sub-noage", "session_id": "ses-1",
                 "chronological_age_months": np.nan, "predicted_age_months": 9.0,
                 "qc_out_of_range": False, "brain_age_gap_corrected_months": np.nan})
    return pd.DataFrame(rows)


def test_mixed_model_matches_statsmodels():
    import statsmodels.formula.api as smf

    table = _cohort()
    sessions = longitudinal.longitudinal_sessions(table)
    assert set(sessions["participant_id"]) == {f"sub-{i}" for i in range(5)}  # no single, no age
    fit = longitudinal.fit_mixed_model(sessions)
    data = sessions.assign(age_c=sessions["chronological_age_months"] - 12.0)
    ref = smf.mixedlm("predicted_age_months ~ age_c", data, groups=data["participant_id"],
                      re_formula="~age_c").fit(reml=True, method=["lbfgs", "powell"])
    assert fit["fixed_effects"]["age_c"]["estimate"] == pytest.approx(ref.fe_params["age_c"], rel=1e-6)
    assert fit["fixed_effects"]["Intercept"]["se"] == pytest.approx(ref.bse_fe["Intercept"], rel=1e-6)
    assert fit["variance_components"]["residual_var"] == pytest.approx(ref.scale, rel=1e-6)
    assert fit["n_subjects"] == 5 and fit["n_sessions"] == 15
    # the delayed infant has the lowest random slope
    slopes = {k: v[1] for k, v in fit["random_effects"].items()}
    assert min(slopes, key=slopes.get) == "sub-4"


def test_trajectories_slopes_and_widening():
    table = _cohort()
    sessions = longitudinal.longitudinal_sessions(table)
    fit = longitudinal.fit_mixed_model(sessions)
    traj = longitudinal.subject_trajectories(table, mixed=fit).set_index("participant_id")
    assert list(traj.index) == [f"sub-{i}" for i in range(5)]
    for subject, group in sessions.groupby("participant_id"):
        slope = np.polyfit(group["chronological_age_months"], group["predicted_age_months"], 1)[0]
        assert traj.loc[subject, "maturation_rate"] == pytest.approx(slope)
    assert traj.loc["sub-4", "maturation_rate"] == pytest.approx(0.5, abs=0.15)
    assert traj.loc["sub-4", "gap_widening"] is True or traj.loc["sub-4", "gap_widening"] == True  # noqa: E712
    assert traj.loc["sub-4", "gap_change_months"] < -4
    # the on-track infants are not flagged: the reference rate is the cohort's median, not a
    # least-squares fit the delayed infant pulls down
    assert not traj.loc[[f"sub-{i}" for i in range(4)], "gap_widening"].astype(bool).any()
    assert traj.attrs["reference_rate"] == pytest.approx(1.0, abs=0.1)


def test_widening_not_fired_by_bias_correction():
    """With the cohort's least-squares bias correction (pulled by a delayed minority), the
    on-track infants' corrected gaps drift, but only the delayed infant is flagged."""
    table = _cohort(rates=(1.0, 1.0, 1.0, 0.5), ages=(3.0, 12.0, 21.0), seed=3)
    beta, alpha = np.polyfit(table["chronological_age_months"].dropna(),
                             table["predicted_age_months"][table["chronological_age_months"].notna()], 1)
    chron = table["chronological_age_months"]
    table["brain_age_gap_corrected_months"] = table["predicted_age_months"] - (alpha + beta * chron)
    sessions = longitudinal.longitudinal_sessions(table)
    fit = longitudinal.fit_mixed_model(sessions)
    traj = longitudinal.subject_trajectories(table, bias_beta=beta, mixed=fit).set_index("participant_id")
    assert beta < 0.95  # the least-squares fit is pulled by the delayed infant
    assert traj["gap_widening"].astype(bool).to_dict() == {
        "sub-0": False, "sub-1": False, "sub-2": False, "sub-3": True}
    assert traj.loc["sub-0", "n_sessions"] == 3


def test_too_few_subjects_no_mixed_model():
    table = _cohort(rates=(1.0, 0.8))
    sessions = longitudinal.longitudinal_sessions(table)
    assert longitudinal.fit_mixed_model(sessions) is None
    traj = longitudinal.subject_trajectories(table)
    assert len(traj) == 2 and np.isnan(traj["mixed_slope_deviation"]).all()
