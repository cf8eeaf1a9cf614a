"""Model bundle, network, transforms and the shared preprocessing path."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def test_network_shapes_and_heads():
    import torch

    from bids_infantage.models.nets.multitask_agenet import MultiTaskAgeNet

    net = MultiTaskAgeNet(in_channels=3)
    out = net(torch.rand(2, 3, 64, 64, 64), torch.zeros(2, 1))
    assert out["age"].shape == (2,) and out["log_var"].shape == (2,)
    assert out["seg"].shape == (2, 1, 16, 16, 16)
    assert out["recon"].shape == (2, 3, 16, 16, 16)
    assert out["features"].shape == (2, net.n_features)
    # the volume input reaches the age head
    out2 = net(torch.zeros(1, 3, 64, 64, 64), torch.ones(1, 1))
    out3 = net(torch.zeros(1, 3, 64, 64, 64), -torch.ones(1, 1))
    assert float(out2["age"].detach()) != float(out3["age"].detach())


def test_model_input_stack():
    from bids_infantage.models.transforms import ModelInputd

    rng = np.random.default_rng(0)
    mask = np.zeros((16, 16, 16), bool)
    mask[4:12, 4:12, 4:12] = True
    t1 = rng.uniform(100, 200, mask.shape) * mask
    out = ModelInputd()({"T1w": t1, "T2w": None, "mask": mask})["image"]
    assert out.shape == (3, 16, 16, 16)
    assert np.all(out[1] == 0) and np.all(out[2] == 0)
    assert abs(np.percentile(out[0][mask], 99) - 1.0) < 1e-3
    assert np.all(out[0][~mask] == 0)


def test_default_bundle_loads_and_predicts():
    from bids_infantage.models.bundle.resolve import load_bundle

    bundle = load_bundle()
    assert set(bundle.meta["configurations"]) == {"t1w", "t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio"}
    for cfg, spec in bundle.meta["configurations"].items():
        assert spec["members"] >= 2
        nets = bundle.networks(cfg)
        assert len(nets) == spec["members"]
    maes = {c: s["calibration"]["val_mae_months"] for c, s in bundle.meta["configurations"].items()}
    assert bundle.choose_configuration(True, True) == min(maes, key=maes.get)
    assert bundle.choose_configuration(True, False) == "t1w"
    assert bundle.choose_configuration(False, True) == "t2w"
    # a T1w and T2w that are not one brain in register: auto reads the better single image
    single = {c: m for c, m in maes.items() if c in ("t1w", "t2w")}
    assert bundle.choose_configuration(True, True, same_brain=False) == min(single, key=single.get)
    assert bundle.choose_configuration(True, True, "ratio", same_brain=False) == "ratio"  # as asked
    import copy

    pair_only = copy.copy(bundle)  # a bundle of one two-image configuration keeps it
    pair_only.meta = {**bundle.meta, "configurations": {"t1w+t2w": bundle.meta["configurations"]["t1w+t2w"]}}
    assert pair_only.choose_configuration(True, True, same_brain=False) == "t1w+t2w"
    ref = bundle.reference_mask()
    assert ref.GetSize() == (64, 64, 64)
    for cfg, spec in bundle.meta["configurations"].items():  # intervals with the domain-shift term
        bands = spec["calibration"]["shift_sd_bands"]
        assert [b[:2] for b in bands] == [[0.0, 6.0], [6.0, 12.0], [12.0, 18.0], [18.0, 24.0]]
        assert all(b[2] > 0.5 for b in bands), (cfg, bands)
        # validation samples behind the term: a recalibration's, else the training's
        n_val = spec["calibration"].get("interval_calibration", {}).get(
            "n_val", bundle.meta["training"]["settings"]["n_val"])
        assert n_val >= 64


def test_default_recipe_reproduces_the_shipped_bundle_settings():
    """``bids-infantage-train`` without ``--recipe`` trains with the settings recorded in the
    shipped default's ``bundle.json``, so its member fingerprints (which follow the settings)
    match the shipped members'."""
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.training import DEFAULT_RECIPE, member_fingerprint, recipe_settings

    shipped = load_bundle().meta
    recipe = json.loads(json.dumps(recipe_settings(DEFAULT_RECIPE)))  # JSON types
    assert shipped["training"]["settings"] == recipe
    assert member_fingerprint(shipped["training"]["settings"], None) == member_fingerprint(recipe, None)
    assert shipped["normalization"]["volume_feature"] == "none"
    assert all(spec["members"] == recipe["members"] for spec in shipped["configurations"].values())


def test_bundle_sha256_mismatch_is_caught(tmp_path):
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.utils.errors import ModelBundleError

    src = resolve_bundle(None)
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    weights = dst / "ratio.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match="sha256"):
        ModelBundle(dst)


def test_bundle_integrity_cannot_be_bypassed(tmp_path, monkeypatch):
    """#19 item 7: a bundle must list the sha256 of every file it loads; the packaged default
    is pinned by its bundle.json sha256; an edited copy does not carry the default's name."""
    import bids_infantage.models.bundle.resolve as mb
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import DEFAULT_BUNDLE_SHA256, DEFAULT_MODEL
    from bids_infantage.utils.errors import ModelBundleError

    packaged = ModelBundle(mb.resolve_bundle(None))
    assert packaged.sha256 == DEFAULT_BUNDLE_SHA256 and packaged.name == DEFAULT_MODEL

    dst = tmp_path / "bundle"
    shutil.copytree(mb.resolve_bundle(None), dst)
    meta = json.loads((dst / "bundle.json").read_text())
    edited = dict(meta, age_range_months=[0, 36])  # an edit that keeps every file's sha256
    (dst / "bundle.json").write_text(json.dumps(edited))
    copy = ModelBundle(dst)
    assert copy.sha256 != DEFAULT_BUNDLE_SHA256
    assert copy.name == f"custom-{copy.sha256[:12]}"
    for files in ({}, None, {k: v for k, v in meta["files_sha256"].items() if k != "t2w.safetensors"}):
        broken = dict(meta)
        if files is None:
            broken.pop("files_sha256")
        else:
            broken["files_sha256"] = files
        (dst / "bundle.json").write_text(json.dumps(broken))
        with pytest.raises(ModelBundleError, match="files_sha256"):
            ModelBundle(dst)
    # the packaged folder itself, edited: refused, with the fix
    monkeypatch.setattr(mb, "DEFAULT_BUNDLE_SHA256", "0" * 64)
    with pytest.raises(ModelBundleError, match="packaged default model was modified.*reinstall"):
        ModelBundle(mb.resolve_bundle(None))


