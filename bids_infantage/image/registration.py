"""Rigid T1w->T2w registration, affine normalization of a brain mask to the model's reference,
and the same-brain check (SimpleITK; no nipype).

Parameters live in ``data/t1w-t2w-rigid.json`` and ``data/normalization-affine.json``.
"""
from __future__ import annotations

import numpy as np

from ..utils.data import load_json
from .resampling import _at_spacing, crop_to_mask, mask_region, resample_like, smooth_mask


def _shrink_factors(image, shrink_mm):
    sp = min(image.GetSpacing())
    return [max(1, int(round(s / sp))) for s in shrink_mm]


def _configure(reg, params, fixed):
    """Optimizer, multi-resolution schedule (mm) and interpolator shared by both registrations."""
    import SimpleITK as sitk

    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=params["learning_rate"],
        minStep=params["min_step"],
        numberOfIterations=params["iterations"],
        relaxationFactor=params["relaxation"],
        gradientMagnitudeTolerance=1e-6,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(_shrink_factors(fixed, params["shrink_mm"]))
    reg.SetSmoothingSigmasPerLevel(params["smoothing_mm"])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetNumberOfThreads(1)  # bit-for-bit reproducible metric sums


def register_rigid_t1w_to_t2w(t2w, t1w, t2w_mask, params: dict | None = None):
    """Rigid (6 DOF) registration of T1w onto T2w by Mattes mutual information.

    Parameters
    ----------
    t2w, t1w : SimpleITK.Image
        Bias-corrected, brain-masked images (fixed and moving), any grid, mm.
    t2w_mask : SimpleITK.Image
        Brain mask of the fixed image (uint8).
    params : dict, optional
        Overrides ``data/t1w-t2w-rigid.json``.

    Returns
    -------
    transform : SimpleITK.Euler3DTransform
        Maps points of T2w space to T1w space (ITK convention: resample T1w with it).
    metric : float
        Final MI metric (negative; lower is better).
    """
    import SimpleITK as sitk

    params = params or load_json("t1w-t2w-rigid.json")
    t2w = crop_to_mask(sitk.Cast(t2w, sitk.sitkFloat32), t2w_mask)
    t1w = crop_to_mask(sitk.Cast(t1w, sitk.sitkFloat32), t1w > 0)
    fixed = _at_spacing(t2w, params["work_spacing_mm"])
    moving = _at_spacing(t1w, params["work_spacing_mm"])
    t2w_mask = resample_like(t2w_mask, fixed, interpolator="nearest")
    init = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=params["histogram_bins"])
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(params["sampling_percentage"], 42)
    reg.SetMetricFixedMask(sitk.Cast(t2w_mask > 0, sitk.sitkUInt8))
    _configure(reg, params, fixed)
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    if isinstance(out, sitk.CompositeTransform):
        out = out.GetNthTransform(0)
    return sitk.Euler3DTransform(out), float(reg.GetMetricValue())


#: Edge correlation (:func:`edge_correlation`) below which a registered T1w and T2w are taken
#: for two different brains. Measured on the template families after this registration:
#: 0.79-0.87 for a template's own T1w and T2w (``benchmarks/transfer.py``, nine pairs of both
#: families; 0.22 for the BMEXInfant 24-month pair, which is not in register), 0.00-0.45 for a
#: T1w and a T2w of different templates (other family, or 3 months apart); not yet checked on
#: real scans.
SAME_BRAIN_MIN = 0.6


