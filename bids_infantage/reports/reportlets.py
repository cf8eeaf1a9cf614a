"""Reportlets: one SVG figure per processing step (niworkflows ``viz`` style).

Each function reads NIfTI images, draws a few sagittal, coronal and axial slices on a black
background with the overlay that shows whether the step worked, and writes one SVG with
matplotlib's Agg backend. Images are reoriented to RAS+ before slicing, so left is left and
superior is up in every panel; panels are drawn in millimetres (anisotropic voxels keep their
aspect). Text is kept as SVG text (``svg.fonttype: none``) and the files carry no date, so the
same inputs give the same bytes.

The SVGs are sunk into ``sub-<label>/figures/`` and assembled into the subject's HTML report
by :func:`bids_infantage.reports.core.generate_report`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: Orientations drawn in every row, in order: (name, axis of the cut in RAS voxel space).
ORIENTATIONS = (("sagittal", 0), ("coronal", 1), ("axial", 2))
#: matplotlib settings shared by all reportlets (deterministic, text kept as text).
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "bids-infantage",
    "font.size": 8,
    "savefig.facecolor": "black",
}
#: Colour of the brain-mask and reference-mask contours.
MASK_COLOR = "#ff2020"
#: Colours of the T1w edge contours in the registration reportlet (one per intensity level).
EDGE_COLORS = ("#00e5ff", "#ffe600", "#ff3df5")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _pyplot():
    """Import pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: largest number of voxels along an axis that a reportlet draws (larger grids are decimated)
DISPLAY_MAX_VOXELS = 128


