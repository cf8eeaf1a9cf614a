"""End-to-end, longitudinal (#16): a demo cohort with sessions, built from ../shared/demo_bids.

Three infants are each scanned at two ages (the demo's age-specific templates assigned to
sessions, ages in ``sessions.tsv``); a fourth has one session without an age. ``participant``
then ``group`` must write the trajectory table, the mixed model and the growth chart, and each
session's page must link the infant's other sessions. Nothing is written into ../shared.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import DEMO  # noqa: E402

from bids_infantage.utils.bids import resolve_link_file

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="../shared/demo_bids not found")

#: infant -> [(session, demo subject whose images it gets, age in months or None)]
COHORT = {
    "A": [("1", "m00", 0.0), ("2", "m06", 6.0)],
    "B": [("1", "m06", 6.0), ("2", "m12", 12.0)],
    "C": [("1", "m12", 12.0), ("2", "m24", 24.0)],
    "D": [("1", "m09", None)],
}


def _build(root: Path) -> Path:
    bids = root / "bids"
    bids.mkdir()
    for name in ("dataset_description.json", "T1w.json", "T2w.json"):
        (bids / name).write_text((DEMO / name).read_text())
    (bids / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{s}\n" for s in COHORT))
    for subject, sessions in COHORT.items():
        lines = ["session_id\tage_months"]
        for session, source, age in sessions:
            anat = bids / f"sub-{subject}" / f"ses-{session}" / "anat"
            anat.mkdir(parents=True)
            for suffix in ("T1w", "T2w"):
                # copies of the link targets (the demo's images are links into templateflow/,
                # stored as text files where git does not make links): the validator reads them
                src = resolve_link_file(DEMO / f"sub-{source}" / "anat" / f"sub-{source}_{suffix}.nii.gz")
                shutil.copyfile(src, anat / f"sub-{subject}_ses-{session}_{suffix}.nii.gz")
            lines.append(f"ses-{session}\t{'n/a' if age is None else age}")
        (bids / f"sub-{subject}" / f"sub-{subject}_sessions.tsv").write_text("\n".join(lines) + "\n")
    return bids


@pytest.fixture(scope="module")
def cohort_run(tmp_path_factory):
    from bids_infantage.cli.run import main

    base = tmp_path_factory.mktemp("longitudinal")
    bids = _build(base)
    out, work = base / "out", base / "work"
    rc = main([str(bids), str(out), "participant", "-w", str(work), "--nprocs", "2"])
    rc_group = main([str(bids), str(out), "group", "-w", str(work)])
    return {"out": out, "rc": rc, "rc_group": rc_group}


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_participant_and_group_complete(cohort_run):
    assert cohort_run["rc"] == 0 and cohort_run["rc_group"] == 0


def test_trajectory_table(cohort_run):
    out = cohort_run["out"]
    rows = {r["participant_id"]: r for r in _rows(out / "group_trajectories.tsv")}
    assert set(rows) == {"sub-A", "sub-B", "sub-C"}  # D: one session, no age
    table = _rows(out / "group_brainage.tsv")
    for subject in ("A", "B", "C"):
        row = rows[f"sub-{subject}"]
        assert row["n_sessions_used"] == "2" and row["sessions"] == "ses-1,ses-2"
        sessions = [r for r in table if r["participant_id"] == f"sub-{subject}"]
        (a0, p0), (a1, p1) = sorted((float(r["chronological_age_months"]),
                                     float(r["predicted_age_months"])) for r in sessions)
        # the rate is the two-point slope of this cohort's own predictions; the TSV writes 6
        # significant digits (%.6g), so a relative 1e-5 (1.79817 for 1.7981667 failed 1e-6)
        assert float(row["maturation_rate"]) == pytest.approx((p1 - p0) / (a1 - a0), rel=1e-5)
        assert row["maturation_rate_se"] == "n/a"  # two sessions
        assert row["gap_widening"] in ("true", "false")
    (sub_d,) = [r for r in table if r["participant_id"] == "sub-D"]
    assert sub_d["chronological_age_months"] == "n/a"
    sidecar = json.loads((out / "group_trajectories.json").read_text())
    assert set(rows["sub-A"]) <= set(sidecar)
    assert sidecar["ReferenceTrajectory"]["rate"] > 0


def test_mixed_model(cohort_run):
    mixed = json.loads((cohort_run["out"] / "group_mixed-model.json").read_text())
    assert mixed["n_subjects"] == 3 and mixed["n_sessions"] == 6
    slope = mixed["fixed_effects"]["age_c"]
    # the demo predictions track age (same-family images): the cohort's slope is near 1
    assert slope["ci_low"] <= slope["estimate"] <= slope["ci_high"]
    assert 0.5 < slope["estimate"] < 1.5
    assert set(mixed["random_effects"]) == {"sub-A", "sub-B", "sub-C"}


def test_growth_chart_and_report(cohort_run):
    out = cohort_run["out"]
    chart = out / "figures" / "group_growth-chart.svg"
    root = ElementTree.parse(chart).getroot()
    assert root.tag.endswith("svg")
    text = (out / "group.html").read_text()
    assert "<h2>Trajectories</h2>" in text and 'alt="growth_chart"' in text
    assert '<a href="sub-A_ses-2.html">' in text
    assert "Mixed model not fitted" not in text


def test_session_pages_link_siblings(cohort_run):
    out = cohort_run["out"]
    page = (out / "sub-B_ses-1.html").read_text()
    assert '<section id="sessions">' in page and '<a href="sub-B_ses-2.html">' in page
    assert '<a href="sub-A_ses-2.html">' not in page  # only the infant's own sessions
    assert '<section id="sessions">' not in (out / "sub-D_ses-1.html").read_text()
