"""Cross-validation and retraining (``bids-infantage-cv``).

The CI's small CV run: tiny networks on 16 synthetic infants from the default model's
generator (the atlas is built from ../shared/templateflow in place, about 2 minutes): two
configurations of the 3D model and the Wada et al. five-level model, 4 folds x 2 repeats,
then the final bundle, which ``--model`` accepts.
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
                  "--shared", str(SHARED), "--tiny", "--configs", "t1w", "ratio", "--wada", "t1w",
                  "--folds", "4", "--repeats", "2", "--nprocs", "2"])
    return {"rc": rc, "out": out, "cache": base / "cache"}


def test_small_cv_run_writes_statistics(synthetic_cv):
    out = synthetic_cv["out"]
    assert synthetic_cv["rc"] == 0
    folds = _rows(out / "cv_folds.tsv")
    models = ("t1w", "ratio", "wada:t1w")
    assert len(folds) == 3 * 4 * 2  # models x folds x repeats
    assert {r["configuration"] for r in folds} == set(models)
    assert all(int(r["n_train"]) + int(r["n_test"]) == 16 for r in folds)
    preds = _rows(out / "cv_predictions.tsv")
    assert len(preds) == 3 * 2 * 16  # each subject predicted once per repeat and model
    for r in folds:  # fold MAE recomputed from the predictions
        part = [p for p in preds if (p["configuration"], p["repeat"], p["fold"])
                == (r["configuration"], r["repeat"], r["fold"])]
        mae = np.mean([abs(float(p["predicted_age"]) - float(p["age"])) for p in part])
        assert float(r["mae"]) == pytest.approx(mae, rel=1e-4)
    anova = _rows(out / "cv_anova.tsv")[0]
    groups = [[float(r["mae"]) for r in folds if r["configuration"] == c] for c in models]
    assert float(anova["f"]) == pytest.approx(stats.f_oneway(*groups).statistic, rel=1e-4)
    pair = _rows(out / "cv_pairwise.tsv")
    assert {(r["a"], r["b"]) for r in pair} == {("t1w", "ratio"), ("t1w", "wada:t1w"),
                                                ("ratio", "wada:t1w")}
    report = (out / "cv_report.html").read_text()
    assert "One-way ANOVA" in report and "Mann" in report


def test_cv_bundle_is_accepted_by_model_option(synthetic_cv, tmp_path):
    from bids_infantage.models.bundle.resolve import load_bundle

    bundle = load_bundle(str(synthetic_cv["out"] / "model"))
    assert sorted(bundle.meta["configurations"]) == ["ratio", "t1w"]
    cal = bundle.meta["configurations"]["t1w"]["calibration"]
    assert cal["fitted_on"].startswith("out-of-fold")
    assert bundle.choose_configuration(True, True, "auto") in ("ratio", "t1w")
    # the default network and input: the shipped model's (mean+max pooling, no size input)
    assert bundle.meta["architecture_kwargs"]["pooling"] == "mean+max"
    assert bundle.meta["normalization"]["volume_feature"] == "none"
    sample = cv.load_sample_files(sorted(synthetic_cv["cache"].rglob("sample-*.npz"))[:1])
    pred = bundle.predict(sample["image"][0].astype(np.float32), float(sample["volume_ml"][0]),
                          "ratio", saliency=False)
    assert np.isfinite(pred["age"]) and pred["sd"] > 0


def test_defaults_are_the_shipped_models_network_and_input(tmp_path):
    """Without --settings a cross-validation trains the network, optimizer and input of the
    shipped default's recipe (mean+max pooling, its learning rate, no brain-size input,
    contrast augmentation, the configurations' own training gamma), not the previous
    default's (mean pooling, lr 2e-3, size input); a configuration's setting it cannot have is
    refused before any training."""
    import argparse
    import json

    from bids_infantage.models.cv.cli import cv_settings
    from bids_infantage.models.training.recipes import DEFAULT_RECIPE, RECIPES

    recipe = RECIPES[DEFAULT_RECIPE]
    flags = dict.fromkeys(("folds", "repeats", "seed", "epochs", "members", "final_members"))
    settings = cv_settings(argparse.Namespace(tiny=False, settings=None, **flags))
    assert settings["pooling"] == recipe["pooling"] == "mean+max"
    assert settings["lr"] == recipe["lr"] and settings["input"] == recipe["input"]
    assert settings["input"]["volume_feature"] == "none"
    # the recipe's settings of single configurations (wide training gamma with a T2w) too
    assert settings["configurations"] == recipe["configurations"]
    assert settings["configurations"]["ratio"]["input"]["gamma_sd"] == 0.5
    settings["input"]["augment"] = "changed"  # a copy: the recipe is not modified
    assert recipe["input"]["augment"] == "contrast"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"configurations": {"t2w": {"pooling": "mean"}}}))
    with pytest.raises(InputError, match="bad.json.*cannot set pooling"):
        cv_settings(argparse.Namespace(tiny=False, settings=bad, **flags))


def test_settings_file_sets_the_network_and_input(synthetic_cv, tmp_path, capsys):
    """--settings gives the cross-validation another network and input than the default (the
    previous default's mean pooling and brain-size input): the final bundle is built with them,
    so its age moves with the volume input; cohort keys of bids-infantage-train are refused in
    one line."""
    import json

    from bids_infantage.models.bundle.resolve import load_bundle

    folder = sorted({p.parent for p in synthetic_cv["cache"].rglob("sample-*.npz")})[0]
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"pooling": "mean", "input": {"volume_feature": "log"}}))
    out = tmp_path / "out"
    rc = cv.main([str(out), "--synthetic-dir", str(folder), "--tiny", "--configs", "t1w",
                  "--folds", "2", "--repeats", "1", "--nprocs", "1", "--settings", str(settings)])
    assert rc == 0
    bundle = load_bundle(str(out / "model"))
    assert bundle.meta["training"]["settings"]["pooling"] == "mean"
    assert bundle.meta["training"]["settings"]["input"]["augment"] == "contrast"  # merged
    assert bundle.meta["normalization"]["volume_feature"] != "none"
    assert bundle.meta["architecture_kwargs"].get("pooling", "mean") == "mean"
    sample = cv.load_sample_files(sorted(folder.glob("sample-*.npz"))[:1])
    image = sample["image"][0].astype(np.float32)
    ages = [bundle.predict(image, ml, "t1w", saliency=False)["age"] for ml in (600.0, 1200.0)]
    assert np.all(np.isfinite(ages)) and abs(ages[0] - ages[1]) > 1e-4

    settings.write_text(json.dumps({"synthesis": "milestones", "lr": 5e-4}))
    rc = cv.main([str(tmp_path / "refused"), "--synthetic-dir", str(folder), "--tiny",
                  "--settings", str(settings)])
    assert rc == 2 and not (tmp_path / "refused").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "synthesis cannot be set in a cross-validation" in err[0]


def test_preprocessing_is_recorded_with_cohort_and_bundle(synthetic_cv):
    """The synthetic cohort records the preprocessing its samples went through, and the bundle
    carries it (provenance: a model is only valid with the preprocessing it was trained on)."""
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.dataset import cohort_preprocessing
    from bids_infantage.models.preprocess import preprocessing_settings

    current = preprocessing_settings()
    assert current["n4"]["shrink_mm"] > 0 and current["rigid"]["transform"] == "Euler3D"
    from bids_infantage.models.dataset import cohort_generator
    from bids_infantage.models.synthesis.atlas import ATLAS_VERSION

    folders = {p.parent for p in synthetic_cv["cache"].rglob("sample-*.npz")}
    assert folders and all(cohort_preprocessing(f) == current for f in folders)
    assert all(cohort_generator(f) == {"atlas_version": ATLAS_VERSION} for f in folders)
    bundle = load_bundle(str(synthetic_cv["out"] / "model"))
    assert bundle.meta["training"]["preprocessing"] == current
    shipped = load_bundle().meta["training"]["preprocessing"]
    # a mixed cohort records each part's: the template blend went through the full pipeline
    shipped = shipped.get("templates", shipped)
    assert set(shipped) >= {"n4", "rigid", "normalization"}


def test_wada_levels_and_network():
    import torch

    from bids_infantage.models.nets.wada2d import (
        WADA_LEVELS,
        WadaLevelNet,
        blend_age_ranges,
        load_levels,
        locate_levels,
    )

    # a toy label map: brainstem z 5-14 with cerebellar WM widest at z 8, ventral DC widest at
    # z 12, thalamus widest at z 18, ventricles up to z 24, brain up to z 40
    labels = np.zeros((48, 20, 20), np.int16)
    labels[:41, 2:18, 2:18] = 2
    labels[5:15, 9:11, 9:11] = 16
    for z, w in ((6, 2), (7, 4), (8, 6), (9, 3)):
        labels[z, 2:2 + w, 2:4] = 7
    for z, w in ((11, 2), (12, 4), (13, 1)):
        labels[z, 12:12 + w, 2:4] = 28
    for z, w in ((17, 3), (18, 5), (19, 2)):
        labels[z, 14:14 + w, 14:16] = 10
    labels[16:25, 5:8, 12:14] = 4
    assert locate_levels(labels) == dict(zip(WADA_LEVELS, (8, 12, 18, 25, 32)))
    with pytest.raises(ValueError, match="no thalamus"):
        locate_levels(np.where(labels == 10, 2, labels))
    levels = load_levels()
    assert levels == sorted(levels) and len(set(levels)) == 5 and 0 < levels[0] < levels[-1] < 64
    net = WadaLevelNet(in_channels=2)
    out = net(torch.rand(2, 2, 64, 64, 64), torch.zeros(2, 1))
    assert out["age"].shape == (2,) and out["features"].shape == (2, net.n_features)
    assert "seg" not in out
    age, var = blend_age_ranges(np.array([3.0, 12.0, 20.0]), np.array([5.0, 14.0, 21.0]),
                                np.ones(3), 3 * np.ones(3))
    assert age == pytest.approx([3.0, 0.375 * 12.0 + 0.625 * 14.0, 21.0])  # weight 0, 5/8, 1
    assert var[0] == 1.0 and var[2] == 3.0


def test_shipped_wada_levels_are_reproducible():
    """data/wada-levels.json comes from build_levels on ../shared/infant-asegs."""
    from bids_infantage.models.nets.wada2d import build_levels
    from bids_infantage.utils.data import data_path, load_json

    if not (SHARED / "infant-asegs").is_dir():
        pytest.skip("../shared/infant-asegs not found")
    shipped = load_json("wada-levels.json")
    ref = data_path("models") / "infantage-default" / "reference_mask.nii.gz"
    again = build_levels(SHARED, ref, ages=("12",))
    assert again["per_label_map"]["12mo"] == shipped["per_label_map"]["12mo"]