def edge_correlation(t1w, t2w, mask, *, sigma_mm: float = 2.0, spacing_mm: float = 1.5) -> float:
    """Whether a T1w and a T2w show the same brain: the Pearson correlation of their
    gradient magnitudes (Gaussian derivative, ``sigma_mm``) inside ``mask`` eroded by 3 mm.

    Tissue boundaries (cortex, ventricles, deep nuclei) lie in the same places in both
    contrasts of one brain, whatever the contrast; in two different brains they do not.

    Parameters
    ----------
    t1w, t2w : SimpleITK.Image
        On the same grid (T1w resampled into T2w space), any intensity scale.
    mask : SimpleITK.Image
        Brain mask on that grid.
    sigma_mm, spacing_mm : float
        Derivative scale; grid spacing the images are brought to first (speed).

    Returns
    -------
    float
        Correlation in [-1, 1]; NaN when the eroded mask is empty or an image is constant.
    """
    import SimpleITK as sitk
    from scipy import ndimage

    region = mask_region(mask, margin_mm=5.0)
    if region is None:
        return float("nan")
    arrays = []
    for img in (t1w, t2w, sitk.Cast(mask > 0, sitk.sitkFloat32)):
        arrays.append(_at_spacing(crop_to_mask(sitk.Cast(img, sitk.sitkFloat32), mask, region=region),
                                  spacing_mm))
    spacing = np.asarray(arrays[0].GetSpacing())[::-1]
    a, b, m = (sitk.GetArrayFromImage(x).astype(np.float64) for x in arrays)
    inner = ndimage.binary_erosion(m > 0.5, iterations=max(1, int(round(3.0 / spacing.min()))))
    if inner.sum() < 100:
        return float("nan")
    ga = ndimage.gaussian_gradient_magnitude(a, sigma_mm / spacing)
    gb = ndimage.gaussian_gradient_magnitude(b, sigma_mm / spacing)
    x, y = ga[inner], gb[inner]
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def register_mask_to_reference(mask, reference_mask, params: dict | None = None):
    """Affine normalization of a brain mask to the model's reference brain mask.

    Mean squares between Gaussian-smoothed masks: independent of contrast, so it works
    at every age and for any modality. Brain size is removed by the affine; callers keep it
    as brain volume (ml) for the model.

    Parameters
    ----------
    mask : SimpleITK.Image
        Subject brain mask (uint8), any grid.
    reference_mask : SimpleITK.Image
        Reference brain mask on the model grid (uint8, e.g. 64^3 at 3 mm).

    Returns
    -------
    transform : SimpleITK.AffineTransform
        Maps reference points to subject points (resample subject images with it).
    overlap : float
        Dice of the normalized mask with the reference mask (QC).
    """
    import SimpleITK as sitk

    params = params or load_json("normalization-affine.json")
    sigma = params["mask_smoothing_mm"]
    fixed = smooth_mask(reference_mask, sigma)
    # work grid for the moving mask: same spacing as the reference, covering the subject
    m = sitk.Cast(mask > 0, sitk.sitkUInt8)
    work = params["work_spacing_mm"]
    size = [int(np.ceil(sz * sp / work)) for sz, sp in zip(m.GetSize(), m.GetSpacing())]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing([work] * 3)
    grid.SetOrigin(m.GetOrigin())
    grid.SetDirection(m.GetDirection())
    moving = smooth_mask(resample_like(m, grid), sigma)
    init = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    # start from an isotropic scaling that matches the volumes
    v_fix = float(sitk.GetArrayViewFromImage(reference_mask).sum()) * np.prod(reference_mask.GetSpacing())
    v_mov = float(sitk.GetArrayViewFromImage(m).sum()) * np.prod(m.GetSpacing())
    scale = (v_mov / max(v_fix, 1e-6)) ** (1.0 / 3.0)
    init = sitk.AffineTransform(init)
    init.SetMatrix((np.eye(3) * scale).ravel().tolist())
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMeanSquares()
    reg.SetMetricSamplingStrategy(reg.NONE)
    _configure(reg, params, fixed)
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    if isinstance(out, sitk.CompositeTransform):
        out = out.GetNthTransform(0)
    xfm = sitk.AffineTransform(out)
    warped = resample_like(m, reference_mask, xfm, interpolator="nearest")
    a = sitk.GetArrayViewFromImage(warped) > 0
    b = sitk.GetArrayViewFromImage(reference_mask) > 0
    dice = float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))
    return xfm, dice


def same_brain(correlation: float | None) -> bool:
    """Whether a T1w-T2w edge correlation (:func:`edge_correlation`) passes the same-brain
    check: not below :data:`SAME_BRAIN_MIN`. None (one image) and NaN (nothing to compare)
    pass."""
    return correlation is None or not np.isfinite(correlation) or correlation >= SAME_BRAIN_MIN


def same_brain_messages(correlation: float) -> list[str]:
    """The QC message (a list of 0 or 1 str) for a T1w-T2w edge correlation
    (:func:`edge_correlation`) that fails :func:`same_brain`."""
    from ..utils.numbers import format_pair

    if same_brain(correlation):
        return []
    shown = format_pair(correlation, SAME_BRAIN_MIN, 2)
    return [f"T1w and T2w may not show the same brain (edge correlation {shown[0]} < {shown[1]} "
            "after registration): check that both images belong to this session"]
