#!/usr/bin/env python
"""Make the package's embedded demo images from the five BMEXInfant templates.

Usage::

    .venv/bin/python scripts/make_demo_data.py ../shared/templateflow/tpl-BMEXInfant \
        bids_infantage/data/demo

Each template's T1w and T2w (0.8 mm, skull-stripped, 0..1000) is cropped to the bounding box
of its brain plus 4 mm, smoothed with a Gaussian of sigma 0.5 x 1.6 mm (anti-aliasing) and
resampled to 1.6 mm isotropic with linear interpolation on one grid per cohort, then stored as
uint16 NIfTI (gzip level 9, zero mtime, so a rerun writes the same bytes). The MIT licence of
the templates and a ``demo.json`` (ages, source, sha256 of every image) are written beside
them; ``bids-infantage-demo`` turns these files into a BIDS dataset
(:mod:`bids_infantage.cli.demo`).

Source: DBC-Lab/Brain_MRI_Enhancement, BME_X/Templates (Sun et al., Nat Biomed Eng 2025), MIT.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

#: Age in months of each BMEXInfant cohort (template_description.json of tpl-BMEXInfant)
COHORT_AGES = {1: 0, 2: 6, 3: 9, 4: 12, 5: 24}
SPACING_MM = 1.6
MARGIN_MM = 4.0


def _resample(image, reference, sigma_mm: float):
    import SimpleITK as sitk

    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), sigma_mm)
    out = sitk.Resample(smooth, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return out


def make_cohort(folder: Path, cohort: int):
    """(T1w, T2w) of one cohort at 1.6 mm on the brain's bounding box, as SimpleITK images."""
    import SimpleITK as sitk

    paths = [folder / f"cohort-{cohort}" / f"tpl-BMEXInfant_cohort-{cohort}_res-1_{c}.nii.gz"
             for c in ("T1w", "T2w")]
    images = [sitk.DICOMOrient(sitk.ReadImage(str(p)), "RAS") for p in paths]
    # the union of both brains' bounding boxes, in physical space (the 24-month pair differs)
    corners = []
    for img in images:
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(sitk.Cast(img > 0, sitk.sitkUInt8))
        x, y, z, sx, sy, sz = stats.GetBoundingBox(1)
        for idx in ((x, y, z), (x + sx - 1, y + sy - 1, z + sz - 1)):
            corners.append(img.TransformIndexToPhysicalPoint([int(i) for i in idx]))
    corners = np.array(corners)
    lo = corners.min(axis=0) - MARGIN_MM
    hi = corners.max(axis=0) + MARGIN_MM
    ref = images[0]
    direction = np.array(ref.GetDirection()).reshape(3, 3)
    # an RAS grid: the origin is the corner of the box with the lowest index along each axis
    axes_lo = direction.T @ lo
    axes_hi = direction.T @ hi
    start = np.minimum(axes_lo, axes_hi)
    size = np.ceil(np.abs(axes_hi - axes_lo) / SPACING_MM).astype(int) + 1
    grid = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    grid.SetSpacing([SPACING_MM] * 3)
    grid.SetDirection(ref.GetDirection())
    grid.SetOrigin([float(v) for v in direction @ start])
    out = []
    for img in images:
        res = _resample(img, grid, 0.5 * SPACING_MM)
        arr = np.clip(np.rint(sitk.GetArrayFromImage(res)), 0, 65535).astype(np.uint16)
        # keep the background exactly 0 (the brain was skull-stripped): voxels whose nearest
        # source voxel is background stay 0, so the demo images read as skull-stripped
        near = sitk.Resample(img, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        arr[sitk.GetArrayFromImage(near) == 0] = 0
        o = sitk.GetImageFromArray(arr)
        o.CopyInformation(grid)
        out.append(o)
    return out


def write_nifti(image, path: Path) -> str:
    """Write ``image`` as gzip-compressed NIfTI with zero mtime; returns its sha256."""
    from bids_infantage.utils.io import write_nifti_reproducible

    return write_nifti_reproducible(image, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", type=Path, help="tpl-BMEXInfant folder (TemplateFlow layout)")
    parser.add_argument("out", type=Path, help="output folder (bids_infantage/data/demo)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"source": "DBC-Lab/Brain_MRI_Enhancement BME_X/Templates (commit b47e31f), "
                        "repackaged as TemplateFlow tpl-BMEXInfant; MIT licence (LICENSE-BMEXInfant)",
              "reference": "Sun Y, et al. Nat Biomed Eng 9, 521-538 (2025), "
                           "doi:10.1038/s41551-024-01283-7",
              "processing": f"cropped to the brain + {MARGIN_MM:g} mm, Gaussian sigma "
                            f"{0.5 * SPACING_MM:g} mm, linear resampling to {SPACING_MM:g} mm, uint16",
              "made_by": "scripts/make_demo_data.py",
              "participants": {}}
    for cohort, age in COHORT_AGES.items():
        t1w, t2w = make_cohort(args.templates, cohort)
        files = {}
        for contrast, image in (("T1w", t1w), ("T2w", t2w)):
            name = f"m{age:02d}_{contrast}.nii.gz"
            files[name] = write_nifti(image, args.out / name)
        record["participants"][f"m{age:02d}"] = {"age_months": age, "cohort": cohort,
                                                 "files_sha256": files}
        print(f"cohort-{cohort} ({age} months): grid {t1w.GetSize()}")
    shutil.copyfile(args.templates / "LICENSE", args.out / "LICENSE-BMEXInfant")
    (args.out / "demo.json").write_text(json.dumps(record, indent=1) + "\n")
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{args.out}: {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
