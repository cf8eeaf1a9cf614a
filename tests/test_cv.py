"""Cross-validation and retraining (``bids-infantage-cv``).

The CI's small CV run: a tiny network on 16 synthetic infants from the default model's
generator (the atlas is built from ../shared/templateflow in place, about 2 minutes), two
configurations, 4 folds x 2 repeats, then the final bundle, which ``--model`` accepts.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bids_infantage.models import cv
from bids_infantage.utils.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_splits_are_stratified_and_cover_everyone():
    ages = np.random.default_rng(3).uniform(0, 24, 23)
    splits = cv.cv_splits(ages, folds=5, repeats=2, seed=0)
    assert len(splits) == 10
    block = np.argsort(np.argsort(ages)) // 5  # age-rank blocks of 5 subjects (4 full ones)
    for r in range(2):
        tests = [te for rr, _, _, te in splits if rr == r]
        assert sorted(np.concatenate(tests)) == list(range(23))  # each subject tested once
        for _, _, tr, te in [s for s in splits if s[0] == r]:
            assert not set(tr) & set(te) and len(tr) + len(te) == 23
            assert 4 <= len(te) <= 5
            # stratified: one subject of every full age block in every fold
            assert sorted(b for b in block[te] if b < 4) == [0, 1, 2, 3]
    first = [tuple(te) for rr, _, _, te in splits if rr == 0]
    second = [tuple(te) for rr, _, _, te in splits if rr == 1]
    assert first != second  # repeats are different random splits
    again = cv.cv_splits(ages, folds=5, repeats=2, seed=0)
    assert all(np.array_equal(a[3], b[3]) for a, b in zip(splits, again))  # seeded


def test_too_few_subjects_is_a_clear_error():
    with pytest.raises(InputError, match="cannot be split into 5 folds.*--folds"):
        cv.cv_splits(np.arange(6.0), folds=5, repeats=1, seed=0)


def test_no_labelled_sessions(tmp_path):
    with pytest.raises(InputError, match="no session with a brain-age table"):
        cv.load_derivatives_cohort(tmp_path)


@pytest.fixture(scope="module")
def synthetic_cv(tmp_path_factory):
    if not (SHARED / "templateflow").is_dir():
        pytest.skip("../shared/templateflow not found (the generator's templates)")
    base = tmp_path_factory.mktemp("cv")
    out = base / "out"
    rc = cv.main([str(out), "--synthetic", "16", "--cache-dir", str(base / "cache"),
                  "--shared", str(SHARED), "--tiny", "--configs", "t1w", "ratio",
                  "--folds", "4", "--repeats", "2", "--nprocs", "2"])
    return {"rc": rc, "out": out, "cache": base / "cache"}


def test_small_cv_run_writes_statistics(synthetic_cv):
    out = synthetic_cv["out"]
    assert synthetic_cv["rc"] == 0
    folds = _rows(out / "cv_folds.tsv")
    assert len(folds) == 2 * 4 * 2  # configurations x folds x repeats
    assert {r["configuration"] for r in folds} == {"t1w", "ratio"}
    assert all(int(r["n_train"]) + int(r["n_test"]) == 16 for r in folds)
    preds = _rows(out / "cv_predictions.tsv")
    assert len(preds) == 2 * 2 * 16  # each subject predicted once per repeat and configuration
    for r in folds:  # fold MAE recomputed from the predictions
        part = [p for p in preds if (p["configuration"], p["repeat"], p["fold"])
                == (r["configuration"], r["repeat"], r["fold"])]
        mae = np.mean([abs(float(p["predicted_age"]) - float(p["age"])) for p in part])
        assert float(r["mae"]) == pytest.approx(mae, rel=1e-4)
    anova = _rows(out / "cv_anova.tsv")[0]
    groups = [[float(r["mae"]) for r in folds if r["configuration"] == c] for c in ("t1w", "ratio")]
    assert float(anova["f"]) == pytest.approx(stats.f_oneway(*groups).statistic, rel=1e-4)
    pair = _rows(out / "cv_pairwise.tsv")
    assert len(pair) == 1 and {pair[0]["a"], pair[0]["b"]} == {"t1w", "ratio"}
    report = (out / "cv_report.html").read_text()
    assert "One-way ANOVA" in report and "Mann" in report


def test_cv_bundle_is_accepted_by_model_option(synthetic_cv, tmp_path):
    from bids_infantage.models.bundle import load_bundle

    bundle = load_bundle(str(synthetic_cv["out"] / "model"))
    assert sorted(bundle.meta["configurations"]) == ["ratio", "t1w"]
    cal = bundle.meta["configurations"]["t1w"]["calibration"]
    assert cal["fitted_on"].startswith("out-of-fold")
    assert bundle.choose_configuration(True, True, "auto") in ("ratio", "t1w")
    sample = cv.load_sample_files(sorted(synthetic_cv["cache"].rglob("sample-*.npz"))[:1])
    pred = bundle.predict(sample["image"][0].astype(np.float32), float(sample["volume_ml"][0]),
                          "ratio", saliency=False)
    assert np.isfinite(pred["age"]) and pred["sd"] > 0