def test_bundle_shape_mismatch_is_caught(tmp_path):
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.utils.errors import ModelBundleError

    dst = tmp_path / "bundle"
    shutil.copytree(resolve_bundle(None), dst)
    meta = json.loads((dst / "bundle.json").read_text())
    meta["architecture_kwargs"]["channels"] = [8, 16, 32, 48]
    (dst / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="do not fit"):
        ModelBundle(dst).networks("t1w")


def test_missing_bundle_message():
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.utils.errors import ModelBundleError

    with pytest.raises(ModelBundleError, match="bundle.json"):
        resolve_bundle("/nonexistent/model")


@pytest.mark.skipif(not (SHARED / "templateflow").is_dir(), reason="../shared/templateflow not found")
def test_rigid_registration_recovers_known_misalignment():
    """T1w->T2w rigid registration recovers 3 degrees + 4 mm within 0.5 degree and 0.5 mm."""
    import SimpleITK as sitk

    from bids_infantage.image.masks import mask_from_skull_stripped
    from bids_infantage.image.registration import register_rigid_t1w_to_t2w
    from bids_infantage.image.resampling import resample_like
    from bids_infantage.models.synthesis.templates import template_path

    tf = SHARED / "templateflow"
    t2 = sitk.ReadImage(str(template_path(tf, 3, "T2w")), sitk.sitkFloat32)
    t1 = sitk.ReadImage(str(template_path(tf, 3, "T1w")), sitk.sitkFloat32)
    mask = mask_from_skull_stripped(t2)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    truth = sitk.Euler3DTransform(stats.GetCentroid(1), np.deg2rad(3.0), np.deg2rad(-2.0), 0.0, (4.0, -3.0, 2.0))
    moved = resample_like(t1, t1, truth.GetInverse(), antialias=False)  # T1w displaced by truth
    xfm, _ = register_rigid_t1w_to_t2w(t2, moved, mask)
    # xfm maps T2w points to T1w points, so it must equal the displacement `truth`
    c = np.asarray(stats.GetCentroid(1))
    center_err = np.linalg.norm(np.subtract(xfm.TransformPoint(tuple(c)), truth.TransformPoint(tuple(c))))
    assert center_err < 0.5, center_err
    rel = np.asarray(xfm.GetMatrix()).reshape(3, 3) @ np.asarray(truth.GetMatrix()).reshape(3, 3).T
    angle = np.rad2deg(np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1)))
    assert angle < 0.5, angle


@pytest.mark.skipif(not (SHARED / "templateflow").is_dir(), reason="../shared/templateflow not found")
def test_n4_default_shrink_matches_fine_fit():
    """N4 with the pipeline's default shrink gives the same correction as a fit at 2 mm with
    more iterations (the careful setting of ``benchmarks/bench_participant.py``) on the
    24-month template (0.8 mm). A 4 mm shrink (factor 5) deviated by 0.8% on average and 6.6%
    at the 99th percentile there, which moved predicted ages by up to 0.2 months."""
    import SimpleITK as sitk

    from bids_infantage.image.masks import mask_from_skull_stripped
    from bids_infantage.image.n4 import n4_correct
    from bids_infantage.models.synthesis.templates import template_path

    t1 = sitk.ReadImage(str(template_path(SHARED / "templateflow", 5, "T1w")), sitk.sitkFloat32)
    center = t1.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in t1.GetSize()])
    tilt = sitk.Euler3DTransform(center, *np.deg2rad([3.0, 3.0, 3.0]), (4.0, 0.0, 0.0))
    t1 = sitk.Resample(t1, t1, tilt, sitk.sitkLinear, 0.0, sitk.sitkFloat32)  # as in the benchmark
    mask = mask_from_skull_stripped(t1)
    inside = sitk.GetArrayFromImage(mask) > 0
    fine = sitk.GetArrayFromImage(n4_correct(t1, mask, shrink_mm=2.0, iterations=(50, 40, 30))[0])[inside]
    default = sitk.GetArrayFromImage(n4_correct(t1, mask)[0])[inside]
    rel = np.abs(default / default.mean() - fine / fine.mean())
    assert rel.mean() < 0.002, rel.mean()
    assert np.percentile(rel, 99) < 0.01, np.percentile(rel, 99)


def test_reference_resampling_of_the_cropped_brain_matches_the_whole_field_of_view(monkeypatch):
    """``to_reference_space`` anti-aliases and resamples only the brain's bounding box plus
    ``CROP_MARGIN_MM``; outside the brain the model input is zero, so the result must equal
    the whole-field-of-view computation. A brain off the centre of a large field of view (as
    in a real head scan), T1w signal also outside the mask, and a 0.8 mm grid."""
    import SimpleITK as sitk

    import bids_infantage.models.preprocess as prep
    from bids_infantage.models.bundle.resolve import load_bundle

    ref = load_bundle().reference_mask()
    rng = np.random.default_rng(0)
    shape = (120, 150, 140)  # z, y, x
    zz, yy, xx = np.indices(shape)
    ball = ((zz - 55) / 45.0) ** 2 + ((yy - 80) / 60.0) ** 2 + ((xx - 75) / 55.0) ** 2 < 1
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    images = []
    for scale in (1.0, 0.5):
        arr = (scale + 0.3 * rng.random(shape)) * (0.5 + ball)  # signal outside the brain too
        images.append(sitk.GetImageFromArray(arr.astype(np.float32)))
    for img in (mask, *images):
        img.SetSpacing((0.8, 0.8, 0.8))
        img.SetOrigin((-56.0, -60.0, -40.0))
    xfm = sitk.AffineTransform(3)
    xfm.SetMatrix((np.eye(3) * 0.55).ravel().tolist())  # reference 192 mm -> this ~100 mm brain
    xfm.SetTranslation((4.0, 4.0, 4.0))
    cropped = prep.to_reference_space(images[0], images[1], mask, ref, xfm)
    monkeypatch.setattr(prep, "CROP_MARGIN_MM", 1e6)
    whole = prep.to_reference_space(images[0], images[1], mask, ref, xfm)
    assert cropped["mask"].sum() > 1000
    np.testing.assert_array_equal(cropped["mask"], whole["mask"])
    np.testing.assert_allclose(cropped["image"], whole["image"], atol=1e-5)


