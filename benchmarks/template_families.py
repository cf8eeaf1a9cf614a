"""How the two template families differ in appearance (issue #14): smoothness, size, rim CSF.

The shipped model is trained on the BMEXInfant templates and judged on tpl-UNCBCP4DInfant
(``benchmarks/transfer.py``). This prints, per template of both families:

* ``volume``: brain-mask volume (ml; mask = both images > 0, holes filled);
* ``FWHM T1w`` / ``FWHM T2w``: image smoothness (mm), the first-difference estimator of
  Forman et al. (Magn Reson Med 1995) as in AFNI's 3dFWHMx (without its detrending): per axis
  ``dx * sqrt(-2 ln 2 / ln(1 - var(diff) / (2 var)))`` over voxel pairs inside the mask
  eroded by 2 mm, averaged over the three axes. On images with anatomy this measures the
  anatomy too, so compare it between families at the same age, not as a noise FWHM;
* ``rim CSF``: share (%) of the mask's outer 4 mm whose T2w is above the 90th percentile
  of T2w inside the mask (CSF is the brightest tissue on T2w: extra-axial CSF and open sulci kept by the mask);
* the same smoothness for each BMEXInfant template blurred by a Gaussian of 1 and 2 mm FWHM
  (``transfer.py``'s ``blur`` probes), to read which blur makes BMEX as smooth as UNC.

Usage::

    .venv/bin/python benchmarks/template_families.py [--shared ../shared]

About 1 min on one core (images at their 0.8 mm grid). Reads ../shared in place.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

BMEX = [(1, 0), (2, 6), (3, 9), (4, 12), (5, 24)]  # (cohort, age in months)
UNC = [0, 3, 6, 12, 24]


def family_paths(shared: Path):
    """(family, age in months, T1w path, T2w path) of the ten templates."""
    tf = shared / "templateflow"
    for cohort, age in BMEX:
        base = tf / "tpl-BMEXInfant" / f"cohort-{cohort}" / f"tpl-BMEXInfant_cohort-{cohort}_res-1_"
        yield "BMEXInfant", age, Path(f"{base}T1w.nii.gz"), Path(f"{base}T2w.nii.gz")
    for age in UNC:
        base = (tf / "tpl-UNCBCP4DInfant" / f"cohort-{age}"
                / f"tpl-UNCBCP4DInfant_cohort-{age}_desc-brain_")
        yield "UNCBCP4DInfant", age, Path(f"{base}T1w.nii.gz"), Path(f"{base}T2w.nii.gz")


def fwhm_first_difference(image: np.ndarray, mask: np.ndarray, zooms) -> float:
    """Smoothness (mm) of ``image`` (X, Y, Z) inside ``mask`` (bool, same shape), voxel sizes
    ``zooms`` (mm): the mean over axes of Forman et al.'s (1995) first-difference FWHM.
    NaN when the mask has fewer than 100 voxel pairs along an axis."""
    values = []
    v0 = float(np.var(image[mask]))
    for axis, dx in enumerate(zooms):
        a = np.swapaxes(image, 0, axis)
        m = np.swapaxes(mask, 0, axis)
        pair = m[1:] & m[:-1]
        if pair.sum() < 100 or v0 <= 0:
            return float("nan")
        v1 = float(np.var((a[1:] - a[:-1])[pair]))
        ratio = 1.0 - v1 / (2.0 * v0)
        values.append(dx * np.sqrt(-2.0 * np.log(2.0) / np.log(ratio)) if 0 < ratio < 1 else np.nan)
    return float(np.mean(values))


def _blur(image: np.ndarray, mask: np.ndarray, zooms, fwhm_mm: float) -> np.ndarray:
    from scipy import ndimage as ndi

    sigma = [fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / z for z in zooms]
    m = mask.astype(np.float32)
    num = ndi.gaussian_filter(image * m, sigma)
    den = ndi.gaussian_filter(m, sigma)
    return np.where(mask, num / np.maximum(den, 1e-3), 0).astype(np.float32)


def describe(t1_path: Path, t2_path: Path) -> dict:
    import nibabel as nb
    from scipy import ndimage as ndi

    t1_img = nb.load(str(t1_path))
    zooms = [float(z) for z in t1_img.header.get_zooms()[:3]]
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    t2 = np.asarray(nb.load(str(t2_path)).dataobj, dtype=np.float32)
    mask = ndi.binary_fill_holes((t1 > 0) & (t2 > 0))
    depth = ndi.distance_transform_edt(mask, sampling=zooms)
    core = depth > 2.0
    rim = mask & (depth <= 4.0)
    bright = t2 > np.percentile(t2[mask], 90)
    out = {"volume_ml": float(mask.sum() * np.prod(zooms) / 1000.0),
           "fwhm_t1w": fwhm_first_difference(t1, core, zooms),
           "fwhm_t2w": fwhm_first_difference(t2, core, zooms),
           "rim_csf_pct": float(100.0 * (bright & rim).sum() / max(rim.sum(), 1))}
    return out, (t1, t2, mask, core, zooms)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = p.parse_args(argv)
    print("| family | age (months) | volume (ml) | FWHM T1w (mm) | FWHM T2w (mm) | rim CSF (%) "
          "| FWHM T1w / T2w after 1 mm blur | after 2 mm blur |")
    print("|---|---|---|---|---|---|---|---|")
    for family, age, t1p, t2p in family_paths(args.shared):
        d, (t1, t2, mask, core, zooms) = describe(t1p, t2p)
        blurred = []
        if family == "BMEXInfant":
            for f in (1.0, 2.0):
                blurred.append(
                    f"{fwhm_first_difference(_blur(t1, mask, zooms, f), core, zooms):.2f} / "
                    f"{fwhm_first_difference(_blur(t2, mask, zooms, f), core, zooms):.2f}")
        else:
            blurred = ["", ""]
        print(f"| {family} | {age} | {d['volume_ml']:.0f} | {d['fwhm_t1w']:.2f} | "
              f"{d['fwhm_t2w']:.2f} | {d['rim_csf_pct']:.1f} | {blurred[0]} | {blurred[1]} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
