"""Regional myelination maturity of one session, from its model-input images.

Method (``docs/outputs.md``, Regional maturity):

1. In the model's reference space (64^3, 3 mm) each white-matter region of
   :data:`~bids_infantage.maturity.atlas.REGIONS` gets, per available channel (T1w, T2w, T1w/T2w
   ratio), a **contrast**: the median intensity of the region's voxels inside the brain mask
   divided by the median of the cortical grey matter (the within-subject reference). A
   global intensity scaling cancels.
2. The **age-expected contrasts** (norms) are those of the five BMEXInfant templates (0, 6, 9,
   12 and 24 months) through the same preprocessing (``scripts/make_regional_atlas.py``),
   linearly interpolated in age.
3. The **regional age** is the age in 0-24 months whose expected contrasts are nearest to the
   measured ones (least squares over the channels, each channel's residual divided by its
   :data:`channel scale <regional_age>`, a grid of 0.05 months). The **lag** is the regional age
   minus the whole-brain estimate (the model's predicted age, clipped to 0-24): negative values
   mean the region looks younger than the brain as a whole.
4. The **maturity fraction** of a region is how far its contrast has moved from the 0-month to
   the 24-month template's (0 = neonate, 1 = 24 months; mean over the channels). It drives the
   ordering checks (posterior before anterior, central before peripheral, caudal before
   rostral; Barkovich et al. 1988; Dubois et al. 2014).

Limits: the norms come from population-average templates, so there is no between-infant
spread and no z-score; the regions are affinely aligned, so at 3 mm each region's median mixes
in neighbouring tissue; T1w contrast changes little after about 12 months (T1w-only regional
ages beyond that are weak).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .atlas import REFERENCE_REGION, REGIONS

CHANNELS = ("t1w", "t2w", "ratio")
#: ordering checks: name -> (earlier regions, later regions)
ORDERING = {
    "posterior_before_anterior": (("occipital_wm", "cc_splenium"), ("frontal_wm", "cc_genu")),
    "central_before_peripheral": (
        ("internal_capsule", "cc_genu", "cc_body", "cc_splenium", "centrum_semiovale"),
        ("frontal_wm", "parietal_wm", "occipital_wm", "temporal_wm"),
    ),
    "caudal_before_rostral": (
        ("brainstem", "cerebellar_wm"),
        ("internal_capsule", "centrum_semiovale", "frontal_wm", "parietal_wm", "occipital_wm",
         "temporal_wm"),
    ),
}
AGE_GRID = np.round(np.arange(0.0, 24.0 + 1e-9, 0.05), 2)
MIN_VOXELS = 3

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "regions"
ATLAS_FILE = "regions_space-infantageRef_dseg.nii.gz"
NORMS_FILE = "regional_norms.json"


def region_names() -> list[str]:
    """White-matter region names in index order (the reference region excluded)."""
    return [name for index, (name, _) in sorted(REGIONS.items()) if index != REFERENCE_REGION]


@lru_cache(maxsize=1)
def load_norms(path: str | None = None) -> dict:
    """The shipped age-expected contrasts (``data/regions/regional_norms.json``).

    Returns
    -------
    dict
        ``ages`` (months), ``contrast`` ({region: {channel: [value per age]}}) and provenance.
    """
    return json.loads(Path(path or DATA_DIR / NORMS_FILE).read_text())


def load_regions(reference_mask=None) -> np.ndarray:
    """Region map on the reference grid, (Z, Y, X) uint8 in SimpleITK index order.

    Parameters
    ----------
    reference_mask : SimpleITK.Image, optional
        A bundle's reference mask; when its grid differs from the shipped map's, the map is
        resampled onto it (nearest neighbour, world coordinates).
    """
    import SimpleITK as sitk

    atlas = sitk.ReadImage(str(DATA_DIR / ATLAS_FILE), sitk.sitkUInt8)
    if reference_mask is not None and (
        atlas.GetSize() != reference_mask.GetSize()
        or not np.allclose(atlas.GetOrigin(), reference_mask.GetOrigin(), atol=1e-3)
        or not np.allclose(atlas.GetSpacing(), reference_mask.GetSpacing(), atol=1e-4)
        or not np.allclose(atlas.GetDirection(), reference_mask.GetDirection(), atol=1e-4)
    ):
        atlas = sitk.Resample(atlas, reference_mask, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                              sitk.sitkUInt8)
    return sitk.GetArrayFromImage(atlas)


def regional_contrasts(image: np.ndarray, mask: np.ndarray, regions: np.ndarray,
                       channels) -> dict:
    """Median intensity of each region relative to the cortical grey matter.

    Parameters
    ----------
    image : numpy.ndarray
        float (3, Z, Y, X) model input: T1w, T2w, ratio (standardized, any global scale).
    mask : numpy.ndarray
        (Z, Y, X) brain mask in the reference space.
    regions : numpy.ndarray
        (Z, Y, X) region indices (:func:`load_regions`).
    channels : sequence of str
        Channels present, from :data:`CHANNELS`.

    Returns
    -------
    dict
        {region name: {"n_voxels": int, channel: contrast or NaN}}; NaN where the region has
        fewer than :data:`MIN_VOXELS` voxels in the mask or the reference median is not positive.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask) > 0
    if image.shape[1:] != mask.shape or regions.shape != mask.shape:
        raise ValueError(f"image {image.shape}, mask {mask.shape} and regions {regions.shape} "
                         "must share the reference grid")
    ref = (regions == REFERENCE_REGION) & mask
    out = {}
    for index, (name, _) in sorted(REGIONS.items()):
        if index == REFERENCE_REGION:
            continue
        sel = (regions == index) & mask
        entry = {"n_voxels": int(sel.sum())}
        for channel in channels:
            c = CHANNELS.index(channel)
            denom = float(np.median(image[c][ref])) if ref.sum() >= MIN_VOXELS else 0.0
            if sel.sum() < MIN_VOXELS or denom <= 0:
                entry[channel] = float("nan")
            else:
                entry[channel] = float(np.median(image[c][sel]) / denom)
        out[name] = entry
    return out


