"""White-matter regions of the model's reference space, from a real infant's aseg.

The regions follow the order in which myelination proceeds (caudal to rostral, posterior to
anterior, central to peripheral; Barkovich et al., Radiology 1988; Dubois et al., Neuroscience
2014). They are defined on the 12-month ``infant-asegs`` label map (FreeSurfer labels, one
Baby Connectome Project infant, ACPC, 1 mm), which has no corpus callosum, internal capsule
or lobar labels; those come from the documented geometric rules of :func:`define_regions`.
The label map is then normalized to the reference brain mask with the pipeline's own affine
(:func:`~bids_infantage.image.registration.register_mask_to_reference`) and resampled to
the 64^3, 3 mm reference grid by a majority vote of linearly resampled one-hot maps.

``scripts/make_regional_atlas.py`` runs it and writes ``bids_infantage/data/regions/``.
"""
from __future__ import annotations

import numpy as np

#: index -> (name, group used by the ordering checks)
REGIONS: dict[int, tuple[str, str]] = {
    1: ("brainstem", "caudal"),
    2: ("cerebellar_wm", "caudal"),
    3: ("internal_capsule", "central"),
    4: ("cc_genu", "central"),
    5: ("cc_body", "central"),
    6: ("cc_splenium", "central"),
    7: ("centrum_semiovale", "central"),
    8: ("frontal_wm", "peripheral"),
    9: ("parietal_wm", "peripheral"),
    10: ("occipital_wm", "peripheral"),
    11: ("temporal_wm", "peripheral"),
    12: ("cortical_grey_matter", "reference"),
}
#: The within-subject reference: the cortex (FreeSurfer 3, 42). Of the references tried (deep
#: grey matter, cortex, the whole brain mask) its contrasts change most monotonically with age
#: on the BMEXInfant templates and transfer least badly to tpl-UNCBCP4DInfant (model card).
REFERENCE_REGION = 12

#: Regions a few millimetres thick (internal capsule, corpus callosum) and their vote weight
THIN_REGIONS = (3, 4, 5, 6)
THIN_WEIGHT = 2.0

#: FreeSurfer aseg labels used (FreeSurferColorLUT).
CEREBRAL_WM = (2, 41)
CORTEX = (3, 42)
LATERAL_VENTRICLES = (4, 43)
CEREBELLAR_WM = (7, 46)
BRAINSTEM = (16,)
THALAMUS_CAUDATE = {"left": (10, 11), "right": (49, 50)}
PUTAMEN_PALLIDUM = {"left": (12, 13), "right": (51, 52)}

#: Geometric rules (mm in the aseg's world space, or fractions of the cerebral white matter's
#: extent along the anterior-posterior (``y``) and inferior-superior (``z``) axes).
RULES = {
    "internal_capsule_mm": 4.0,      # WM within this distance of both thalamus/caudate and
                                     # putamen/pallidum of the same side
    "callosal_halfwidth_mm": 5.0,    # WM within this distance of the mid-sagittal plane,
                                     # above the floor of the lateral ventricles
    "callosal_thirds": (1 / 3, 2 / 3),  # splenium | body | genu along y of the callosal WM
    "semiovale_above_ventricles_mm": 0.0,  # WM above the top of the lateral ventricles ...
    "semiovale_from_cortex_mm": 3.0,       # ... and at least this far from the cortex
    "occipital_y": 0.20,             # y fraction below which WM is occipital
    "frontal_y": 0.55,               # y fraction above which WM is frontal
    "temporal_z": 0.35,              # z fraction below which (between occipital and 0.65 y)
    "temporal_y_max": 0.65,          # WM is temporal
}


def _distance_mm(mask: np.ndarray, zooms) -> np.ndarray:
    from scipy import ndimage

    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~mask, sampling=zooms)