def _load(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Load a 3D NIfTI image in RAS+ orientation.

    Parameters
    ----------
    path : str or Path
        NIfTI image; a 4D image with one volume is accepted.

    Returns
    -------
    data : numpy.ndarray
        float32, shape (X, Y, Z), non-finite values set to 0.
    zooms : tuple of float
        Voxel size (mm) along X, Y, Z.
    """
    import nibabel as nb

    img = nb.as_closest_canonical(nb.load(str(path)))
    data = np.asanyarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D image, got shape {data.shape}")
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    step = int(np.ceil(max(data.shape) / DISPLAY_MAX_VOXELS))
    if step > 1:  # display only: every step-th voxel keeps SVGs small and fast to draw
        data = np.ascontiguousarray(data[::step, ::step, ::step])
        zooms = tuple(z * step for z in zooms)
    return data, zooms


def _check_grid(ref: np.ndarray, other: np.ndarray, what: str) -> None:
    """Raise if ``other`` is not on the grid of ``ref`` (same shape after RAS reorientation)."""
    if ref.shape != other.shape:
        raise ValueError(f"{what} has shape {other.shape}, expected {ref.shape} (same grid)")


def _cut_indices(support: np.ndarray, n_cuts: int) -> dict[int, list[int]]:
    """Evenly spaced slice indices within the bounding box of ``support``, per axis.

    Parameters
    ----------
    support : numpy.ndarray
        Shape (X, Y, Z); voxels > 0 define the region to cut through (the whole volume if
        empty).
    n_cuts : int
        Slices per axis.

    Returns
    -------
    dict
        Axis (0, 1, 2) -> list of ``n_cuts`` voxel indices, avoiding the box edges.
    """
    nz = np.nonzero(support > 0)
    cuts = {}
    for axis in range(3):
        if nz[axis].size:
            lo, hi = int(nz[axis].min()), int(nz[axis].max())
        else:
            lo, hi = 0, support.shape[axis] - 1
        pos = np.linspace(lo, hi, n_cuts + 2)[1:-1]
        cuts[axis] = [int(round(p)) for p in pos]
    return cuts


def _slice(data: np.ndarray, axis: int, index: int) -> np.ndarray:
    """2D slice for display: rows run inferior->superior / posterior->anterior (``origin='lower'``).

    Returns
    -------
    numpy.ndarray
        Shape (rows, cols): (Z, Y) sagittal, (Z, X) coronal, (Y, X) axial.
    """
    return np.take(data, index, axis=axis).T


def _extent(shape: tuple[int, int, int], zooms, axis: int) -> tuple[float, float, float, float]:
    """``imshow`` extent (mm) of a slice cut along ``axis``."""
    cols, rows = [a for a in range(3) if a != axis]
    return (0.0, shape[cols] * zooms[cols], 0.0, shape[rows] * zooms[rows])


def _centers(shape, zooms, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxel-centre coordinates (mm) of a slice, for ``contour``: (x of columns, y of rows)."""
    cols, rows = [a for a in range(3) if a != axis]
    return ((np.arange(shape[cols]) + 0.5) * zooms[cols],
            (np.arange(shape[rows]) + 0.5) * zooms[rows])


def _window(data: np.ndarray, mask: np.ndarray | None = None,
            pct=(2.0, 98.0)) -> tuple[float, float]:
    """Display range from percentiles of the voxels in ``mask`` (or of the non-zero voxels)."""
    sel = data[mask > 0] if mask is not None and np.any(mask > 0) else data[data != 0]
    if sel.size == 0:
        sel = data.ravel()
    lo, hi = (float(v) for v in np.percentile(sel, pct))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def _grid(n_rows: int, n_cuts: int, *, colorbar: bool = False, row_height: float = 1.25):
    """Figure with ``n_rows`` rows of ``3 * n_cuts`` panels (sagittal, coronal, axial cuts).

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : numpy.ndarray of Axes
        Shape (n_rows, 3 * n_cuts).
    cbar_axes : list of Axes or None
        One narrow axis per row at the right edge when ``colorbar`` is true.
    """
    plt = _pyplot()
    n_cols = 3 * n_cuts
    width = 10.0
    fig = plt.figure(figsize=(width, row_height * n_rows + 0.2), facecolor="black")
    right = 0.93 if colorbar else 0.995
    gs = fig.add_gridspec(n_rows, n_cols, left=0.06, right=right, top=0.97, bottom=0.03,
                          wspace=0.02, hspace=0.08)
    axes = np.empty((n_rows, n_cols), dtype=object)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = fig.add_subplot(gs[r, c])
            ax.set_facecolor("black")
            ax.set_axis_off()
            axes[r, c] = ax
    cbar_axes = None
    if colorbar:
        cbar_axes = []
        for r in range(n_rows):
            top = 0.97 - r * (0.94 / n_rows)
            h = 0.94 / n_rows
            cbar_axes.append(fig.add_axes((0.945, top - 0.85 * h, 0.012, 0.7 * h)))
    return fig, axes, cbar_axes


def _row_label(fig, axes_row, text: str) -> None:
    """Write a row label, rotated, left of the first panel of the row."""
    box = axes_row[0].get_position()
    fig.text(0.03, (box.y0 + box.y1) / 2, text, color="white", rotation=90,
             ha="center", va="center", fontsize=9, fontweight="bold")


def _draw_background(axes_row, data, zooms, cuts, vmin, vmax, cmap="gray") -> None:
    """Draw grayscale slices of ``data`` in one row of panels, with the cut position."""
    n_cuts = len(cuts[0])
    for o, (_name, axis) in enumerate(ORIENTATIONS):
        for k, index in enumerate(cuts[axis]):
            ax = axes_row[o * n_cuts + k]
            ax.imshow(_slice(data, axis, index), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                      extent=_extent(data.shape, zooms, axis), interpolation="nearest")
    _label_cuts(axes_row, cuts)


def _label_cuts(axes_row, cuts) -> None:
    """Write the voxel index of each cut (``x=``, ``y=``, ``z=``) in its panel corner."""
    n_cuts = len(cuts[0])
    for o, (_, axis) in enumerate(ORIENTATIONS):
        for k, index in enumerate(cuts[axis]):
            ax = axes_row[o * n_cuts + k]
            ax.text(0.03, 0.03, f"{'xyz'[axis]}={index}", color="white", fontsize=6,
                    transform=ax.transAxes, ha="left", va="bottom")


def _draw_contours(axes_row, volume, zooms, cuts, levels, colors, linewidths=0.9) -> None:
    """Draw iso-contours of ``volume`` at ``levels`` in one row of panels."""
    n_cuts = len(cuts[0])
    for o, (_, axis) in enumerate(ORIENTATIONS):
        for k, index in enumerate(cuts[axis]):
            ax = axes_row[o * n_cuts + k]
            sl = _slice(volume, axis, index)
            if sl.min() < max(levels) and sl.max() > min(levels):
                x, y = _centers(volume.shape, zooms, axis)
                ax.contour(x, y, sl, levels=list(levels), colors=list(colors),
                           linewidths=linewidths)


def _draw_overlay(axes_row, volume, zooms, cuts, *, cmap, vmin, vmax, alpha=1.0):
    """Draw a masked (NaN = transparent) colour overlay in one row; returns the last image."""
    n_cuts = len(cuts[0])
    im = None
    for o, (_, axis) in enumerate(ORIENTATIONS):
        for k, index in enumerate(cuts[axis]):
            ax = axes_row[o * n_cuts + k]
            im = ax.imshow(np.ma.masked_invalid(_slice(volume, axis, index)), cmap=cmap,
                           vmin=vmin, vmax=vmax, alpha=alpha, origin="lower",
                           extent=_extent(volume.shape, zooms, axis), interpolation="nearest")
    return im


def _colorbar(fig, cax, im, label: str) -> None:
    """White-on-black colorbar."""
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(label, color="white", fontsize=7)
    cb.ax.tick_params(colors="white", labelsize=6)
    cb.outline.set_edgecolor("white")


def _save(fig, out_file: str | Path) -> str:
    """Write ``fig`` as SVG (no date metadata) and close it; returns the absolute path."""
    plt = _pyplot()
    out_file = Path(out_file).absolute()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, format="svg", facecolor=fig.get_facecolor(), metadata={"Date": None})
    plt.close(fig)
    return str(out_file)