def channel_scales(norms: dict) -> dict:
    """Per channel: the median over regions of the range of the expected contrast (0-24 months).

    It puts the channels' residuals on one scale in :func:`regional_age`.
    """
    scales = {}
    for channel in CHANNELS:
        ranges = [np.ptp(values[channel]) for values in norms["contrast"].values()
                  if channel in values and np.all(np.isfinite(values[channel]))]
        scales[channel] = float(max(np.median(ranges), 1e-3)) if ranges else 1.0
    return scales


def regional_age(contrast: dict, norm: dict, scales: dict, ages) -> float:
    """Age (months, 0-24) whose expected contrasts best match one region's measured ones.

    Parameters
    ----------
    contrast : dict
        {channel: measured contrast} (NaN channels are ignored).
    norm : dict
        {channel: expected contrast at each of ``ages``}.
    scales : dict
        {channel: scale} from :func:`channel_scales`.
    ages : sequence of float
        Ages (months) of the norm values, increasing.

    Returns
    -------
    float
        Regional age on :data:`AGE_GRID`, or NaN when no channel is usable.
    """
    cost = np.zeros_like(AGE_GRID)
    used = 0
    for channel, value in contrast.items():
        if (channel not in CHANNELS or channel not in norm or not np.isfinite(value)
                or not np.all(np.isfinite(norm[channel]))):
            continue
        expected = np.interp(AGE_GRID, ages, norm[channel])
        cost += ((value - expected) / scales[channel]) ** 2
        used += 1
    if not used:
        return float("nan")
    return float(AGE_GRID[int(np.argmin(cost))])


def maturity_fraction(contrast: dict, norm: dict, ages) -> float:
    """Mean over the channels of (measured - expected at 0 months) / (expected at 24 - at 0).

    0 is the neonate template's contrast, 1 the 24-month template's; NaN without a channel.
    """
    fractions = []
    for channel, value in contrast.items():
        if (channel not in CHANNELS or channel not in norm or not np.isfinite(value)
                or not np.all(np.isfinite(norm[channel]))):
            continue
        lo, hi = np.interp([0.0, 24.0], ages, norm[channel])
        if abs(hi - lo) > 1e-6:
            fractions.append((value - lo) / (hi - lo))
    return float(np.mean(fractions)) if fractions else float("nan")


