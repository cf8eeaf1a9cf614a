"""Reportlets of the anatomical processing steps (niworkflows ``viz`` style).

Each function reads NIfTI images, draws a few sagittal, coronal and axial slices on a black
background with the overlay that shows whether the step worked (brain mask, T1w-T2w
registration, normalization, T1w/T2w ratio, saliency), and writes one SVG with matplotlib's
Agg backend. Images are reoriented to RAS+ before slicing, so left is left and superior is up
in every panel; panels are drawn in millimetres (anisotropic voxels keep their aspect). Text
is kept as SVG text (``svg.fonttype: none``) and the files carry no date, so the same inputs
give the same bytes (:mod:`bids_infantage.reports.plotting`). The age chart is in
:mod:`bids_infantage.reports.agechart`, the regional maturity panel in
:mod:`bids_infantage.reports.regional`.

The SVGs are sunk into ``sub-<label>/figures/`` and assembled into the subject's HTML report
by :func:`bids_infantage.reports.participant.generate_report`.
"""
from __future__ import annotations

import numpy as np

from .plotting import (
    SVG_RC,
    check_grid,
    cut_indices,
    display_window,
    draw_background,
    draw_colorbar,
    draw_contours,
    draw_overlay,
    label_cuts,
    load_ras,
    panel_grid,
    pyplot,
    row_label,
    save_svg,
)

#: Colour of the brain-mask and reference-mask contours.
MASK_COLOR = "#ff2020"
#: Colours of the T1w edge contours in the registration reportlet (one per intensity level).
EDGE_COLORS = ("#00e5ff", "#ffe600", "#ff3df5")


def plot_mask(anat_file, mask_file, out_file, bias_field_file=None, *, n_cuts: int = 3) -> str:
    """Brain-mask contour on the anatomical image (and the N4 bias field if given).

    Parameters
    ----------
    anat_file : str or Path
        Anatomical image (T1w or T2w), shape (X, Y, Z), any voxel size (mm), arbitrary units.
    mask_file : str or Path
        Binary brain mask on the same grid (voxels > 0.5 are brain).
    out_file : str or Path
        Output SVG.
    bias_field_file : str or Path, optional
        Multiplicative bias field (unitless, around 1) on the same grid; drawn as a second row
        (viridis, with a colorbar).
    n_cuts : int
        Slices per orientation.

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = pyplot()
    anat, zooms = load_ras(anat_file)
    mask, _ = load_ras(mask_file)
    check_grid(anat, mask, "mask_file")
    field = None
    if bias_field_file is not None:
        field, _ = load_ras(bias_field_file)
        check_grid(anat, field, "bias_field_file")
    cuts = cut_indices(mask if np.any(mask > 0.5) else anat, n_cuts)
    n_rows = 1 if field is None else 2
    with plt.rc_context(SVG_RC):
        fig, axes, caxes = panel_grid(n_rows, n_cuts, colorbar=field is not None)
        vmin, vmax = display_window(anat)
        draw_background(axes[0], anat, zooms, cuts, vmin, vmax)
        draw_contours(axes[0], (mask > 0.5).astype(np.float32), zooms, cuts, [0.5], [MASK_COLOR])
        row_label(fig, axes[0], "brain mask")
        if field is not None:
            caxes[0].set_axis_off()
            fmin, fmax = display_window(field, mask, pct=(1.0, 99.0))
            draw_background(axes[1], anat, zooms, cuts, vmin, vmax)
            im = draw_overlay(axes[1], field, zooms, cuts, cmap="viridis", vmin=fmin, vmax=fmax,
                               alpha=0.85)
            draw_contours(axes[1], (mask > 0.5).astype(np.float32), zooms, cuts, [0.5],
                           [MASK_COLOR], linewidths=0.5)
            row_label(fig, axes[1], "bias field")
            draw_colorbar(fig, caxes[1], im, "bias field (x)")
        return save_svg(fig, out_file)


def plot_registration(fixed_file, moving_before_file, moving_after_file, out_file, *,
                      n_cuts: int = 3) -> str:
    """T1w edges on the T2w before (top row) and after (bottom row) rigid registration.

    The moving image is drawn as iso-intensity contours at its 30th, 60th and 85th percentiles
    (of the non-zero voxels of the registered image, the same levels in both rows), so tissue
    boundaries of the T1w should lie on those of the T2w in the "after" row.

    Parameters
    ----------
    fixed_file : str or Path
        T2w image (fixed), shape (X, Y, Z), voxel size in mm.
    moving_before_file : str or Path
        T1w resampled on the fixed grid with the identity transform (before registration).
    moving_after_file : str or Path
        T1w resampled on the fixed grid with the estimated rigid transform.
    out_file : str or Path
        Output SVG.
    n_cuts : int
        Slices per orientation.

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = pyplot()
    fixed, zooms = load_ras(fixed_file)
    before, _ = load_ras(moving_before_file)
    after, _ = load_ras(moving_after_file)
    check_grid(fixed, before, "moving_before_file")
    check_grid(fixed, after, "moving_after_file")
    cuts = cut_indices(fixed > display_window(fixed)[0], n_cuts)
    ref = after[after != 0]
    if ref.size == 0:
        ref = after.ravel()
    levels = sorted(set(float(v) for v in np.percentile(ref, [30, 60, 85])))
    colors = EDGE_COLORS[: len(levels)]
    with plt.rc_context(SVG_RC):
        fig, axes, _ = panel_grid(2, n_cuts)
        vmin, vmax = display_window(fixed)
        for row, (moving, label) in enumerate(((before, "before"), (after, "after"))):
            draw_background(axes[row], fixed, zooms, cuts, vmin, vmax)
            draw_contours(axes[row], moving, zooms, cuts, levels, colors, linewidths=0.6)
            row_label(fig, axes[row], label)
        return save_svg(fig, out_file)


