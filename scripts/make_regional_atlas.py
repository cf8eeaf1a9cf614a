#!/usr/bin/env python
"""Make the regional-maturity data of the package: the region map and the age-expected contrasts.

Usage::

    .venv/bin/python scripts/make_regional_atlas.py ../shared bids_infantage/data/regions

1. The white-matter regions of :func:`bids_infantage.maturity.atlas.define_regions` are drawn
   on the 12-month ``infant-asegs`` label map (Apache-2.0; its licence is copied beside the
   map), affinely normalized to the default model's reference brain mask and resampled to the
   64^3, 3 mm reference grid (majority vote): ``regions_space-infantageRef_dseg.nii.gz`` and
   ``regions_space-infantageRef_dseg.tsv``.
2. Each BMEXInfant template (0, 6, 9, 12, 24 months; MIT) goes through the training
   preprocessing (:func:`bids_infantage.models.preprocess.preprocess_session`: N4, T1w-to-T2w
   rigid, affine normalization, standardization); its regional contrasts
   (:func:`bids_infantage.maturity.regional.regional_contrasts`) are the norms at its age:
   ``regional_norms.json``.

A rerun writes the same bytes (gzip mtime 0, sorted JSON, values rounded to 6 digits).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ASEG = "infant-asegs/12mo_aseg_acpc.nii.gz"
COHORT_AGES = {1: 0.0, 2: 6.0, 3: 9.0, 4: 12.0, 5: 24.0}


def region_map(shared: Path, reference):
    """The reference-space region map (SimpleITK uint8 image on the reference grid)."""
    import nibabel as nb
    import SimpleITK as sitk

    from bids_infantage.image.registration import register_mask_to_reference
    from bids_infantage.maturity.atlas import define_regions, regions_to_reference

    img = nb.load(shared / ASEG)
    aseg = np.asarray(img.dataobj).astype(np.int32)
    labels = define_regions(aseg, img.affine)
    with tempfile.TemporaryDirectory() as tmp:
        nb.Nifti1Image(labels, img.affine).to_filename(Path(tmp) / "regions.nii.gz")
        nb.Nifti1Image((aseg > 0).astype(np.uint8), img.affine).to_filename(Path(tmp) / "mask.nii.gz")
        regions = sitk.ReadImage(str(Path(tmp) / "regions.nii.gz"), sitk.sitkUInt8)
        mask = sitk.ReadImage(str(Path(tmp) / "mask.nii.gz"), sitk.sitkUInt8)
    xfm, dice = register_mask_to_reference(mask, reference)
    print(f"aseg brain mask -> reference mask: Dice {dice:.3f}")
    out = sitk.GetImageFromArray(regions_to_reference(regions, reference, xfm))
    out.CopyInformation(reference)
    return out


def template_contrasts(shared: Path, reference, regions: np.ndarray, family: str = "BMEXInfant",
                       cohort: int | str = 1) -> dict:
    """Regional contrasts (all three channels) of one template through the training preprocessing."""
    import SimpleITK as sitk

    from bids_infantage.maturity.regional import CHANNELS, regional_contrasts
    from bids_infantage.models.preprocess import preprocess_session

    folder = shared / "templateflow" / f"tpl-{family}" / f"cohort-{cohort}"

    def read(suffix):
        path = sorted(folder.glob(f"*_{suffix}.nii.gz"))[0]
        img = sitk.ReadImage(str(path), sitk.sitkFloat32)
        return sitk.DICOMOrient(img, "RAS")

    out = preprocess_session(read("T1w"), read("T2w"), reference_mask=reference)
    return regional_contrasts(out["image"], out["mask"], regions, CHANNELS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("shared", type=Path, help="the ../shared folder")
    parser.add_argument("out_dir", type=Path, help="bids_infantage/data/regions")
    args = parser.parse_args(argv)

    import SimpleITK as sitk

    from bids_infantage.maturity.atlas import REGIONS, RULES
    from bids_infantage.maturity.regional import ATLAS_FILE, CHANNELS, NORMS_FILE
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.utils.io import write_nifti_reproducible

    if not (args.shared / ASEG).is_file():
        sys.exit(f"{args.shared / ASEG}: not found; pass the ../shared folder")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    reference = load_bundle("infantage-default").reference_mask()
    atlas = region_map(args.shared, reference)
    write_nifti_reproducible(atlas, args.out_dir / ATLAS_FILE)
    regions = sitk.GetArrayFromImage(atlas)
    lines = ["index\tname\tgroup\tn_voxels"]
    lines += [f"{i}\t{name}\t{group}\t{int((regions == i).sum())}" for i, (name, group) in REGIONS.items()]
    (args.out_dir / ATLAS_FILE.replace(".nii.gz", ".tsv")).write_text("\n".join(lines) + "\n")
    shutil.copyfile(args.shared / "infant-asegs" / "LICENSE", args.out_dir / "LICENSE-infant-asegs")

    ages = sorted(COHORT_AGES.values())
    contrast = {name: {c: [] for c in CHANNELS} for i, (name, _) in REGIONS.items() if name != "cortical_grey_matter"}
    for cohort, age in sorted(COHORT_AGES.items()):
        values = template_contrasts(args.shared, reference, regions, cohort=cohort)
        for name, entry in values.items():
            for c in CHANNELS:
                contrast[name][c].append(round(float(entry[c]), 6))
        print(f"cohort-{cohort} ({age:g} months): " + ", ".join(
            f"{n} {values[n]['t2w']:.3f}" for n in ("internal_capsule", "occipital_wm", "frontal_wm")))
    norms = {
        "ages": ages,
        "contrast": contrast,
        "reference_region": "cortical_grey_matter (FreeSurfer labels 3, 42)",
        "channels": list(CHANNELS),
        "source": {
            "regions": f"{ASEG} (DCAN-Labs/BIBSnet, Apache-2.0), geometric rules {RULES}",
            "norms": "tpl-BMEXInfant cohorts 1-5 (DBC-Lab/Brain_MRI_Enhancement, MIT) through "
                     "bids_infantage.models.preprocess.preprocess_session",
            "made_by": "scripts/make_regional_atlas.py",
        },
    }
    (args.out_dir / NORMS_FILE).write_text(json.dumps(norms, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
