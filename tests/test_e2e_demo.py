"""End-to-end: participant and group levels on ../shared/demo_bids (the README's demo).

This is the CI's full run (not marked slow). It reads ../shared in place and never writes
into it.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ["m00", "m06", "m09", "m12", "m24"]
AGES = {"m00": 0, "m06": 6, "m09": 9, "m12": 12, "m24": 24}

from conftest import DEMO  # noqa: E402  (demo_run is in conftest)
from conftest import input_state as _input_state  # noqa: E402
from conftest import output_tree as _tree  # noqa: E402

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="../shared/demo_bids not found")


def _expected(group: bool) -> set[str]:
    lines = [ln.strip() for ln in (ROOT / "tests" / "data" / "expected_outputs.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    out = set()
    for ln in lines:
        if ln.startswith("group:"):
            if group:
                out.add(ln[len("group:"):])
        elif "{sub}" in ln:
            out |= {ln.format(sub=f"sub-{s}") for s in SUBJECTS}
        else:
            out.add(ln)
    return out


def _read_table(path: Path) -> dict:
    with open(path) as fh:
        return next(csv.DictReader(fh, delimiter="\t"))


def test_participant_level_completes(demo_run):
    from bids_infantage.models.bundle.resolve import load_bundle

    bundle = load_bundle()
    best = bundle.choose_configuration(True, True)
    assert demo_run["rc"] == 0
    for sub in SUBJECTS:
        row = _read_table(demo_run["out"] / f"sub-{sub}" / "anat" / f"sub-{sub}_brainage.tsv")
        if sub == "m24":
            # the BMEXInfant 24-month T1w and T2w are not one brain in register (edge
            # correlation 0.22 after registration): auto reads the better single image, and says so
            assert row["model_configuration"] == bundle.choose_configuration(True, True, same_brain=False)
            assert "may not show the same brain" in row["qc_flags"], row["qc_flags"]
            assert "--modality auto read the T2w alone" in row["qc_flags"], row["qc_flags"]
        else:
            assert row["model_configuration"] == best  # lowest validation MAE in the bundle
            assert "same brain" not in row["qc_flags"], row["qc_flags"]
        age = float(row["predicted_age_months"])
        assert float(row["predicted_age_lower_months"]) < age < float(row["predicted_age_upper_months"])
        assert float(row["chronological_age_months"]) == AGES[sub]
        assert abs(float(row["brain_age_gap_months"]) - (age - AGES[sub])) < 0.01


def test_predictions_track_age(demo_run):
    """The real trained model orders the demo templates by age and is within a few months."""
    preds = {s: float(_read_table(demo_run["out"] / f"sub-{s}" / "anat" / f"sub-{s}_brainage.tsv")
                      ["predicted_age_months"]) for s in SUBJECTS}
    assert preds["m00"] < preds["m12"] < preds["m24"]
    mae = sum(abs(preds[s] - AGES[s]) for s in SUBJECTS) / len(SUBJECTS)
    assert mae < 4.0, preds


def test_output_tree_matches_expected_list(demo_run):
    assert demo_run["tree"] == _expected(group=False)


def test_input_dataset_untouched(demo_run):
    assert _input_state() == demo_run["input_before"]


def test_outputs_pass_bids_validator(demo_run):
    exe = shutil.which("bids-validator-deno") or str(Path(sys.executable).parent / "bids-validator-deno")
    if not Path(exe).exists():
        pytest.skip("bids-validator-deno not installed (pip install bids-validator-deno)")
    proc = subprocess.run([exe, "--json", str(demo_run["out"])], capture_output=True, text=True, timeout=600)
    issues = json.loads(proc.stdout)["issues"]["issues"]
    errors = [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"]
    assert errors == []


def test_dataset_description(demo_run):
    desc = json.loads((demo_run["out"] / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    gen = desc["GeneratedBy"][0]
    assert gen["Name"] == "bids-infantage" and gen["Version"]
    assert "sha256" in gen["Description"]


def test_group_level(demo_run):
    assert demo_run["rc_group"] == 0
    tree = _tree(demo_run["out"])
    assert _expected(group=True) <= tree
    with open(demo_run["out"] / "group_metrics.tsv") as fh:
        metrics = {r["metric"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert {"mae", "rmse", "r2", "pearson_r", "spearman_rho"} <= set(metrics)
    assert float(metrics["mae"]["value"]) >= 0
    # the report says which networks gave the cohort's ages (sub-m24 is read by its T2w)
    from bids_infantage.models.bundle.resolve import load_bundle

    best = load_bundle().choose_configuration(True, True)
    assert f"Input configuration(s), session(s): {best} (4), t2w (1)" in (demo_run["out"] / "group.html").read_text()


def test_second_run_reuses_cache(demo_run):
    """Rerunning with the same work dir must not recompute cached nodes (N4 here)."""
    from bids_infantage.cli.run import main

    results = sorted(demo_run["work"].rglob("n4_t2w/result_n4_t2w.pklz"))
    assert len(results) == len(SUBJECTS)
    stamps = {p: p.stat().st_mtime_ns for p in results}
    table = demo_run["out"] / "sub-m06" / "anat" / "sub-m06_brainage.tsv"
    before = _read_table(table)["predicted_age_months"]
    rc = main([str(DEMO), str(demo_run["out"]), "participant", "-w", str(demo_run["work"]),
               "--participant-label", "m06", "--nprocs", "1", "--skip-bids-validation"])
    assert rc == 0
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    assert _read_table(table)["predicted_age_months"] == before


def test_report_renders_in_chromium(demo_run, tmp_path):
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    png = tmp_path / "report.png"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_report.py"),
                           str(demo_run["out"] / "sub-m06.html"), str(png)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert png.stat().st_size > 20000


def _arrays_and_texts(folder: Path) -> dict:
    """Content of a subject's derivatives: NIfTI affine + data, numbers of xfm files, text of
    TSV/JSON files; figures only by name (SVG ids vary between runs)."""
    import re

    import nibabel as nb
    import numpy as np

    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.name.endswith(".nii.gz"):
            img = nb.load(path)
            out[rel] = (img.affine, img.get_fdata(dtype="float32"))
        elif path.suffix == ".txt":
            out[rel] = np.array([float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?",
                                                              path.read_text().split("\n", 2)[2])])
        elif path.suffix in (".tsv", ".json"):
            out[rel] = path.read_text()
        elif path.is_file():
            out[rel] = None
    return out


def test_killed_run_resumes_to_identical_outputs(demo_run, tmp_path):
    """Kill a fresh run of sub-m06 (SIGKILL to the whole process group) once its N4 results are
    cached, rerun with the same -w: the run completes without recomputing N4, leaves no
    partial file, and its derivatives equal the uninterrupted run's (demo_run: another work
    dir, MultiProc): identical tables (predicted ages) and sidecars, images and transforms equal
    to round-off (Linear and MultiProc runs differ in the last bits of the rigid transform).
    This is also the two-run determinism check: nothing of the resumed run comes from
    demo_run's cache."""
    import signal
    import time

    from bids_infantage.cli.run import main

    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(DEMO), str(out), "participant", "--participant-label", "m06", "-w", str(work),
            "--nprocs", "1", "--skip-bids-validation"]
    proc = subprocess.Popen([sys.executable, "-m", "bids_infantage.cli.run", *args],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while not list(work.rglob("n4_t1w/result_n4_t1w.pklz")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "N4 results never appeared"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "sub-m06" / "anat" / "sub-m06_brainage.tsv").exists()
    n4 = sorted(work.rglob("n4_t*w/result_n4_t*w.pklz"))
    stamps = {p: p.stat().st_mtime_ns for p in n4}

    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in n4} == stamps  # resumed, not recomputed
    assert not list(out.rglob("*.partial"))
    resumed = _arrays_and_texts(out / "sub-m06")
    reference = _arrays_and_texts(demo_run["out"] / "sub-m06")
    assert sorted(resumed) == sorted(reference)
    import numpy as np

    for rel, content in reference.items():
        if isinstance(content, tuple):  # images: same grid, values equal to float32 round-off
            assert np.array_equal(resumed[rel][0], content[0]), rel
            assert np.allclose(resumed[rel][1], content[1], rtol=1e-5, atol=1e-5), rel
        elif isinstance(content, np.ndarray):  # transforms: equal to 1e-9
            assert np.allclose(resumed[rel], content, rtol=1e-9, atol=1e-9), rel
        else:  # tables and sidecars (ages to 3 decimals): identical text
            assert resumed[rel] == content, rel


