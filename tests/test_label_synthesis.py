"""Label-driven synthesis (issue #14): label maps of real infants painted with the templates'
contrast at an age."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
needs_shared = pytest.mark.skipif(
    not (SHARED / "infant-asegs").is_dir() or not (SHARED / "templateflow" / "tpl-BMEXInfant").is_dir(),
    reason="needs ../shared/infant-asegs and ../shared/templateflow/tpl-BMEXInfant")


def test_closing_labels_the_fissure_and_unlabelled_ventricle_as_csf():
    """close_label_map fills a slit between two 'hemispheres' and an enclosed hole with CSF
    (24) and leaves every labelled voxel and the outside alone."""
    from bids_infantage.models.label_synthesis.fields import close_label_map

    lab = np.zeros((40, 40, 40), np.uint8)
    lab[8:32, 8:32, 8:19] = 2
    lab[8:32, 8:32, 21:32] = 41   # two voxels of unlabelled fissure between them
    lab[18:22, 18:22, 12:15] = 0  # an enclosed unlabelled hole
    out = close_label_map(lab)
    assert np.all(out[lab > 0] == lab[lab > 0])
    assert np.all(out[12:28, 12:28, 19:21] == 24)
    assert np.all(out[18:22, 18:22, 12:15] == 24)
    assert np.all(out[:6] == 0) and np.all(out[:, :, :6] == 0)


def test_atlas_guided_mixture_finds_white_matter_whichever_way_its_contrast_goes():
    """The same anatomy with neonatal (WM T2w-bright, T1w-dark) and 24-month (WM T2w-dark,
    T1w-bright) contrast: the posteriors put white matter where it is in both, from a prior
    that is only roughly right, which a one-channel brightness rule cannot."""
    from scipy.ndimage import gaussian_filter

    from bids_infantage.models.label_synthesis.fields import template_tissue_posteriors

    rng = np.random.default_rng(0)
    shape = (32, 32, 32)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    r = np.sqrt(zz ** 2 + yy ** 2 + xx ** 2)
    truth = np.select([r < 0.5, r < 0.75, r < 0.9], [0, 1, 3], -1)  # WM core, cortex, CSF rim
    mask = (truth >= 0).astype(np.float32)
    prior = np.stack([gaussian_filter((truth == k).astype(np.float32), 2.5) for k in range(5)])
    prior[3] += 0.1 * mask  # CSF prior leaks everywhere
    for wm_t1, wm_t2 in ((0.8, 1.2), (1.2, 0.7)):
        t1 = np.choose(truth + 1, (0, wm_t1, 1.0, 0, 0.3)) * (1 + 0.03 * rng.standard_normal(shape))
        t2 = np.choose(truth + 1, (0, wm_t2, 1.0, 0, 2.0)) * (1 + 0.03 * rng.standard_normal(shape))
        post = template_tissue_posteriors(t1.astype(np.float32), t2.astype(np.float32), mask, prior)
        seg = post.argmax(0)
        inside = truth >= 0
        assert np.mean(seg[inside] == truth[inside]) > 0.95, (wm_t1, wm_t2)
        assert np.allclose(post[:, inside].sum(0), 1, atol=1e-4)
        assert np.all(post[:, ~inside] == 0)


@pytest.fixture(scope="module")
def small_fields(tmp_path_factory):
    """Label fields of the 0- and 24-month templates and the three youngest asegs (~1 min)."""
    import SimpleITK as sitk

    from bids_infantage.models.label_synthesis.fields import LabelFields, build_label_fields
    from bids_infantage.models.synthesis.templates import build_reference_mask

    out = tmp_path_factory.mktemp("label-fields")
    ref = build_reference_mask(SHARED / "templateflow")
    sitk.WriteImage(ref, str(out / "ref.nii.gz"))
    fields = build_label_fields(SHARED / "templateflow", SHARED / "infant-asegs", ref,
                                cohorts=(1, 5), max_label_age_months=2)
    fields.save(out / "fields.npz")
    return LabelFields.load(out / "fields.npz"), ref, out


@needs_shared
def test_label_fields_carry_the_myelination_contrast_of_the_templates(small_fields):
    """White matter over cortex in the contrast fields, read on a real infant's labels: at 0
    months T2w-brighter and T1w-darker than at 24 months (T1w brightening to ~8 months, T2w
    darkening to ~24; Barkovich 1988)."""
    from bids_infantage.models.label_synthesis.fields import FIELD_GROUPS, LABEL_SHAPE
    from bids_infantage.models.label_synthesis.generator import WM_LABELS, LabelInfantGenerator

    fields, ref, _ = small_fields
    assert fields.labels.shape == (3,) + LABEL_SHAPE and list(fields.label_ages) == [0, 1, 2]
    assert list(fields.ages) == [0, 24] and fields.fields.shape[:3] == (2, 3, 2)
    gen = LabelInfantGenerator(fields, ref, seed=0)
    lab = fields.labels[1]
    wm, ctx = np.isin(lab, WM_LABELS), np.isin(lab, (3, 42))
    ratio = {}
    for age in (0, 24):
        c = gen.contrast_at(age)
        ratio[age] = [np.median(c[FIELD_GROUPS.index("wm"), ch][wm])
                      / np.median(c[FIELD_GROUPS.index("gm"), ch][ctx]) for ch in range(2)]
    assert ratio[0][1] > ratio[24][1] + 0.15, ratio  # T2w: WM darkens
    assert ratio[0][0] < ratio[24][0], ratio          # T1w: WM brightens
    mid = gen.contrast_at(12)
    assert np.allclose(mid, (gen.contrast_at(0) + gen.contrast_at(24)) / 2, atol=1e-3)


@needs_shared
def test_a_sample_is_a_model_input_with_its_white_matter_and_is_reproducible(small_fields):
    """sample(): (3, 64^3) model input (T1w, T2w, ratio), white matter inside the brain mask,
    CSF brighter than the cortex on T2w, the same infant for the same seed, another for
    another seed."""
    from bids_infantage.models.label_synthesis.generator import LabelInfantGenerator

    fields, ref, _ = small_fields
    a = LabelInfantGenerator(fields, ref, seed=3).sample(4.0, anatomy=0)
    b = LabelInfantGenerator(fields, ref, seed=3).sample(4.0, anatomy=0)
    c = LabelInfantGenerator(fields, ref, seed=4).sample(4.0, anatomy=0)
    assert a["image"].shape == (3, 64, 64, 64) and a["image"].dtype == np.float32
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], c["image"])
    mask, wm = a["mask"].astype(bool), a["wm"].astype(bool)
    assert not np.any(wm & ~mask) and 0.05 < wm.sum() / mask.sum() < 0.5
    assert np.all(a["image"][:, ~mask] == 0) and np.all(np.isfinite(a["image"]))
    vol_ml = mask.sum() * 27 / 1000
    assert 700 < vol_ml < 1600, vol_ml  # the reference brain (~1050 ml) +- the random affine


@needs_shared
def test_label_cohort_is_loadable_resumable_and_records_its_generator(small_fields, tmp_path):
    from bids_infantage.models.dataset import cohort_generator, load_cohort
    from bids_infantage.models.label_synthesis.cohort import generate_label_cohort
    from bids_infantage.models.label_synthesis.fields import LABEL_SYNTHESIS_VERSION

    _, _, out = small_fields
    kw = dict(fields_path=out / "fields.npz", reference_path=out / "ref.nii.gz",
              masks_tsv=SHARED / "bcp-brainmasks" / "masks.tsv", seed=5, nprocs=1)
    paths = generate_label_cohort(tmp_path / "c", n=2, strata=4, **kw)
    cohort = load_cohort(paths)
    assert cohort["image"].shape == (2, 3, 64, 64, 64) and cohort["wm"].shape == (2, 64, 64, 64)
    assert np.all((cohort["age"] >= 0) & (cohort["age"] <= 24))
    assert np.all((cohort["volume_ml"] > 200) & (cohort["volume_ml"] < 1600))
    assert cohort_generator(tmp_path / "c")["label_synthesis_version"] == LABEL_SYNTHESIS_VERSION
    before = [p.stat().st_mtime_ns for p in paths]
    again = generate_label_cohort(tmp_path / "c", n=3, strata=4, **kw)
    assert again[:2] == paths and [p.stat().st_mtime_ns for p in paths] == before
    assert np.isclose(load_cohort(again)["age"][:2], cohort["age"]).all()
    # a cache of another synthesis is refused, in one line, and left as it was
    from bids_infantage.utils.errors import InputError

    with pytest.raises(InputError, match="delete the folder or use another --cache-dir"):
        generate_label_cohort(tmp_path / "c", n=3, strata=4, anatomy_path=out / "none.npz", **kw)
    assert [p.stat().st_mtime_ns for p in paths] == before
    # another age range: ages inside it, recorded, and not resumed as a 0-24-month cohort
    older = load_cohort(generate_label_cohort(tmp_path / "o", n=2, strata=4, age_range=(24, 30), **kw))
    assert np.all((older["age"] > 24) & (older["age"] <= 30)), older["age"]
    assert cohort_generator(tmp_path / "o")["age_range_months"] == [24.0, 30.0]
    assert "age_range_months" not in cohort_generator(tmp_path / "c")
    with pytest.raises(InputError, match="delete the folder or use another --cache-dir"):
        generate_label_cohort(tmp_path / "o", n=3, strata=4, **kw)


def test_label_recipe_has_its_own_cohorts_and_provenance(tmp_path):
    """The label recipe never reads or overwrites the template-blend cohorts, and a bundle
    trained with it says what it was made from."""
    from bids_infantage.models.training import DEFAULTS, LABEL_RECIPE, cohort_dirs
    from bids_infantage.models.training.cohorts import _data_provenance

    settings = dict(DEFAULTS, **LABEL_RECIPE)
    assert cohort_dirs(tmp_path, settings) == (tmp_path / "labels-train", tmp_path / "labels-val")
    assert cohort_dirs(tmp_path, DEFAULTS) == (tmp_path / "train", tmp_path / "val")
    (tmp_path / "labels-train").mkdir()
    (tmp_path / "labels-train" / "generator.json").write_text(
        json.dumps({"generator": "labels", "label_synthesis_version": 2}))
    prov = _data_provenance(settings, tmp_path / "labels-train")
    assert prov["synthesis"] == "bids_infantage.models.label_synthesis"
    assert prov["label_synthesis_version"] == 2 and "infant-asegs" in prov["label_maps"]
    assert _data_provenance(DEFAULTS, tmp_path / "train")["synthesis"] == "bids_infantage.models.synthesis"


def test_milestone_maturity_is_a_logistic_that_spreads_with_the_milestone():
    """maturity(): 0.5 at the midpoint, increasing with age, wider for later milestones."""
    from bids_infantage.models.label_synthesis.milestones import maturity

    ages = np.linspace(-2, 30, 65)
    for mid in (0.0, 6.0, 14.0):
        m = np.array([maturity(a, mid) for a in ages])
        assert np.all(np.diff(m) >= 0) and m[0] < 0.2 and m[-1] > 0.7
        assert abs(float(maturity(mid, mid)) - 0.5) < 1e-6
    # a month past the midpoint moves an early milestone further than a late one
    assert maturity(2.0, 1.0) > maturity(15.0, 14.0) > 0.5


def _phantom_aseg():
    """A small (X, Y, Z) aseg with both hemispheres' WM, cortex, ventricles, thalamus/caudate and
    putamen/pallidum, 1.5 mm voxels: enough for define_regions."""
    lab = np.zeros((48, 56, 44), np.uint8)
    x, y, z = np.indices(lab.shape)
    r = np.sqrt(((x - 24) / 21) ** 2 + ((y - 28) / 25) ** 2 + ((z - 22) / 19) ** 2)
    left = x < 24
    lab[r < 1.0] = np.where(left, 3, 42)[r < 1.0]
    lab[r < 0.85] = np.where(left, 2, 41)[r < 0.85]
    for side, (thal, put, vent) in ((True, (10, 12, 4)), (False, (49, 51, 43))):
        sx = 19 if side else 29
        lab[sx - 2:sx + 2, 26:32, 18:22] = thal
        lab[sx - 7 if side else sx + 3:sx - 3 if side else sx + 7, 26:32, 18:22] = put
        lab[sx - 2:sx + 2, 24:36, 23:26] = vent
    return lab


def test_milestone_painting_follows_the_order_of_myelination():
    """MilestoneInfantGenerator.paint_sample on a phantom: white matter is at most slightly
    T1w-brighter (nearly isointense) and T2w-brighter than the cortex at birth, T1w-brighter and
    T2w-darker at 24 months; at 6 months the
    internal capsule has reached T2w-dark contrast before the frontal white matter (central
    before peripheral), whatever the random draws."""
    from bids_infantage.maturity.atlas import define_regions
    from bids_infantage.models.label_synthesis.milestones import MilestoneInfantGenerator

    lab = _phantom_aseg()
    aff = np.diag([1.5, 1.5, 1.5, 1.0])
    regions = define_regions(lab, aff)
    assert (regions == 3).any() and (regions == 8).any(), "phantom lacks capsule or frontal WM"
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(~np.isin(lab, (3, 42)), sampling=1.5)
    gen = MilestoneInfantGenerator.__new__(MilestoneInfantGenerator)
    gen.f = type("F", (), {"labels": lab.T[None]})()
    gen.anatomy = {"regions": regions.T[None], "depth_mm": depth.T[None].astype(np.float16)}
    wm, ctx = np.isin(lab.T, (2, 41)), np.isin(lab.T, (3, 42))
    capsule, frontal = regions.T == 3, regions.T == 8
    for seed in range(4):
        rel = {}
        for age in (0.0, 6.0, 24.0):
            gen.rng = np.random.default_rng(seed)
            img, mask = gen.paint_sample(0, age)
            assert mask[lab.T > 0].all() and np.all(np.isfinite(img))
            gm = [np.median(img[c][ctx]) for c in range(2)]
            rel[age] = {k: [np.median(img[c][sel]) / gm[c] for c in range(2)]
                        for k, sel in (("wm", wm), ("capsule", capsule), ("frontal", frontal))}
        assert rel[0]["wm"][0] < 1.1 and rel[0]["wm"][0] < rel[24]["wm"][0] and 1 < rel[24]["wm"][0], rel
        assert rel[0]["wm"][1] > 1 > rel[24]["wm"][1], rel
        assert rel[6]["capsule"][1] < rel[6]["frontal"][1], rel[6]


def test_milestone_recipe_has_its_own_cohorts_and_provenance(tmp_path):
    from bids_infantage.models.training import DEFAULTS, MILESTONE_RECIPE, cohort_dirs
    from bids_infantage.models.training.cohorts import _data_provenance

    settings = dict(DEFAULTS, **MILESTONE_RECIPE)
    assert cohort_dirs(tmp_path, settings) == (tmp_path / "milestones-train",
                                               tmp_path / "milestones-val")
    (tmp_path / "milestones-train").mkdir()
    (tmp_path / "milestones-train" / "generator.json").write_text(json.dumps(
        {"generator": "milestones", "label_synthesis_version": 3, "milestone_synthesis_version": 1}))
    prov = _data_provenance(settings, tmp_path / "milestones-train")
    assert prov["synthesis"].endswith("milestones") and prov["milestone_synthesis_version"] == 1
    assert "Barkovich" in prov["contrast"] and "training_ages_months" not in prov


def test_training_age_range_has_its_own_cohorts_and_is_checked(tmp_path):
    """Samples beyond 24 months (``training_age_range_months``) go to their own cohort folders
    and into the bundle's provenance; a bad range, or one the template-blend synthesis cannot
    make, is refused in one line before anything is written."""
    from bids_infantage.models.training import DEFAULTS, MILESTONE_RECIPE, build_data, cohort_dirs
    from bids_infantage.models.training.cohorts import _data_provenance, training_age_range
    from bids_infantage.utils.errors import InputError

    settings = dict(DEFAULTS, **MILESTONE_RECIPE, training_age_range_months=[0, 30])
    assert training_age_range(settings) == (0.0, 30.0)
    assert training_age_range(dict(DEFAULTS, **MILESTONE_RECIPE)) == (0.0, 24.0)
    assert cohort_dirs(tmp_path, settings) == (tmp_path / "milestones-ages0-30-train",
                                               tmp_path / "milestones-ages0-30-val")
    assert _data_provenance(settings, tmp_path / "none")["training_ages_months"] == [0.0, 30.0]
    for bad in ([30, 0], [0, 60], "0-30", [0]):
        with pytest.raises(InputError, match="training_age_range_months"):
            training_age_range(dict(settings, training_age_range_months=bad))
    with pytest.raises(InputError, match="template-blend synthesis"):
        build_data(tmp_path, tmp_path / "no-shared", dict(DEFAULTS, training_age_range_months=[0, 30]), 1)
    assert list(tmp_path.iterdir()) == []


def test_mixed_synthesis_stacks_both_cohorts_and_records_both(tmp_path, monkeypatch):
    """``"synthesis": "milestones+templates"``: half of the training and validation samples
    from each synthesis (or ``mixed_samples``), drawn into (and reused from) the folders each
    recipe has on its own; bad counts, or an age range the template blend cannot make, are
    refused; the provenance, preprocessing record and member fingerprint name both parts."""
    from bids_infantage.models.training import DEFAULTS, MILESTONE_RECIPE, build_data, cohort_dirs, cohorts
    from bids_infantage.models.training.cohorts import (
        MIXED_SYNTHESIS,
        _data_provenance,
        cohort_parts,
        cohort_preprocessing_record,
        cohort_record,
    )
    from bids_infantage.models.training.members import member_fingerprint
    from bids_infantage.utils.errors import InputError

    calls = []

    def fake_cohort(kind, base_age):
        def gen(out_dir, *, n, seed, strata=None, **kw):
            calls.append((kind, Path(out_dir).name, n, seed))
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "generator.json").write_text(json.dumps({"generator": kind}))
            if not (out_dir / "preprocessing.json").exists():  # kept on resume, as the real ones
                (out_dir / "preprocessing.json").write_text(json.dumps({"n4": {"shrink_mm": 3.0}}))
            paths = []
            for i in range(n):
                p = out_dir / f"sample-{i:05d}.npz"
                np.savez(p, image=np.full((3, 2, 2, 2), i, np.float16), wm=np.zeros((2, 2, 2), np.uint8),
                         age=np.float32(base_age + i), volume_ml=np.float32(700))
                paths.append(p)
            return paths
        return gen

    from bids_infantage.models import dataset
    from bids_infantage.models.label_synthesis import cohort as label_cohort

    monkeypatch.setattr(cohorts, "ensure_label_fields", lambda c, s: {"fields_path": Path("f")})
    monkeypatch.setattr(cohorts, "ensure_milestone_anatomy", lambda c, f: Path("a"))
    monkeypatch.setattr(cohorts, "ensure_generator", lambda c, s: {})
    monkeypatch.setattr(label_cohort, "generate_label_cohort", fake_cohort("milestones", 100.0))
    monkeypatch.setattr(dataset, "generate_cohort", fake_cohort("templates", 0.0))

    settings = {**DEFAULTS, **MILESTONE_RECIPE, "synthesis": MIXED_SYNTHESIS, "n_train": 8, "n_val": 4}
    assert [p for p, _, _ in cohort_parts(tmp_path, settings)] == ["milestones", "templates"]
    assert cohort_dirs(tmp_path, settings) == cohort_dirs(tmp_path, dict(DEFAULTS, **MILESTONE_RECIPE))
    assert cohort_parts(tmp_path, settings)[1][1:] == cohort_dirs(tmp_path, DEFAULTS)
    with pytest.raises(InputError, match="synthesis 'milestones\\+labels'"):
        cohort_parts(tmp_path, dict(settings, synthesis="milestones+labels"))
    train, val = build_data(tmp_path, tmp_path / "shared", settings, 1)
    assert sorted(calls) == sorted([("milestones", "milestones-val", 2, 2), ("milestones", "milestones-train", 4, 1),
                                    ("templates", "val", 2, 2), ("templates", "train", 4, 1)])
    assert sorted(train["age"].tolist()) == [0, 1, 2, 3, 100, 101, 102, 103]
    assert len(val["age"]) == 4 and train["image"].shape == (8, 3, 2, 2, 2)

    record = cohort_record(tmp_path, settings)
    assert record["parts"] == {"milestones": {"generator": "milestones"}, "templates": {"generator": "templates"}}
    prep = {"n4": {"shrink_mm": 3.0}}
    milestone_only = dict(DEFAULTS, **MILESTONE_RECIPE)
    assert member_fingerprint(settings, prep, record) != member_fingerprint(
        milestone_only, prep, cohort_record(tmp_path, milestone_only))
    # a label or milestone cohort's synthesis version is part of a member's fingerprint
    v2, v3 = ({"generator": "milestones", "milestone_synthesis_version": v} for v in (2, 3))
    assert member_fingerprint(milestone_only, prep, v2) != member_fingerprint(milestone_only, prep, v3)

    prov = _data_provenance(settings, cohort_dirs(tmp_path, settings)[0])
    assert "(4 training, 2 validation samples) and bids_infantage.models.synthesis (4 training" in prov["synthesis"]
    assert "template-blend samples (4 training, 2 validation" in prov["templates"]
    unequal = dict(settings, mixed_samples={"milestones": [6, 3], "templates": [2, 1]})
    prov = _data_provenance(unequal, cohort_dirs(tmp_path, unequal)[0])
    assert "milestones (6 training, 3 validation samples)" in prov["synthesis"]
    assert "template-blend samples (2 training, 1 validation samples)" in prov["templates"]
    assert "Barkovich" in prov["contrast"]

    # each part records its own preprocessing (label samples: residuals, templates: the pipeline)
    (tmp_path / "train" / "preprocessing.json").write_text(json.dumps({"n4": {"shrink_mm": 4.0}}))
    assert cohort_preprocessing_record(tmp_path, settings) == {
        "milestones": {"n4": {"shrink_mm": 3.0}}, "templates": {"n4": {"shrink_mm": 4.0}}}
    assert cohort_preprocessing_record(tmp_path, DEFAULTS) == {"n4": {"shrink_mm": 4.0}}
    calls.clear()
    uneven = dict(settings, mixed_samples={"templates": [2, 1]})
    train, val = build_data(tmp_path, tmp_path / "shared", uneven, 1)
    assert sorted(train["age"].tolist()) == [0, 1, 100, 101, 102, 103] and len(val["age"]) == 3
    assert ("templates", "train", 2, 1) in calls and ("milestones", "milestones-train", 4, 1) in calls
    for bad in ([600, 1], [2], "2,1"):
        with pytest.raises(InputError, match="mixed_samples templates"):
            build_data(tmp_path, tmp_path / "shared", dict(settings, mixed_samples={"templates": bad}), 1)
    calls.clear()  # more samples than the age strata would not continue the folder's ages
    for too_many in (dict(DEFAULTS, **MILESTONE_RECIPE, n_train=1024), dict(settings, n_train=2000)):
        with pytest.raises(InputError, match="the ages are drawn for 512 and 96"):
            build_data(tmp_path, tmp_path / "shared", too_many, 1)
    assert calls == []
    with pytest.raises(InputError, match="template-blend synthesis"):
        build_data(tmp_path, tmp_path / "shared", dict(settings, training_age_range_months=[0, 30]), 1)
    assert calls == [] and not any(tmp_path.glob("*ages0-30*"))
