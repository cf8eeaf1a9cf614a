"""The BMEXInfant templates on the model's grids: template files, the reference brain mask
(3 mm), and the templates affinely normalized to it on the 2 mm synthesis grid (step 1 of the
recipe in :mod:`bids_infantage.models.synthesis`), with their white-matter maps (step 6) and
the T1w aligned to the T2w where the two are out of register.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...image.registration import register_mask_to_reference
from ...image.resampling import resample_like

LOGGER = logging.getLogger("bids_infantage.synthesis")

#: BMEXInfant cohort -> age (months)
TEMPLATE_AGES = {1: 0.0, 2: 6.0, 3: 9.0, 4: 12.0, 5: 24.0}
REFERENCE_COHORT = 4
REF_SHAPE = (64, 64, 64)
REF_SPACING_MM = 3.0
SYNTH_SHAPE = (96, 96, 96)
SYNTH_SPACING_MM = 2.0


def template_path(tf_home: str | Path, cohort: int, suffix: str) -> Path:
    """Path of a BMEXInfant template image in a TemplateFlow home (``res-1``)."""
    return (
        Path(tf_home) / "tpl-BMEXInfant" / f"cohort-{cohort}"
        / f"tpl-BMEXInfant_cohort-{cohort}_res-1_{suffix}.nii.gz"
    )


def _grid(center, shape, spacing, direction):
    import SimpleITK as sitk

    img = sitk.Image([int(s) for s in shape], sitk.sitkFloat32)
    img.SetSpacing([float(spacing)] * 3)
    img.SetDirection(direction)
    d = np.asarray(direction).reshape(3, 3)
    half = (np.asarray(shape) - 1) / 2.0 * spacing
    img.SetOrigin(tuple(np.asarray(center) - d @ half))
    return img


def _center_of_mass(mask):
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    return np.asarray(stats.GetCentroid(1))


def build_reference_mask(tf_home: str | Path):
    """Reference brain mask of the model: the 12-month template's mask on a 64^3, 3 mm grid.

    Returns
    -------
    SimpleITK.Image
        uint8, 64x64x64 voxels of 3 mm (192 mm field of view), RAS, centred on the brain.
    """
    import SimpleITK as sitk

    from ...image.masks import mask_from_skull_stripped

    t2w = sitk.ReadImage(str(template_path(tf_home, REFERENCE_COHORT, "T2w")), sitk.sitkFloat32)
    mask = mask_from_skull_stripped(t2w)
    grid = _grid(_center_of_mass(mask), REF_SHAPE, REF_SPACING_MM, t2w.GetDirection())
    ref = resample_like(sitk.Cast(mask, sitk.sitkFloat32), grid) > 0.5
    return sitk.Cast(ref, sitk.sitkUInt8)


def _wm_probability(t2w: np.ndarray, mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """White-matter map of a template: 3-class k-means of its T2w in the brain mask; CSF is the
    brightest class; white matter is the more central of the other two (cortex is peripheral)."""
    from scipy.cluster.vq import kmeans2
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    vals = t2w[mask].astype(np.float64)[:, None]
    rng = np.random.default_rng(seed)
    init = np.percentile(vals, [20, 60, 97])[:, None]
    _, labels = kmeans2(vals, init, minit="matrix", seed=rng)
    means = [vals[labels == k].mean() if np.any(labels == k) else -np.inf for k in range(3)]
    csf = int(np.argmax(means))
    depth = distance_transform_edt(mask)[mask]  # distance from the brain surface
    others = [k for k in range(3) if k != csf]
    wm = max(others, key=lambda k: depth[labels == k].mean() if np.any(labels == k) else -1)
    out = np.zeros(t2w.shape, np.float32)
    out[mask] = (labels == wm).astype(np.float32)
    return gaussian_filter(out, 0.5)


#: Edge correlation (:func:`~bids_infantage.image.registration.edge_correlation`) of a
#: template's T1w and T2w on the synthesis grid below which the T1w is taken to be out of
#: register with its T2w. BMEXInfant 0-12 months: 0.61-0.81; 24 months: 0.08 (the T1w is
#: offset and scaled by up to 8% against the T2w and its mask).
T1W_IN_REGISTER_MIN = 0.4


def grid_edge_correlation(t1w: np.ndarray, t2w: np.ndarray, mask: np.ndarray,
                          spacing_mm: float = SYNTH_SPACING_MM) -> float:
    """:func:`~bids_infantage.image.registration.edge_correlation` of two arrays
    (Z, Y, X) on a grid of ``spacing_mm`` voxels, inside ``mask > 0.5``."""
    import SimpleITK as sitk

    from ...image.registration import edge_correlation

    images = []
    for a in (t1w, t2w, (mask > 0.5).astype(np.uint8)):
        img = sitk.GetImageFromArray(a)
        img.SetSpacing([spacing_mm] * 3)
        images.append(img)
    return edge_correlation(*images)


def coarse_to_fine_demons(fixed, moving, iterations: int):
    """Displacement field (SimpleITK, float64 vectors) of diffeomorphic demons (fast symmetric
    forces, field smoothing SD 1.5 voxels) from ``moving`` to ``fixed``: ``iterations`` at
    twice the grid spacing (4 mm on the synthesis grid), then as many at full resolution,
    started from the coarse field. Intensities must be comparable (histogram-match first)."""
    import SimpleITK as sitk

    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(iterations)
    demons.SetStandardDeviations(1.5)
    field = None
    for shrink in (2, 1):
        f = sitk.Shrink(fixed, [shrink] * 3) if shrink > 1 else fixed
        mv = sitk.Shrink(moving, [shrink] * 3) if shrink > 1 else moving
        if field is not None:
            field = sitk.Resample(field, f, sitk.Transform(), sitk.sitkLinear, 0.0,
                                  sitk.sitkVectorFloat64)
            field = demons.Execute(f, mv, field)
        else:
            field = demons.Execute(f, mv)
    return field


def align_t1w_to_t2w(t1w: np.ndarray, t2w: np.ndarray, mask: np.ndarray,
                     spacing_mm: float = SYNTH_SPACING_MM) -> np.ndarray:
    """Warp a template's T1w onto its T2w when the two are not in register.

    An affine registration (Mattes mutual information, SimpleITK), then diffeomorphic demons
    (fast symmetric forces) of the T1w to the T2w with its contrast inverted inside the brain
    (white matter dark and CSF bright on T2w, the reverse on T1w, from about 8 months;
    Barkovich et al., Radiology 1988), after histogram matching.

    Parameters
    ----------
    t1w, t2w : ndarray (Z, Y, X)
        On one grid of ``spacing_mm`` voxels; the T2w defines the anatomy.
    mask : ndarray (Z, Y, X)
        The T2w's brain-mask probability.

    Returns
    -------
    ndarray (Z, Y, X)
        The T1w on the T2w's anatomy, float32, 0 outside ``mask > 0.05``.
    """
    import SimpleITK as sitk

    inside = mask > 0.5
    pseudo = np.where(mask > 0.05, t2w[inside].max() - t2w, 0.0).astype(np.float32)
    fixed = sitk.GetImageFromArray(pseudo)
    moving = sitk.GetImageFromArray(t1w.astype(np.float32))
    for img in (fixed, moving):
        img.SetSpacing([spacing_mm] * 3)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, 1)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([1, 0])
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetInitialTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS), inPlace=False)
    affine = reg.Execute(fixed, moving)
    matched = sitk.HistogramMatching(sitk.Resample(moving, fixed, affine, sitk.sitkLinear, 0.0), fixed, 128, 7, True)
    field = coarse_to_fine_demons(fixed, matched, iterations=80)
    warp = sitk.CompositeTransform(3)
    warp.AddTransform(affine)
    warp.AddTransform(sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64)))
    out = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, warp, sitk.sitkLinear, 0.0))
    return (out * (mask > 0.05)).astype(np.float32)


def normalize_templates(tf_home, reference_mask, cohorts=(1, 2, 3, 4, 5)):
    """BMEXInfant templates affinely normalized to the reference brain mask, on the 2 mm
    synthesis grid (96^3, 192 mm, centred on the reference mask).

    Each template's brain mask (:func:`mask_from_skull_stripped` of its T2w) is registered to
    the reference (:func:`register_mask_to_reference`, the pipeline's affine); T1w and T2w are
    resampled with it and divided by their 99th percentile in the mask; a T1w out of register
    with its T2w is aligned to it (:func:`align_t1w_to_t2w`).

    Returns
    -------
    images : ndarray (K, 4, 96, 96, 96) float32
        Per cohort: T1w, T2w, brain-mask probability, white-matter probability
        (:func:`_wm_probability`), SimpleITK (z, y, x) order.
    grid : SimpleITK.Image
        The synthesis grid.
    """
    import SimpleITK as sitk

    from ...image.masks import mask_from_skull_stripped

    grid = _grid(_center_of_mass(reference_mask), SYNTH_SHAPE, SYNTH_SPACING_MM,
                 reference_mask.GetDirection())
    images = []
    for c in cohorts:
        t1 = sitk.ReadImage(str(template_path(tf_home, c, "T1w")), sitk.sitkFloat32)
        t2 = sitk.ReadImage(str(template_path(tf_home, c, "T2w")), sitk.sitkFloat32)
        mask = mask_from_skull_stripped(t2)
        xfm, dice = register_mask_to_reference(mask, reference_mask)
        LOGGER.info("template cohort-%d: mask Dice to reference %.3f", c, dice)
        arrs = []
        for img in (t1, t2):
            a = sitk.GetArrayFromImage(resample_like(img, grid, xfm))
            arrs.append(a)
        m = sitk.GetArrayFromImage(resample_like(sitk.Cast(mask, sitk.sitkFloat32), grid, xfm))
        inside = m > 0.5
        for a in arrs:
            a /= max(np.percentile(a[inside], 99), 1e-6)
        before = grid_edge_correlation(arrs[0], arrs[1], m)
        if before < T1W_IN_REGISTER_MIN:  # T1w not in register with the T2w and its mask
            arrs[0] = align_t1w_to_t2w(arrs[0], arrs[1], m)
            arrs[0] /= max(np.percentile(arrs[0][inside], 99), 1e-6)
            LOGGER.info("template cohort-%d: T1w out of register with the T2w (edge correlation "
                        "%.2f); aligned to it (%.2f)", c, before, grid_edge_correlation(arrs[0], arrs[1], m))
        for a in arrs:
            a *= m > 0.05
        wm = _wm_probability(arrs[1], inside)
        images.append(np.stack([arrs[0], arrs[1], m, wm]).astype(np.float32))
    return np.stack(images), grid
