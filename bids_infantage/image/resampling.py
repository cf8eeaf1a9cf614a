"""Resampling, cropping and smoothing of SimpleITK images (no nipype).

Grids are in mm (SimpleITK's physical space); transforms follow the ITK convention (they map
points of the output grid to points of the input image).
"""
from __future__ import annotations

import numpy as np


def mask_region(mask, margin_mm: float = 10.0):
    """Index region of ``mask``'s bounding box plus ``margin_mm`` (clipped to the grid).

    Returns
    -------
    tuple of (start, size) lists, or None
        Voxel indices for ``SimpleITK.RegionOfInterest``; None for an empty mask.
    """
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    if not stats.HasLabel(1):
        return None
    box = stats.GetBoundingBox(1)
    ndim = mask.GetDimension()
    start, size = list(box[:ndim]), list(box[ndim:])
    for d in range(ndim):
        pad = int(np.ceil(margin_mm / mask.GetSpacing()[d]))
        lo = max(0, start[d] - pad)
        hi = min(mask.GetSize()[d], start[d] + size[d] + pad)
        start[d], size[d] = lo, hi - lo
    return start, size


def crop_to_mask(image, mask, margin_mm: float = 10.0, region=None):
    """``image`` cropped to the bounding box of ``mask`` (same grid) plus ``margin_mm``.

    World coordinates are kept, so a transform estimated on the crop applies to the whole
    image; the smoothing pyramid of a registration then works on the brain, not on the whole
    field of view (3x fewer voxels for the 24-month template). An empty mask returns ``image``.
    ``region`` (from :func:`mask_region`) skips recomputing the box when several images on
    the same grid are cropped.
    """
    import SimpleITK as sitk

    region = region if region is not None else mask_region(mask, margin_mm)
    if region is None:
        return image
    start, size = region
    return sitk.RegionOfInterest(image, size, start)


def _at_spacing(image, spacing_mm: float):
    """The image on a grid of ``spacing_mm`` voxels (anti-aliased) when its voxels are finer;
    registrations are estimated there (the transform is physical, so it applies at full
    resolution)."""
    import SimpleITK as sitk

    if min(image.GetSpacing()) >= spacing_mm * 0.9:
        return image
    size = [max(8, int(np.ceil(sz * sp / spacing_mm))) for sz, sp in zip(image.GetSize(), image.GetSpacing())]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing([spacing_mm] * 3)
    grid.SetOrigin(image.GetOrigin())
    grid.SetDirection(image.GetDirection())
    return resample_like(image, grid)


def smooth_mask(mask, sigma_mm: float):
    """Gaussian-smoothed float32 version of a mask (binarized at 0.5; values 0..1)."""
    import SimpleITK as sitk

    return sitk.SmoothingRecursiveGaussian(sitk.Cast(mask > 0.5, sitk.sitkFloat32), sigma_mm)


def resample_like(image, reference, transform=None, *, interpolator="linear", antialias=True):
    """Resample ``image`` onto the grid of ``reference`` through ``transform``.

    With ``antialias`` the image is first Gaussian-smoothed to the target voxel size
    (sigma = sqrt(max(0, s_out^2 - s_in^2)) / 2.355 per axis, mm; per axis when
    the grids share axes, else with the largest output spacing), so downsampling to the
    model's 3 mm grid does not alias.

    Parameters
    ----------
    image, reference : SimpleITK.Image
    transform : SimpleITK.Transform, optional
        Maps reference points to image points (ITK convention). Identity when None.
    interpolator : {"linear", "nearest"}

    Returns
    -------
    SimpleITK.Image
        float32 (linear) or uint8 (nearest) on the reference grid.
    """
    import SimpleITK as sitk

    transform = transform or sitk.Transform()
    if interpolator == "nearest":
        return sitk.Resample(
            sitk.Cast(image, sitk.sitkUInt8), reference, transform, sitk.sitkNearestNeighbor, 0,
            sitk.sitkUInt8,
        )
    img = sitk.Cast(image, sitk.sitkFloat32)
    if antialias:
        same_axes = np.allclose(np.abs(reference.GetDirection()), np.abs(img.GetDirection()))
        s_outs = reference.GetSpacing() if same_axes else [max(reference.GetSpacing())] * 3
        sigmas = [
            float(np.sqrt(max(0.0, so**2 - s**2)) / 2.355)
            for so, s in zip(s_outs, img.GetSpacing())
        ]
        if max(sigmas) > 0.05:
            img = sitk.SmoothingRecursiveGaussian(img, [max(s, 1e-3) for s in sigmas])
    return sitk.Resample(img, reference, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