# --------------------------------------------------------------------------------------------
# reportlets
# --------------------------------------------------------------------------------------------
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
    plt = _pyplot()
    anat, zooms = _load(anat_file)
    mask, _ = _load(mask_file)
    _check_grid(anat, mask, "mask_file")
    field = None
    if bias_field_file is not None:
        field, _ = _load(bias_field_file)
        _check_grid(anat, field, "bias_field_file")
    cuts = _cut_indices(mask if np.any(mask > 0.5) else anat, n_cuts)
    n_rows = 1 if field is None else 2
    with plt.rc_context(_RC):
        fig, axes, caxes = _grid(n_rows, n_cuts, colorbar=field is not None)
        vmin, vmax = _window(anat)
        _draw_background(axes[0], anat, zooms, cuts, vmin, vmax)
        _draw_contours(axes[0], (mask > 0.5).astype(np.float32), zooms, cuts, [0.5], [MASK_COLOR])
        _row_label(fig, axes[0], "brain mask")
        if field is not None:
            caxes[0].set_axis_off()
            fmin, fmax = _window(field, mask, pct=(1.0, 99.0))
            _draw_background(axes[1], anat, zooms, cuts, vmin, vmax)
            im = _draw_overlay(axes[1], field, zooms, cuts, cmap="viridis", vmin=fmin, vmax=fmax,
                               alpha=0.85)
            _draw_contours(axes[1], (mask > 0.5).astype(np.float32), zooms, cuts, [0.5],
                           [MASK_COLOR], linewidths=0.5)
            _row_label(fig, axes[1], "bias field")
            _colorbar(fig, caxes[1], im, "bias field (x)")
        return _save(fig, out_file)


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
    plt = _pyplot()
    fixed, zooms = _load(fixed_file)
    before, _ = _load(moving_before_file)
    after, _ = _load(moving_after_file)
    _check_grid(fixed, before, "moving_before_file")
    _check_grid(fixed, after, "moving_after_file")
    cuts = _cut_indices(fixed > _window(fixed)[0], n_cuts)
    ref = after[after != 0]
    if ref.size == 0:
        ref = after.ravel()
    levels = sorted(set(float(v) for v in np.percentile(ref, [30, 60, 85])))
    colors = EDGE_COLORS[: len(levels)]
    with plt.rc_context(_RC):
        fig, axes, _ = _grid(2, n_cuts)
        vmin, vmax = _window(fixed)
        for row, (moving, label) in enumerate(((before, "before"), (after, "after"))):
            _draw_background(axes[row], fixed, zooms, cuts, vmin, vmax)
            _draw_contours(axes[row], moving, zooms, cuts, levels, colors, linewidths=0.6)
            _row_label(fig, axes[row], label)
        return _save(fig, out_file)


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
    plt = _pyplot()
    image, zooms = _load(image_file)
    ref, _ = _load(reference_mask_file)
    _check_grid(image, ref, "reference_mask_file")
    cuts = _cut_indices(ref if np.any(ref > 0.5) else image, n_cuts)
    with plt.rc_context(_RC):
        fig, axes, _ = _grid(1, n_cuts)
        vmin, vmax = _window(image)
        _draw_background(axes[0], image, zooms, cuts, vmin, vmax)
        _draw_contours(axes[0], (ref > 0.5).astype(np.float32), zooms, cuts, [0.5], [MASK_COLOR])
        _row_label(fig, axes[0], "reference")
        return _save(fig, out_file)


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
    plt = _pyplot()
    ratio, zooms = _load(ratio_file)
    mask, _ = _load(mask_file)
    _check_grid(ratio, mask, "mask_file")
    inside = mask > 0.5
    cuts = _cut_indices(inside if inside.any() else ratio, n_cuts)
    vmin, vmax = _window(ratio, inside.astype(np.float32))
    shown = np.where(inside, ratio, np.nan).astype(np.float32)
    with plt.rc_context(_RC):
        fig, axes, caxes = _grid(1, n_cuts, colorbar=True)
        im = _draw_overlay(axes[0], shown, zooms, cuts, cmap="magma", vmin=vmin, vmax=vmax)
        _label_cuts(axes[0], cuts)
        _row_label(fig, axes[0], "T1w/T2w")
        _colorbar(fig, caxes[0], im, "T1w/T2w ratio")
        return _save(fig, out_file)


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
    plt = _pyplot()
    anat, zooms = _load(anat_file)
    sal, _ = _load(saliency_file)
    _check_grid(anat, sal, "saliency_file")
    cuts = _cut_indices(anat > _window(anat)[0], n_cuts)
    shown = np.where(sal >= threshold, np.clip(sal, 0.0, 1.0), np.nan).astype(np.float32)
    with plt.rc_context(_RC):
        fig, axes, caxes = _grid(1, n_cuts, colorbar=True)
        vmin, vmax = _window(anat)
        _draw_background(axes[0], anat, zooms, cuts, vmin, vmax)
        im = _draw_overlay(axes[0], shown, zooms, cuts, cmap="hot", vmin=0.0, vmax=1.0,
                           alpha=alpha)
        _row_label(fig, axes[0], "saliency")
        _colorbar(fig, caxes[0], im, f"{method} (>= {threshold:g})")
        return _save(fig, out_file)