def test_member_cache_resumes_only_with_the_same_settings(tmp_path):
    """A cached ensemble member is reused when only ``members`` changes (a larger ensemble
    trains just the new ones) and refused when anything it depends on changes."""
    import torch

    from bids_infantage.models.training import (
        DEFAULTS,
        load_member,
        member_fingerprint,
        save_member,
    )

    prep = {"n4": {"shrink_mm": 3.0}}
    fp = member_fingerprint(DEFAULTS, prep)
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_member(tmp_path, "t1w", 0, fp, state, 12.5, ["t1w seed 1003 epoch 1/1 loss 1.0"])
    got = load_member(tmp_path, "t1w", 0, member_fingerprint(dict(DEFAULTS, members=8), prep))
    assert got is not None
    assert torch.equal(got[0]["w"], state["w"]) and got[1] == 12.5 and got[2][0].startswith("t1w")
    assert load_member(tmp_path, "t1w", 1, fp) is None  # not trained yet
    assert load_member(tmp_path, "t1w", 0, member_fingerprint(dict(DEFAULTS, epochs=3), prep)) is None
    assert load_member(tmp_path, "t1w", 0, member_fingerprint(DEFAULTS, {"n4": {"shrink_mm": 4.0}})) is None


def test_test_time_augmentation_layout():
    """Row b of the augmented batch is the unmodified input b, the second half mirrors the
    first, and the shifts are +-1 voxel along each axis."""
    import torch

    from bids_infantage.models.transforms import tta_batch, tta_shifts

    x = torch.rand(2, 3, 8, 8, 8)
    xs = tta_batch(x, 1)
    assert xs.shape == (28, 3, 8, 8, 8)
    assert torch.equal(xs[:2], x)
    assert torch.equal(xs[14:], torch.flip(xs[:14], dims=(4,)))
    shifts = tta_shifts(1)
    assert sorted(map(tuple, np.abs(np.asarray(shifts)).tolist())) == sorted(
        [(0, 0, 0)] + [(1, 0, 0)] * 2 + [(0, 1, 0)] * 2 + [(0, 0, 1)] * 2)
    for k, s in enumerate(shifts):
        assert torch.equal(xs[2 * k:2 * k + 2], torch.roll(x, s, dims=(2, 3, 4)))
    assert tta_batch(x, 0).shape == (4, 3, 8, 8, 8)


def test_bundle_prediction_averages_over_the_recorded_augmentation():
    """The bundle predicts with the augmentation its calibration was made with: the age with
    ``shift_voxels`` 1 is the calibrated mean over the 14 copies, not the mirror-only age."""
    import torch

    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.transforms import tta_batch, volume_feature

    bundle = load_bundle()
    assert bundle.meta["test_time_augmentation"]["shift_voxels"] == 1
    image = np.random.default_rng(3).random((3, 64, 64, 64)).astype(np.float32)
    config = "t1w"
    spec = bundle.meta["configurations"][config]
    x = torch.from_numpy(image[spec["channels"]])[None]
    s = torch.tensor([[volume_feature(900.0)]])
    raw = {}
    with torch.no_grad():
        for k in (0, 1):
            xs = tta_batch(x, k)
            raw[k] = np.mean([float(net(xs, s.expand(len(xs), 1))["age"].mean())
                              for net in bundle.networks(config)])
    cal = spec["calibration"]
    got = bundle.predict(image, 900.0, config, saliency=False)["age"]
    assert got == pytest.approx(cal["intercept"] + cal["slope"] * raw[1], abs=1e-4)
    assert abs(raw[1] - raw[0]) > 1e-4  # the shifts do change the inputs' ages


@pytest.mark.parametrize("chronological, flagged", [(72.0, True), (12.0, False), (None, False)])
def test_chronological_age_outside_the_model_range_is_flagged(tmp_path, monkeypatch,
                                                              chronological, flagged):
    """A 6-year-old whose images look like a 24-month brain still gets qc_out_of_range when
    its chronological age is known; an infant in range does not."""
    import pandas as pd

    from bids_infantage.interfaces.inference import BrainAgeTable

    pred = {"flags": [], "out_of_range": False, "configuration": "t1w", "age": 22.5, "sd": 1.0,
            "lower": 20.0, "upper": 25.0, "coverage": 0.9, "volume_ml": 1300.0, "volume_z": 1.1,
            "model_name": "infantage-default", "model_sha256": "0" * 64,
            "age_range_months": [0.0, 24.0]}
    (tmp_path / "prediction.json").write_text(json.dumps(pred))
    monkeypatch.chdir(tmp_path)
    kwargs = {} if chronological is None else {"chronological_age": chronological}
    res = BrainAgeTable(prediction=str(tmp_path / "prediction.json"), subject="01",
                        normalization_dice=0.95, **kwargs).run()
    row = pd.read_csv(res.outputs.out_file, sep="\t").iloc[0]
    assert bool(row["qc_out_of_range"]) is flagged
    assert ("chronological age 72.0 months outside the model range 0-24" in row["qc_flags"]) is flagged


def test_rank_standardization_ignores_intensity_curves_and_the_mask_edge():
    """The rank input (issue #14) is the same after any increasing intensity transform of
    both images (scale, gamma: the ratio changes by a power, so its ranks do not), and a
    brain-mask shell outside the core, bright (CSF kept) or dark, does not move the core."""
    from scipy.ndimage import binary_erosion

    from bids_infantage.models.transforms import ModelInputd, RankStandardize, model_input

    rng = np.random.default_rng(4)
    mask = np.zeros((24, 24, 24), bool)
    mask[4:20, 4:20, 4:20] = True
    t1 = rng.uniform(100, 300, mask.shape) * mask
    t2 = rng.uniform(150, 400, mask.shape) * mask  # ratio inside its clip range [0, 4]
    norm = {"intensity": "rank", "rank_erode_voxels": 1}

    def stack(a, b):
        return ModelInputd()({"T1w": a, "T2w": b, "mask": mask})["image"]

    ref = model_input(stack(t1, t2), norm)
    for f in (lambda x: 3.7 * x, lambda x: x.max() * (x / x.max()) ** 0.8,
              lambda x: x.max() * (x / x.max()) ** 1.25):
        assert np.allclose(model_input(stack(f(t1), f(t2)), norm), ref, atol=1e-3)  # float ties
    assert np.abs(model_input(stack(t1 ** 0.8, t2), {}) - stack(t1, t2)).max() > 0  # p99: unchanged stack
    core = binary_erosion(mask)
    shell = mask & ~core
    rank = RankStandardize(erode_voxels=1)
    for value in (0.0, 10 * t1.max()):
        img = np.where(shell, value, t1)
        # the core's ranks are taken among core voxels only: the shell's value does not matter
        assert np.array_equal(rank(img, mask)[core], rank(t1, mask)[core])
    out = rank(t1, mask)
    assert out[~mask].max() == 0 and 0 < out[core].min() and out[core].max() < 1
    assert abs(np.median(out[core]) - 0.5) < 0.01