def plot_normalization(image_file, reference_mask_file, out_file, *, n_cuts: int = 3) -> str:
    """Subject image in the model's reference space with the reference brain-mask contour.

    Parameters
    ----------
    image_file : str or Path
        Subject image resampled to the reference grid (the model input: 64 x 64 x 64 voxels of
        3 mm), normalized intensities.
    reference_mask_file : str or Path
        Reference brain mask on the same grid.
    out_file : str or Path
        Output SVG.
    n_cuts : int
        Slices per orientation.

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = pyplot()
    image, zooms = load_ras(image_file)
    ref, _ = load_ras(reference_mask_file)
    check_grid(image, ref, "reference_mask_file")
    cuts = cut_indices(ref if np.any(ref > 0.5) else image, n_cuts)
    with plt.rc_context(SVG_RC):
        fig, axes, _ = panel_grid(1, n_cuts)
        vmin, vmax = display_window(image)
        draw_background(axes[0], image, zooms, cuts, vmin, vmax)
        draw_contours(axes[0], (ref > 0.5).astype(np.float32), zooms, cuts, [0.5], [MASK_COLOR])
        row_label(fig, axes[0], "reference")
        return save_svg(fig, out_file)


def plot_ratio(ratio_file, mask_file, out_file, *, n_cuts: int = 3) -> str:
    """T1w/T2w ratio map inside the brain mask (magma) with a colorbar.

    Parameters
    ----------
    ratio_file : str or Path
        T1w/T2w ratio (unitless), shape (X, Y, Z).
    mask_file : str or Path
        Brain mask on the same grid; voxels outside are not drawn (black).
    out_file : str or Path
        Output SVG.
    n_cuts : int
        Slices per orientation.

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = pyplot()
    ratio, zooms = load_ras(ratio_file)
    mask, _ = load_ras(mask_file)
    check_grid(ratio, mask, "mask_file")
    inside = mask > 0.5
    cuts = cut_indices(inside if inside.any() else ratio, n_cuts)
    vmin, vmax = display_window(ratio, inside.astype(np.float32))
    shown = np.where(inside, ratio, np.nan).astype(np.float32)
    with plt.rc_context(SVG_RC):
        fig, axes, caxes = panel_grid(1, n_cuts, colorbar=True)
        im = draw_overlay(axes[0], shown, zooms, cuts, cmap="magma", vmin=vmin, vmax=vmax)
        label_cuts(axes[0], cuts)
        row_label(fig, axes[0], "T1w/T2w")
        draw_colorbar(fig, caxes[0], im, "T1w/T2w ratio")
        return save_svg(fig, out_file)


def plot_saliency(anat_file, saliency_file, out_file, *, threshold: float = 0.2,
                  alpha: float = 0.6, n_cuts: int = 3, method: str = "Grad-CAM") -> str:
    """Saliency as a "hot" overlay on the anatomical image.

    Parameters
    ----------
    anat_file : str or Path
        Anatomical image, shape (X, Y, Z), voxel size in mm.
    saliency_file : str or Path
        Saliency map on the same grid, scaled to 0..1 (1 = most influential voxels).
    out_file : str or Path
        Output SVG.
    threshold : float
        Saliency below this value (0..1) is not drawn.
    alpha : float
        Opacity of the overlay (0..1).
    n_cuts : int
        Slices per orientation.
    method : str
        How the map was made, for the colour bar (``Grad-CAM``, ``gradient saliency``).

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = pyplot()
    anat, zooms = load_ras(anat_file)
    sal, _ = load_ras(saliency_file)
    check_grid(anat, sal, "saliency_file")
    cuts = cut_indices(anat > display_window(anat)[0], n_cuts)
    shown = np.where(sal >= threshold, np.clip(sal, 0.0, 1.0), np.nan).astype(np.float32)
    with plt.rc_context(SVG_RC):
        fig, axes, caxes = panel_grid(1, n_cuts, colorbar=True)
        vmin, vmax = display_window(anat)
        draw_background(axes[0], anat, zooms, cuts, vmin, vmax)
        im = draw_overlay(axes[0], shown, zooms, cuts, cmap="hot", vmin=0.0, vmax=1.0,
                           alpha=alpha)
        row_label(fig, axes[0], "saliency")
        draw_colorbar(fig, caxes[0], im, f"{method} (>= {threshold:g})")
        return save_svg(fig, out_file)