def _finite(value) -> float | None:
    """``float(value)`` or None for None/NaN/inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def plot_age_chart(predicted, sd, lower, upper, chronological, out_file, volume_ml=None,
                   volume_norms=None) -> str:
    """Predicted versus chronological age, and brain volume against the BCP norms.

    Parameters
    ----------
    predicted : float
        Predicted brain age (months).
    sd : float or None
        Predictive standard deviation (months); used for the error bar when ``lower``/``upper``
        are missing (+/- 1.96 SD).
    lower, upper : float or None
        Prediction interval (months).
    chronological : float or None
        Chronological age at scan (months); None draws the prediction as a horizontal band
        and says "chronological age unknown".
    out_file : str or Path
        Output SVG.
    volume_ml : float, optional
        Brain volume (ml); adds a right panel.
    volume_norms : dict, optional
        BCP norms ``{"<age months>": [mean_ml, sd_ml], ...}`` (keys are strings); drawn as the
        mean with a mean +/- 2 SD band.

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = _pyplot()
    predicted = _finite(predicted)
    if predicted is None:
        raise ValueError("plot_age_chart: predicted age is missing")
    sd, chronological, volume_ml = _finite(sd), _finite(chronological), _finite(volume_ml)
    lower, upper = _finite(lower), _finite(upper)
    if (lower is None or upper is None) and sd is not None:
        lower, upper = predicted - 1.96 * sd, predicted + 1.96 * sd
    lo = lower if lower is not None else predicted
    hi = upper if upper is not None else predicted
    values = [v for v in (predicted, lo, hi, chronological) if v is not None]
    amin = min(0.0, math.floor(min(values)) - 1.0) if min(values) < 0 else 0.0
    amax = max(24.0, math.ceil(max(values)) + 1.0)

    two = volume_ml is not None
    rc = dict(_RC, **{"savefig.facecolor": "white"})
    with plt.rc_context(rc):
        fig, axs = plt.subplots(1, 2 if two else 1, figsize=(9.0 if two else 4.8, 4.0),
                                facecolor="white", squeeze=False)
        ax = axs[0, 0]
        ax.plot([amin, amax], [amin, amax], color="0.5", ls="--", lw=1, label="identity")
        label = f"predicted {predicted:.1f} mo"
        if lower is not None and upper is not None:
            label += f" [{lower:.1f}, {upper:.1f}]"
        if chronological is not None:
            yerr = [[predicted - lo], [hi - predicted]]
            ax.errorbar([chronological], [predicted], yerr=yerr, fmt="o", color="#c0392b",
                        ecolor="#c0392b", capsize=4, ms=7, label=label)
            ax.set_title(f"gap {predicted - chronological:+.1f} months", fontsize=9)
        else:
            ax.axhspan(lo, hi, color="#c0392b", alpha=0.2, lw=0)
            ax.axhline(predicted, color="#c0392b", lw=2, label=label)
            ax.text(0.5, 0.04, "chronological age unknown", transform=ax.transAxes,
                    ha="center", va="bottom", fontsize=9, color="0.2",
                    bbox={"fc": "white", "ec": "0.6", "boxstyle": "round"})
        ax.set_xlim(amin, amax)
        ax.set_ylim(amin, amax)
        ax.set_aspect("equal")
        ax.set_xlabel("chronological age (months)")
        ax.set_ylabel("predicted brain age (months)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)

        if two:
            ax = axs[0, 1]
            if volume_norms:
                ages = sorted((float(k), v) for k, v in volume_norms.items())
                x = np.array([a for a, _ in ages])
                mean = np.array([float(v[0]) for _, v in ages])
                sdv = np.array([float(v[1]) for _, v in ages])
                ax.fill_between(x, mean - 2 * sdv, mean + 2 * sdv, color="#2e86c1", alpha=0.2,
                                lw=0, label="BCP mean +/- 2 SD")
                ax.plot(x, mean, color="#2e86c1", lw=1.5, label="BCP mean")
                amax = max(amax, float(x.max()))
            xerr = None
            if lower is not None and upper is not None:
                xerr = [[predicted - lo], [hi - predicted]]
            ax.errorbar([predicted], [volume_ml], xerr=xerr, fmt="o", color="#c0392b",
                        capsize=4, ms=7, label=f"subject {volume_ml:.0f} ml")
            ax.set_xlim(amin, amax)
            ax.set_xlabel("age (months; subject at predicted age)")
            ax.set_ylabel("brain volume (ml)")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        return _save(fig, out_file)