def ordering_checks(fractions: dict) -> dict:
    """Does the earlier group's maturity fraction exceed the later group's?

    Parameters
    ----------
    fractions : dict
        {region name: maturity fraction}.

    Returns
    -------
    dict
        {check: {"difference": earlier mean - later mean (fraction of the 0-24 month change),
        "holds": bool or None (None when undefined)}}.
    """
    out = {}
    for name, (early, late) in ORDERING.items():
        a = [fractions[r] for r in early if np.isfinite(fractions.get(r, np.nan))]
        b = [fractions[r] for r in late if np.isfinite(fractions.get(r, np.nan))]
        if a and b:
            diff = float(np.mean(a) - np.mean(b))
            out[name] = {"difference": diff, "holds": bool(diff > 0)}
        else:
            out[name] = {"difference": float("nan"), "holds": None}
    return out


def regional_maturity(image, mask, regions, channels, whole_brain_age: float,
                      norms: dict | None = None) -> dict:
    """Regional ages, lags, maturity fractions and ordering checks of one session.

    Parameters
    ----------
    image, mask, regions, channels
        As :func:`regional_contrasts`.
    whole_brain_age : float
        The whole-brain estimate (months), e.g. the model's predicted age; clipped to 0-24.
    norms : dict, optional
        Age-expected contrasts (:func:`load_norms` when None).

    Returns
    -------
    dict
        ``rows`` (one dict per region: ``region``, ``region_index``, ``group``, ``n_voxels``,
        ``contrast_<channel>``, ``expected_contrast_<channel>`` at the whole-brain age,
        ``maturity_fraction``, ``regional_age_months``, ``lag_months``, ``lag_rank``; 1 =
        furthest behind), ``ordering`` (:func:`ordering_checks`) and ``whole_brain_age_months``.
    """
    norms = norms or load_norms()
    ages = np.asarray(norms["ages"], dtype=float)
    scales = channel_scales(norms)
    whole = float(np.clip(whole_brain_age, 0.0, 24.0)) if np.isfinite(whole_brain_age) else float("nan")
    contrasts = regional_contrasts(image, mask, regions, channels)
    rows, fractions = [], {}
    for index, (name, group) in sorted(REGIONS.items()):
        if index == REFERENCE_REGION:
            continue
        measured = {c: contrasts[name][c] for c in channels}
        norm = norms["contrast"][name]
        age = regional_age(measured, norm, scales, ages)
        fraction = maturity_fraction(measured, norm, ages)
        fractions[name] = fraction
        row = {"region": name, "region_index": index, "group": group,
               "n_voxels": contrasts[name]["n_voxels"]}
        for channel in CHANNELS:
            row[f"contrast_{channel}"] = measured.get(channel, float("nan"))
            row[f"expected_contrast_{channel}"] = (
                float(np.interp(whole, ages, norm[channel]))
                if channel in measured and np.isfinite(whole) else float("nan"))
        row.update(maturity_fraction=fraction, regional_age_months=age,
                   lag_months=age - whole if np.isfinite(age) and np.isfinite(whole) else float("nan"))
        rows.append(row)
    lags = np.array([r["lag_months"] for r in rows])
    order = [i for i in np.argsort(np.where(np.isfinite(lags), lags, np.inf), kind="stable")
             if np.isfinite(lags[i])]
    for rank, i in enumerate(order, start=1):
        rows[i]["lag_rank"] = rank
    for row in rows:
        row.setdefault("lag_rank", None)
    return {"rows": rows, "ordering": ordering_checks(fractions), "whole_brain_age_months": whole}


def lag_map(regions: np.ndarray, rows) -> np.ndarray:
    """(Z, Y, X) float32 map: each region's ``lag_months``, 0 outside the regions (and NaN lags)."""
    out = np.zeros(regions.shape, np.float32)
    for row in rows:
        if row["lag_months"] is not None and np.isfinite(row["lag_months"]):
            out[regions == row["region_index"]] = row["lag_months"]
    return out