def test_participant_outputs_feed_cross_validation(demo_run, tmp_path):
    """bids-infantage-cv reads the demo derivatives back: the reference-space channels give the
    same predicted ages as the pipeline (to float16 storage), and a tiny 2-fold CV on the five
    templates runs through to a bundle and a report."""
    import numpy as np

    from bids_infantage.models import cv
    from bids_infantage.models.bundle.resolve import load_bundle

    data = cv.load_derivatives_cohort(demo_run["out"])
    assert data["id"] == [f"sub-{s}" for s in SUBJECTS]
    assert data["age"].tolist() == [AGES[s] for s in SUBJECTS]
    assert data["has"].all() and data["wm"].any(axis=(1, 2, 3)).all()
    bundle = load_bundle()
    for i, sub in enumerate(SUBJECTS):
        row = _read_table(demo_run["out"] / f"sub-{sub}" / "anat" / f"sub-{sub}_brainage.tsv")
        pred = bundle.predict(data["image"][i].astype(np.float32), float(data["volume_ml"][i]),
                              row["model_configuration"], saliency=False)
        assert pred["age"] == pytest.approx(float(row["predicted_age_months"]), abs=0.02), sub
    rc = cv.main([str(demo_run["out"]), str(tmp_path / "cv"), "--tiny", "--folds", "2",
                  "--repeats", "1", "--configs", "t1w+t2w", "--nprocs", "1"])
    assert rc == 0
    assert (tmp_path / "cv" / "cv_report.html").is_file()
    assert load_bundle(str(tmp_path / "cv" / "model")).meta["training"]["data"]["n"] == 5


def test_older_brain_is_flagged_out_of_range(demo_run):
    """The 24-month input with the brain volume of an older child is flagged out of range
    (and says why) instead of being reported as a confident 24 months; the real 24-month
    volume is not flagged. The volume enters the model as a scalar after affine
    normalization, so this is what a larger brain with 24-month contrast looks like."""
    import numpy as np

    from bids_infantage.models import cv
    from bids_infantage.models.bundle.resolve import load_bundle

    data = cv.load_derivatives_cohort(demo_run["out"])
    i = data["id"].index("sub-m24")
    bundle = load_bundle()
    image = data["image"][i].astype(np.float32)
    typical = bundle.predict(image, 1192.0, "t1w+t2w", saliency=False)  # BCP 24-month mean
    assert not typical["out_of_range"] and typical["flags"] == []
    for volume in (1500.0, 1800.0):  # +3 SD and beyond: an older child's or adult's brain size
        pred = bundle.predict(image, volume, "t1w+t2w", saliency=False)
        assert pred["out_of_range"], volume
        assert any("brain volume" in f for f in pred["flags"]), pred["flags"]