def test_bundle_applies_its_recorded_model_input(tmp_path):
    """A bundle whose ``normalization`` says rank and no volume input feeds its networks the
    rank stack and a size input of 0, so training and inference see the same input."""
    import torch

    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.models.transforms import model_input, tta_batch

    folder = tmp_path / "rank"
    shutil.copytree(resolve_bundle(None), folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["normalization"].update(intensity="rank", rank_erode_voxels=1, volume_feature="none")
    (folder / "bundle.json").write_text(json.dumps(meta))
    bundle = ModelBundle(folder)
    rng = np.random.default_rng(5)
    image = (rng.random((3, 64, 64, 64)) * (rng.random((64, 64, 64)) > 0.3)).astype(np.float32)
    config = "t1w+t2w"
    spec = meta["configurations"][config]
    x = torch.from_numpy(model_input(image[spec["channels"]], meta["normalization"]))[None]
    xs = tta_batch(x, meta["test_time_augmentation"]["shift_voxels"])
    with torch.no_grad():
        raw = np.mean([float(net(xs, torch.zeros(len(xs), 1))["age"].mean())
                       for net in bundle.networks(config)])
    cal = spec["calibration"]
    got = bundle.predict(image, 900.0, config, saliency=False)
    assert got["age"] == pytest.approx(cal["intercept"] + cal["slope"] * raw, abs=1e-4)
    # the volume no longer reaches the networks (it still drives the volume checks)
    assert bundle.predict(image, 600.0, config, saliency=False)["raw_age"] == pytest.approx(got["raw_age"], abs=1e-6)


def test_calibration_widens_the_interval_by_the_domain_shift_term(tmp_path):
    """Perturbed validation predictions that move ages by 2 months in one band give that
    band a shift SD of 2 months; a bundle with the term adds it to the interval's SD, and a
    T1w-only estimate whose interval reaches beyond 12 months is flagged."""
    from bids_infantage.models.bundle.intervals import shift_sd
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.models.training import calibrate

    rng = np.random.default_rng(6)
    ages = np.linspace(0, 24, 200)
    means = np.stack([ages + rng.normal(0, 0.3, ages.size) for _ in range(2)])
    vars_ = np.full_like(means, 0.25)
    feats = rng.normal(size=(ages.size, 4))
    shift = np.where((ages >= 12) & (ages < 18), 2.0, 0.0)
    cal = calibrate(means, vars_, feats, ages, perturbed_means=means + shift)
    bands = {(lo, hi): sd for lo, hi, sd in cal["shift_sd_bands"]}
    assert bands[(12.0, 18.0)] == pytest.approx(2.0, abs=0.25)
    assert bands[(0.0, 6.0)] < 0.05 and bands[(18.0, 24.0)] < 0.3
    assert shift_sd(15.0, cal["shift_sd_bands"]) == bands[(12.0, 18.0)]
    assert shift_sd(30.0, cal["shift_sd_bands"]) == bands[(18.0, 24.0)]
    plain = calibrate(means, vars_, feats, ages)
    assert "shift_sd_bands" not in plain and cal["interval_z"] > plain["interval_z"]

    folder = tmp_path / "shifted"
    shutil.copytree(resolve_bundle(None), folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["configurations"]["t1w"]["calibration"].pop("shift_sd_bands", None)
    # the linear correction moved 12 months up, so that this random image reads past 12
    # months (where the T1w-only rule applies) whatever the shipped networks make of it
    meta["configurations"]["t1w"]["calibration"]["intercept"] += 12.0
    (folder / "bundle.json").write_text(json.dumps(meta))
    image = np.random.default_rng(3).random((3, 64, 64, 64)).astype(np.float32)
    before = ModelBundle(folder).predict(image, 900.0, "t1w", saliency=False)
    meta["configurations"]["t1w"]["calibration"]["shift_sd_bands"] = [
        [0.0, 6.0, 3.0], [6.0, 12.0, 3.0], [12.0, 18.0, 3.0], [18.0, 24.0, 3.0]]
    (folder / "bundle.json").write_text(json.dumps(meta))
    after = ModelBundle(folder).predict(image, 900.0, "t1w", saliency=False)
    assert after["age"] == pytest.approx(before["age"])
    assert after["sd"] == pytest.approx(np.hypot(before["sd"], 3.0), rel=1e-6)
    t1w_flag = [f for f in after["flags"] if f.startswith("T1w only")]
    assert after["age"] + 1.0 > 12.0 and t1w_flag
    # T1w alone cannot resolve 12-24 months: the upper bound is the top of the model's range,
    # the lower bound stays age - z * sd
    half = meta["configurations"]["t1w"]["calibration"]["interval_z"] * after["sd"]
    top = meta["age_range_months"][1]
    assert after["upper"] == pytest.approx(max(top, after["age"] + half))
    assert after["upper"] > after["age"] + half + 1.0 or after["age"] + half > top
    assert after["lower"] == pytest.approx(after["age"] - half)
    assert f"extends to {after['upper']:.0f} months" in t1w_flag[0]
    both = ModelBundle(folder).predict(image, 900.0, "t1w+t2w", saliency=False)
    assert not any(f.startswith("T1w only") for f in both["flags"])
    assert both["upper"] - both["age"] == pytest.approx(both["age"] - both["lower"])


def _loto(errors, rmse, configs=("t1w", "t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio")):
    rows = []
    for age, err, r in zip((6.0, 9.0, 12.0), errors, rmse):
        rows.append({"held_out": f"{age:g} mo", "volume_ml": 800.0,
                     **{c: age + err for c in configs}, "val_rmse": {c: r for c in configs}})
    return {"loto_n": 160, "loto_epochs": 12, "rows": rows}


def test_template_term_is_the_loto_error_beyond_the_same_family_error():
    """template_sd = sqrt(mean(error^2) - mean(val_rmse^2)), floored at 0; a configuration the
    leave-one-template-out results lack is a clear error."""
    from bids_infantage.models.training import template_term

    term = template_term(_loto([3.0, -4.0, 0.0], [1.0, 1.0, 1.0]), "t1w+t2w")
    assert term["template_sd_months"] == pytest.approx(np.sqrt((9 + 16 + 0) / 3 - 1))
    assert term["template_term"]["errors_months"] == [3.0, -4.0, 0.0]
    assert term["template_term"]["held_out_months"] == [6.0, 9.0, 12.0]
    assert template_term(_loto([0.5, -0.5, 0.2], [1.0, 1.2, 0.9]), "t1w")["template_sd_months"] == 0.0
    with pytest.raises(ValueError, match="lack configuration ratio.*--configs ratio"):
        template_term(_loto([1, 1, 1], [1, 1, 1], configs=("t1w",)), "ratio")


def test_template_term_widens_the_interval_in_quadrature(tmp_path):
    """bids-infantage-train --add-template-term writes each configuration's template SD into a
    bundle; its intervals then have half-width hypot(z * sd, 1.645 * template_sd) with the
    age and sd unchanged; a bundle without the term keeps z * sd."""
    from bids_infantage.models.bundle.intervals import interval_half_width
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.models.training import main as train_main

    folder = tmp_path / "bundle"
    shutil.copytree(resolve_bundle(None), folder)
    meta = json.loads((folder / "bundle.json").read_text())
    for spec in meta["configurations"].values():
        for key in ("template_sd_months", "template_term"):
            spec["calibration"].pop(key, None)
    (folder / "bundle.json").write_text(json.dumps(meta))
    image = np.random.default_rng(5).random((3, 64, 64, 64)).astype(np.float32)
    before = ModelBundle(folder).predict(image, 900.0, "t1w+t2w", saliency=False)
    cal = meta["configurations"]["t1w+t2w"]["calibration"]
    assert before["upper"] - before["age"] == pytest.approx(cal["interval_z"] * before["sd"])

    loto = tmp_path / "loto.json"
    loto.write_text(json.dumps(_loto([3.0, -4.0, 0.0], [1.0, 1.0, 1.0])))
    assert train_main(["--add-template-term", str(loto), "--out", str(folder)]) == 0
    cal = json.loads((folder / "bundle.json").read_text())["configurations"]["t1w+t2w"]["calibration"]
    t_sd = np.sqrt(25 / 3 - 1)
    assert cal["template_sd_months"] == pytest.approx(t_sd)
    after = ModelBundle(folder).predict(image, 900.0, "t1w+t2w", saliency=False)
    assert (after["age"], after["sd"]) == (pytest.approx(before["age"]), pytest.approx(before["sd"]))
    half = np.hypot(cal["interval_z"] * before["sd"], 1.6448536 * t_sd)
    assert after["upper"] - after["age"] == pytest.approx(half, rel=1e-5)
    assert after["age"] - after["lower"] == pytest.approx(half, rel=1e-5)
    assert interval_half_width(cal, before["sd"]) == pytest.approx(half, rel=1e-5)


def test_t1w_only_interval_reaches_the_top_of_the_range_only_past_12_months(tmp_path):
    """With the linear correction fixed at one age (slope 0), a T1w-only interval that stays
    below 12 months is symmetric and unflagged; one that reaches past 12 months gets the
    model's upper age as its upper bound, the same lower bound, and the T1w-only flag."""
    from bids_infantage.models.bundle.intervals import T1W_ONLY_RESOLVES_MONTHS
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle

    folder = tmp_path / "fixed"
    shutil.copytree(resolve_bundle(None), folder)
    meta = json.loads((folder / "bundle.json").read_text())
    image = np.random.default_rng(4).random((3, 64, 64, 64)).astype(np.float32)
    got = {}
    for age in (4.0, 11.0):
        cal = meta["configurations"]["t1w"]["calibration"]
        cal.update(slope=0.0, intercept=age, shift_sd_bands=[[0.0, 24.0, 1.5]])
        (folder / "bundle.json").write_text(json.dumps(meta))
        got[age] = ModelBundle(folder).predict(image, 900.0, "t1w", saliency=False)
    half = cal["interval_z"] * 1.5
    assert 4.0 + half < T1W_ONLY_RESOLVES_MONTHS < 11.0 + half  # the two sides of the rule
    young, older = got[4.0], got[11.0]
    assert (young["lower"], young["upper"]) == (pytest.approx(4.0 - half), pytest.approx(4.0 + half))
    assert not any(f.startswith("T1w only") for f in young["flags"])
    assert older["lower"] == pytest.approx(11.0 - half)
    assert older["upper"] == pytest.approx(meta["age_range_months"][1])
    assert any(f.startswith("T1w only") and "extends to 24 months" in f for f in older["flags"])


def test_csf_painting_makes_ventricles_t2w_bright_and_t1w_dark():
    """Painted ventricles move T2w towards CSF brightness, T1w towards dark and the ratio
    towards their quotient, only where the ventricle map and the brain are."""
    from bids_infantage.models.training import paint_csf

    rng = np.random.default_rng(8)
    mask = np.zeros((20, 20, 20), bool)
    mask[3:17, 3:17, 3:17] = True
    x = np.stack([np.full(mask.shape, 0.8), np.full(mask.shape, 0.5), np.full(mask.shape, 1.6)]) * mask
    vent = np.zeros((1,) + mask.shape, np.float32)
    vent[0, 8:12, 8:12, 8:12] = 1.0
    vent[0, 0, 0, 0] = 1.0  # outside the brain: never painted
    painted = None
    for _ in range(20):  # painting is random (p 0.8); some draw paints
        y = paint_csf(x.astype(np.float32).copy(), [0, 1, 2], vent, rng)
        if y[1, 10, 10, 10] > 0.6:
            painted = y
            break
    assert painted is not None
    assert painted[0, 10, 10, 10] < 0.8 and painted[2, 10, 10, 10] < 1.6
    assert painted[:, 0, 0, 0].max() == 0 and np.array_equal(painted[:, 5, 5, 5], x[:, 5, 5, 5].astype(np.float32))


def test_smaller_cohort_is_the_prefix_of_the_larger(tmp_path, monkeypatch):
    """With age strata fixed, a cohort of n samples has the ages and seeds of the first n
    of the larger cohort, so a partial cohort is reproducible."""
    from bids_infantage.models import dataset

    calls = {}

    def fake_make(job):
        index, age, seed, out_dir = job
        calls.setdefault(out_dir, []).append((index, age, seed))
        return str(Path(out_dir) / f"sample-{index:05d}.npz")

    monkeypatch.setattr(dataset, "_make_one", fake_make)
    monkeypatch.setattr(dataset, "_init_worker", lambda *a: None)
    kw = dict(atlas_path="a", reference_path="r", masks_tsv="m", seed=1, nprocs=1)
    dataset.generate_cohort(tmp_path / "big", n=40, strata=40, **kw)
    dataset.generate_cohort(tmp_path / "small", n=10, strata=40, **kw)
    dataset.generate_cohort(tmp_path / "plain", n=10, **kw)
    big, small, plain = (calls[str(tmp_path / k)] for k in ("big", "small", "plain"))
    assert small == big[:10]
    assert [a for _, a, _ in plain] != [a for _, a, _ in small]  # other strata, other ages


@pytest.mark.skipif(not (SHARED / "infant-asegs").is_dir(), reason="needs ../shared/infant-asegs")
def test_ventricle_atlas_from_the_real_asegs():
    """The 12 real asegs give ventricle maps on the 64^3 grid with plausible volumes
    (2-20 ml after normalization), almost all inside the reference brain."""
    import SimpleITK as sitk

    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.synthesis.asegs import aseg_age_months, build_ventricle_atlas

    assert aseg_age_months("34-38mo_aseg_acpc.nii.gz") == 36.0
    ref = load_bundle().reference_mask()
    atlas = build_ventricle_atlas(SHARED / "infant-asegs", ref)
    assert list(atlas["ages"]) == sorted(atlas["ages"]) and len(atlas["ages"]) == 12
    vols = (atlas["ventricles"] > 0.5).sum((1, 2, 3)) * 27 / 1000
    assert np.all((vols > 2) & (vols < 20)), vols
    inside = sitk.GetArrayFromImage(ref) > 0
    outside = atlas["ventricles"][:, ~inside].sum(1) / atlas["ventricles"].reshape(12, -1).sum(1)
    assert outside.max() < 0.1, outside  # the asegs' brains are normalized like the subjects' (Dice ~0.87)


def test_template_t1w_out_of_register_is_aligned_to_its_t2w():
    """The BMEXInfant 24-month T1w is offset and scaled against its T2w (edge correlation
    0.08 on the synthesis grid, 0.61-0.81 for the other ages): build_atlas detects such a pair
    (T1W_IN_REGISTER_MIN) and warps the T1w onto the T2w (align_t1w_to_t2w)."""
    from scipy import ndimage

    from bids_infantage.models.synthesis.templates import T1W_IN_REGISTER_MIN, align_t1w_to_t2w, grid_edge_correlation

    rng = np.random.default_rng(0)
    shape = (56, 56, 56)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    inside = (zz / 0.8) ** 2 + (yy / 0.9) ** 2 + (xx / 0.75) ** 2 < 1
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 2.5)
    labels = np.digitize(field, np.quantile(field[inside], [0.2, 0.55])) * inside
    t1w = np.choose(labels, (0.2, 0.6, 1.0)) * inside
    t2w = np.choose(labels, (1.0, 0.6, 0.3)) * inside
    mask = ndimage.gaussian_filter(inside.astype(float), 0.5)
    # the T1w of the same brain, scaled by 6% and shifted by 2 voxels (4 mm)
    moved = ndimage.affine_transform(t1w, np.diag([1 / 1.06, 1.0, 1.0]), offset=(-1.5, 2.0, 0.0), order=1)
    before = grid_edge_correlation(moved, t2w, mask)
    aligned = align_t1w_to_t2w(moved, t2w, mask)
    after = grid_edge_correlation(aligned, t2w, mask)
    assert grid_edge_correlation(t1w, t2w, mask) > 0.8  # in register: left alone
    assert before < T1W_IN_REGISTER_MIN < after, (before, after)
    assert after > 0.7, after


#: small training settings for bundles made in tests
DEFAULTS_FOR_TEST = {"channels": [4, 8, 8, 8], "tta_shift_voxels": 0, "epochs": 1}


def _tiny_cohort(n=24, seed=0):
    rng = np.random.default_rng(seed)
    image = (rng.random((n, 3, 64, 64, 64)) * 0.5).astype(np.float32)
    image[:, :, :8] = 0  # background, so the saliency mask has something to mask
    return {"image": image, "volume_ml": rng.uniform(400, 1200, n).astype(np.float32),
            "age": np.linspace(0, 24, n).astype(np.float32),
            "wm": (rng.random((n, 64, 64, 64)) > 0.5).astype(np.uint8)}


def test_wada2019_member_trains_one_network_per_age_range(monkeypatch):
    """train_member("wada2019") trains a 0-16 and an 8-24 month network on those samples only
    and blends them as blend_age_ranges does."""
    import torch

    from bids_infantage.models import training
    from bids_infantage.models.nets.wada2d import WadaAgeRangeEnsemble, blend_age_ranges

    seen = []
    real = training.train_member

    def spy(data, config, seed, **kw):
        if kw.get("architecture") == "wada":
            seen.append((float(data["age"].min()), float(data["age"].max()), len(data["age"])))
        return real(data, config, seed, **kw)

    monkeypatch.setattr(training.members, "train_member", spy)  # its recursion for the two age ranges
    data = _tiny_cohort()
    net = training.train_member(data, "t2w", 3, epochs=1, batch_size=8, lr=1e-3,
                                channels=[4, 8, 8, 8], loss_weights=training.DEFAULTS["loss_weights"],
                                architecture="wada2019")
    assert isinstance(net, WadaAgeRangeEnsemble)
    assert seen[0][1] <= 16 and seen[1][0] >= 8 and seen[0][2] + seen[1][2] > len(data["age"])
    x = torch.from_numpy(data["image"][:4, 1:2])
    with torch.no_grad():
        out = net(x, torch.zeros(4, 1))
    age, _ = blend_age_ranges(out["age_young"].numpy(), out["age_old"].numpy())
    assert np.allclose(out["age"].numpy(), age, atol=1e-4)


def test_wada2019_bundle_predicts_with_its_age_ranges(tmp_path):
    """A bundle with architecture WadaAgeRangeEnsemble loads, predicts, gives both age ranges,
    a gradient saliency map on its five levels only, and its table has the wada columns."""
    import torch

    from bids_infantage.interfaces.inference import BrainAgeTable
    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.models.nets.wada2d import load_levels
    from bids_infantage.models.training import (
        build_network,
        calibrate,
        predict_members,
        write_bundle,
    )
    from bids_infantage.utils.columns import WADA_COLUMNS

    torch.manual_seed(0)
    nets = [build_network("wada2019", "t2w").eval() for _ in range(2)]
    val = _tiny_cohort(16, seed=1)
    means, vars_, feats = predict_members(nets, val, "t2w")
    cal = calibrate(means, vars_, feats, val["age"])
    meta = write_bundle(tmp_path / "wada2019", {"t2w": nets}, {"t2w": cal},
                        settings=dict(DEFAULTS_FOR_TEST, architecture="wada2019"), name="wada2019",
                        reference_mask=resolve_bundle(None) / "reference_mask.nii.gz",
                        volume_norms={"0": [500.0, 60.0], "24": [1150.0, 110.0]},
                        data_provenance={"test": True})
    assert meta["architecture"] == "WadaAgeRangeEnsemble"
    bundle = ModelBundle(tmp_path / "wada2019")
    got = bundle.predict(val["image"][0], 800.0, "t2w")
    assert set(got["age_ranges"]) == {"young_months", "old_months", "weight_old"}
    assert 0.0 <= got["age_ranges"]["weight_old"] <= 1.0
    sal = got["saliency"]
    assert sal.shape == (64, 64, 64) and sal.max() == pytest.approx(1.0)
    levels = load_levels()
    off = np.ones(64, bool)
    for z in levels:
        off[max(0, z - 4):z + 5] = False  # the 3-slice slabs plus the smoothing's reach
    # levels index the first spatial axis (axis 2 of the network's input tensor)
    assert sal[off].max() < 1e-3 and sal[levels].max() > 0.05
    pred = dict(got, saliency=None, configuration="t2w", volume_ml=800.0,
                model_name=bundle.name, model_sha256=bundle.sha256)
    (tmp_path / "prediction.json").write_text(json.dumps(pred))
    res = BrainAgeTable(prediction=str(tmp_path / "prediction.json"), subject="01",
                        normalization_dice=0.95).run(cwd=str(tmp_path))
    header = open(res.outputs.out_file).readline().rstrip("\n").split("\t")
    assert header[-3:] == list(WADA_COLUMNS)


def test_mean_max_pooling_sees_strength_and_round_trips(tmp_path):
    """``pooling="mean+max"`` (issue #14): twice the features; an input whose bright spot is
    stronger changes the max features although every stage's instance normalization leaves
    the mean features nearly as they were; a bundle records the pooling and loads it."""
    import torch

    from bids_infantage.models.bundle.model_bundle import ModelBundle
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.models.nets.multitask_agenet import MultiTaskAgeNet
    from bids_infantage.models.training import build_network, calibrate, predict_members, write_bundle

    with pytest.raises(ValueError, match="pooling"):
        MultiTaskAgeNet(in_channels=1, pooling="median")
    torch.manual_seed(0)
    net = MultiTaskAgeNet(in_channels=1, pooling="mean+max").eval()
    assert net.n_features == 2 * MultiTaskAgeNet(in_channels=1).n_features
    x = torch.rand(2, 1, 64, 64, 64) * 0.1
    x[:, :, 28:36, 28:36, 28:36] += torch.tensor([0.5, 2.0])[:, None, None, None, None]
    with torch.no_grad():
        f = net(x, torch.zeros(2, 1))["features"]
    half = net.n_features // 2
    assert (f[0, half:] - f[1, half:]).abs().max() > (f[0, :half] - f[1, :half]).abs().max()

    nets = [build_network("multitask", "t1w", [8, 16, 32, 48], pooling="mean+max").eval()]
    val = _tiny_cohort(16, seed=1)
    means, vars_, feats = predict_members(nets, val, "t1w")
    meta = write_bundle(tmp_path / "pooled", {"t1w": nets}, {"t1w": calibrate(means, vars_, feats, val["age"])},
                        settings=dict(DEFAULTS_FOR_TEST, channels=[8, 16, 32, 48], pooling="mean+max"),
                        name="pooled", reference_mask=resolve_bundle(None) / "reference_mask.nii.gz",
                        volume_norms={"0": [500.0, 60.0], "24": [1150.0, 110.0]},
                        data_provenance={"test": True})
    assert meta["architecture_kwargs"]["pooling"] == "mean+max"
    got = ModelBundle(tmp_path / "pooled").predict(val["image"][0], float(val["volume_ml"][0]), "t1w",
                                                   saliency=False)
    assert got["members"][0] == pytest.approx(float(means[0][0]), abs=1e-3)  # same network back


def test_training_settings_file_merges_over_the_recipe_and_sets_the_gamma_width(tmp_path, capsys):
    """``bids-infantage-train --settings`` merges a JSON object over the recipe (``input`` key
    by key), changes the members' fingerprint, and refuses a file that is not a JSON object
    with a one-line error; ``input.gamma_sd`` sets the width of the training gamma."""
    from bids_infantage.models.training import DEFAULTS, MILESTONE_RECIPE, member_fingerprint
    from bids_infantage.models.training import main as train_main
    from bids_infantage.models.training.augmentation import _augment
    from bids_infantage.models.training.cli import merge_settings

    recipe = dict(DEFAULTS, **MILESTONE_RECIPE)
    extra = tmp_path / "settings.json"
    extra.write_text(json.dumps({"input": {"gamma_sd": 0.2}, "lr": 1e-3}))
    merged = merge_settings(recipe, extra)
    assert merged["input"] == dict(MILESTONE_RECIPE["input"], gamma_sd=0.2)
    assert merged["lr"] == 1e-3 and merged["pooling"] == "mean+max"
    assert MILESTONE_RECIPE["input"].get("gamma_sd") is None  # the recipe itself is untouched
    assert member_fingerprint(merged, None) != member_fingerprint(recipe, None)

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert train_main(["--settings", str(bad), "--out", str(tmp_path / "b"),
                       "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.json" in err and "JSON object" in err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()

    # same draws (same seed), only the gamma's width differs: the spread of 0.5 ** gamma grows
    x = np.full((200, 1, 2, 2, 2), 0.5, np.float32)
    spread = {}
    for sd in (0.0, 0.08, 0.2):
        rng = np.random.default_rng(0)
        out = np.stack([_augment(x[i:i + 1] * 1, np.ones(1), rng, gamma_sd=sd)[0][0] for i in range(20)])
        spread[sd] = float(np.std(out))
    assert spread[0.0] < spread[0.08] < spread[0.2]


def test_configuration_settings_give_one_configuration_its_own_training(tmp_path, capsys, monkeypatch):
    """``settings["configurations"]`` (recipe ``mixed-gamma``) gives the configurations with a
    T2w a training gamma SD of 0.5: their members are trained (``bids-infantage-train``'s
    worker and ``bids-infantage-cv``'s final bundle) and fingerprinted with it, while ``t1w``
    keeps the ``mixed`` recipe's settings and so the cached members of that recipe; a key a
    configuration cannot set for itself is refused, by the CLI in one line naming the file."""
    import torch

    from bids_infantage.models import training
    from bids_infantage.models.cv import final, folds
    from bids_infantage.models.training import configuration_settings, member_fingerprint, recipe_settings
    from bids_infantage.models.training import main as train_main
    from bids_infantage.models.training.augmentation import _JOB_DATA

    gamma = json.loads(json.dumps(recipe_settings("mixed-gamma")))
    mixed = json.loads(json.dumps(recipe_settings("mixed")))
    assert configuration_settings(gamma, "t1w") == mixed
    assert member_fingerprint(configuration_settings(gamma, "t1w"), None) == member_fingerprint(mixed, None)
    for config in ("t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio"):
        own = configuration_settings(gamma, config)
        assert own["input"] == dict(mixed["input"], gamma_sd=0.5)  # merged key by key
        assert {k: v for k, v in own.items() if k != "input"} == {
            k: v for k, v in mixed.items() if k != "input"}
        assert member_fingerprint(own, None) != member_fingerprint(mixed, None)
    assert "gamma_sd" not in mixed["input"]  # the recipe's own record is untouched

    for bad, words in (({"t1": {"lr": 1e-3}}, "unknown configuration 't1'"),
                       ({"t1w": {"channels": [4, 8, 8, 8]}}, "cannot set channels"),
                       ({"ratio": {"input": {"volume_feature": "log"}}}, "input.volume_feature")):
        with pytest.raises(ValueError, match=words):
            configuration_settings(dict(mixed, configurations=bad), "t1w")
    extra = tmp_path / "per-config.json"
    extra.write_text(json.dumps({"configurations": {"t1w": {"pooling": "mean"}}}))
    assert train_main(["--settings", str(extra), "--out", str(tmp_path / "b"),
                       "--cache-dir", str(tmp_path / "c"), "--shared", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "per-config.json" in err and "cannot set pooling" in err
    assert not (tmp_path / "b").exists()

    seen = {}

    def spy(data, config, seed, **kw):
        seen[config] = kw["settings"]
        return torch.nn.Linear(1, 1)

    monkeypatch.setattr(training.members, "train_member", spy)
    monkeypatch.setitem(_JOB_DATA, "train", {})
    monkeypatch.setitem(_JOB_DATA, "settings", gamma)
    for config in ("t1w", "ratio"):
        training.members._train_job((config, 0))
    assert "gamma_sd" not in seen["t1w"]["input"] and seen["ratio"]["input"]["gamma_sd"] == 0.5
    assert "configurations" not in seen["ratio"]
    seen.clear()
    monkeypatch.setattr(training, "train_member", spy)
    monkeypatch.setattr(folds, "_JOB", {"data": {}, "settings": dict(folds.DEFAULTS, **gamma)})
    monkeypatch.setattr(final, "_JOB", folds._JOB)
    final._final_job(("t2w", 0))
    assert seen["t2w"]["input"]["gamma_sd"] == 0.5


@pytest.mark.parametrize("correlation", [None, 0.85, 0.2])
def test_inference_reads_one_image_when_t1w_and_t2w_are_not_one_brain(tmp_path, correlation):
    """A T1w and T2w that failed the same-brain check (the BMEXInfant 24-month pair: edge
    correlation 0.16 before and 0.22 after the rigid registration, every other template pair
    0.77-0.87) feed no ratio under --modality auto: the node reads the better single image and
    its flags say so. An explicit --modality is kept."""
    import SimpleITK as sitk

    from bids_infantage.image.registration import SAME_BRAIN_MIN
    from bids_infantage.interfaces.inference import BrainAgeInference
    from bids_infantage.models.bundle.resolve import load_bundle

    bundle = load_bundle()
    ref = sitk.GetArrayFromImage(bundle.reference_mask()) > 0
    rng = np.random.default_rng(0)
    image = np.stack([rng.uniform(0.3, 1.0, ref.shape) * ref for _ in range(3)]).astype(np.float32)
    np.savez(tmp_path / "input.npz", image=image)
    maes = {c: s["calibration"]["val_mae_months"] for c, s in bundle.meta["configurations"].items()}
    for modality in ("auto", "ratio"):
        node = BrainAgeInference(model_input=str(tmp_path / "input.npz"), volume_ml=800.0, model="infantage-default",
                                 modality=modality, has_t1w=True, has_t2w=True,
                                 t1w_t2w_edge_correlation=correlation)
        cwd = tmp_path / f"{modality}-{correlation}"
        cwd.mkdir()
        res = node.run(cwd=str(cwd))
        pred = json.loads(Path(res.outputs.prediction).read_text())
        fallback = modality == "auto" and correlation is not None and correlation < SAME_BRAIN_MIN
        if modality == "ratio":
            expected = "ratio"
        elif fallback:
            expected = min(("t1w", "t2w"), key=maes.get)
        else:
            expected = bundle.choose_configuration(True, True)
        assert res.outputs.configuration == pred["configuration"] == expected
        assert any("may not show the same brain" in f for f in pred["flags"]) == fallback, pred["flags"]
    if correlation == 0.2:  # a bundle of one two-image configuration keeps it, and says no fallback
        folder = tmp_path / "pair-only"
        shutil.copytree(bundle.folder, folder)
        meta = json.loads((folder / "bundle.json").read_text())
        meta["configurations"] = {"t1w+t2w": meta["configurations"]["t1w+t2w"]}
        (folder / "bundle.json").write_text(json.dumps(meta))
        node = BrainAgeInference(model_input=str(tmp_path / "input.npz"), volume_ml=800.0, model=str(folder),
                                 has_t1w=True, has_t2w=True, t1w_t2w_edge_correlation=correlation)
        (tmp_path / "pair-only-run").mkdir()
        pred = json.loads(Path(node.run(cwd=str(tmp_path / "pair-only-run")).outputs.prediction).read_text())
        assert pred["configuration"] == "t1w+t2w"
        assert not any("--modality auto read" in f for f in pred["flags"]), pred["flags"]