def define_regions(aseg: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Label the white-matter regions of :data:`REGIONS` on a FreeSurfer aseg.

    Parameters
    ----------
    aseg : numpy.ndarray
        Integer label map (X, Y, Z), FreeSurfer labels.
    affine : numpy.ndarray
        (4, 4) voxel-to-world (RAS, mm) affine of ``aseg``.

    Returns
    -------
    numpy.ndarray
        uint8 (X, Y, Z): region index of :data:`REGIONS`, 0 elsewhere.

    Raises
    ------
    ValueError
        If the aseg lacks cerebral white matter or the lateral ventricles.
    """
    import nibabel as nb

    aseg = np.asarray(aseg).astype(np.int32)
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
    wm = np.isin(aseg, CEREBRAL_WM)
    vent = np.isin(aseg, LATERAL_VENTRICLES)
    if not wm.any() or not vent.any():
        raise ValueError("the aseg has no cerebral white matter (2, 41) or lateral ventricles (4, 43)")
    ijk = np.indices(aseg.shape).reshape(3, -1).T
    xyz = nb.affines.apply_affine(affine, ijk).reshape(*aseg.shape, 3)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    out = np.zeros(aseg.shape, np.uint8)

    out[np.isin(aseg, BRAINSTEM)] = 1
    out[np.isin(aseg, CEREBELLAR_WM)] = 2
    out[np.isin(aseg, CORTEX)] = REFERENCE_REGION

    capsule = np.zeros_like(wm)
    d = RULES["internal_capsule_mm"]
    for side, wm_label in (("left", 2), ("right", 41)):
        near_thal = _distance_mm(np.isin(aseg, THALAMUS_CAUDATE[side]), zooms) <= d
        near_put = _distance_mm(np.isin(aseg, PUTAMEN_PALLIDUM[side]), zooms) <= d
        capsule |= (aseg == wm_label) & near_thal & near_put
    out[capsule] = 3

    # mid-sagittal plane: halfway between the left and right cerebral WM centroids
    midline = 0.5 * (x[aseg == 2].mean() + x[aseg == 41].mean())
    vent_floor = z[vent].min()
    callosal = wm & ~capsule & (np.abs(x - midline) <= RULES["callosal_halfwidth_mm"]) & (z > vent_floor)
    if callosal.any():
        y0, y1 = y[callosal].min(), y[callosal].max()
        frac = (y - y0) / max(y1 - y0, 1e-6)
        lo, hi = RULES["callosal_thirds"]
        out[callosal & (frac < lo)] = 6
        out[callosal & (frac >= lo) & (frac < hi)] = 5
        out[callosal & (frac >= hi)] = 4

    rest = wm & (out == 0)
    far_cortex = _distance_mm(np.isin(aseg, CORTEX), zooms) >= RULES["semiovale_from_cortex_mm"]
    semiovale = rest & (z > z[vent].max() + RULES["semiovale_above_ventricles_mm"]) & far_cortex
    out[semiovale] = 7

    rest = wm & (out == 0)
    yw, zw = y[wm], z[wm]
    yn = (y - yw.min()) / max(np.ptp(yw), 1e-6)
    zn = (z - zw.min()) / max(np.ptp(zw), 1e-6)
    occipital = rest & (yn < RULES["occipital_y"])
    temporal = rest & ~occipital & (zn < RULES["temporal_z"]) & (yn < RULES["temporal_y_max"])
    frontal = rest & ~occipital & ~temporal & (yn >= RULES["frontal_y"])
    parietal = rest & ~occipital & ~temporal & ~frontal
    out[frontal] = 8
    out[parietal] = 9
    out[occipital] = 10
    out[temporal] = 11
    return out


def regions_to_reference(regions, reference_mask, transform):
    """Resample a region map to the reference grid by a majority vote.

    Parameters
    ----------
    regions : SimpleITK.Image
        Region indices (uint8) on the aseg grid.
    reference_mask : SimpleITK.Image
        The model's reference brain mask (64^3, 3 mm).
    transform : SimpleITK.Transform
        Maps reference points to aseg points (from ``register_mask_to_reference``).

    Returns
    -------
    numpy.ndarray
        uint8 (Z, Y, X) array in SimpleITK order, inside the reference mask where the labelled
        fraction (all regions) is at least 0.5: the region with the largest linearly resampled
        fraction, the thin ones (internal capsule, corpus callosum: :data:`THIN_WEIGHT`) counted
        double so that they survive the 3 mm grid; 0 elsewhere.
    """
    import SimpleITK as sitk

    from ..image.resampling import resample_like

    arr = sitk.GetArrayFromImage(regions)
    indices = sorted(REGIONS)
    fractions = []
    for index in indices:
        one = sitk.GetImageFromArray((arr == index).astype(np.float32))
        one.CopyInformation(regions)
        fractions.append(sitk.GetArrayFromImage(resample_like(one, reference_mask, transform)))
    fractions = np.stack(fractions)
    weights = np.array([THIN_WEIGHT if i in THIN_REGIONS else 1.0 for i in indices])
    best = (fractions * weights[:, None, None, None]).argmax(0)
    keep = (fractions.sum(0) >= 0.5) & (sitk.GetArrayFromImage(reference_mask) > 0)
    return np.where(keep, np.asarray(indices)[best], 0).astype(np.uint8)
