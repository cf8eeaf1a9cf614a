"""matplotlib helpers shared by the reportlets (niworkflows ``viz`` style).

Images are loaded in RAS+ orientation (decimated for display), cut in evenly spaced sagittal,
coronal and axial slices, drawn in millimetres on a black grid of panels (anisotropic voxels
keep their aspect) and written as SVG with the Agg backend. Text is kept as SVG text
(``svg.fonttype: none``) and the files carry no date, so the same inputs give the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: Orientations drawn in every row, in order: (name, axis of the cut in RAS voxel space).
ORIENTATIONS = (("sagittal", 0), ("coronal", 1), ("axial", 2))
#: matplotlib settings shared by all reportlets (deterministic, text kept as text).
SVG_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "bids-infantage",
    "font.size": 8,
    "savefig.facecolor": "black",
}


def pyplot():
    """Import pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: largest number of voxels along an axis that a reportlet draws (larger grids are decimated)
DISPLAY_MAX_VOXELS = 128


def load_ras(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float]]:
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


def check_grid(ref: np.ndarray, other: np.ndarray, what: str) -> None:
    """Raise if ``other`` is not on the grid of ``ref`` (same shape after RAS reorientation)."""
    if ref.shape != other.shape:
        raise ValueError(f"{what} has shape {other.shape}, expected {ref.shape} (same grid)")


def cut_indices(support: np.ndarray, n_cuts: int) -> dict[int, list[int]]:
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


def display_window(data: np.ndarray, mask: np.ndarray | None = None,
            pct=(2.0, 98.0)) -> tuple[float, float]:
    """Display range from percentiles of the voxels in ``mask`` (or of the non-zero voxels)."""
    sel = data[mask > 0] if mask is not None and np.any(mask > 0) else data[data != 0]
    if sel.size == 0:
        sel = data.ravel()
    lo, hi = (float(v) for v in np.percentile(sel, pct))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def panel_grid(n_rows: int, n_cuts: int, *, colorbar: bool = False, row_height: float = 1.25):
    """Figure with ``n_rows`` rows of ``3 * n_cuts`` panels (sagittal, coronal, axial cuts).

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : numpy.ndarray of Axes
        Shape (n_rows, 3 * n_cuts).
    cbar_axes : list of Axes or None
        One narrow axis per row at the right edge when ``colorbar`` is true.
    """
    plt = pyplot()
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


def row_label(fig, axes_row, text: str) -> None:
    """Write a row label, rotated, left of the first panel of the row."""
    box = axes_row[0].get_position()
    fig.text(0.03, (box.y0 + box.y1) / 2, text, color="white", rotation=90,
             ha="center", va="center", fontsize=9, fontweight="bold")


def draw_background(axes_row, data, zooms, cuts, vmin, vmax, cmap="gray") -> None:
    """Draw grayscale slices of ``data`` in one row of panels, with the cut position."""
    n_cuts = len(cuts[0])
    for o, (_name, axis) in enumerate(ORIENTATIONS):
        for k, index in enumerate(cuts[axis]):
            ax = axes_row[o * n_cuts + k]
            ax.imshow(_slice(data, axis, index), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                      extent=_extent(data.shape, zooms, axis), interpolation="nearest")
    label_cuts(axes_row, cuts)


def label_cuts(axes_row, cuts) -> None:
    """Write the voxel index of each cut (``x=``, ``y=``, ``z=``) in its panel corner."""
    n_cuts = len(cuts[0])
    for o, (_, axis) in enumerate(ORIENTATIONS):
        for k, index in enumerate(cuts[axis]):
            ax = axes_row[o * n_cuts + k]
            ax.text(0.03, 0.03, f"{'xyz'[axis]}={index}", color="white", fontsize=6,
                    transform=ax.transAxes, ha="left", va="bottom")


def draw_contours(axes_row, volume, zooms, cuts, levels, colors, linewidths=0.9) -> None:
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


def draw_overlay(axes_row, volume, zooms, cuts, *, cmap, vmin, vmax, alpha=1.0):
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


def draw_colorbar(fig, cax, im, label: str) -> None:
    """White-on-black colorbar."""
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(label, color="white", fontsize=7)
    cb.ax.tick_params(colors="white", labelsize=6)
    cb.outline.set_edgecolor("white")


def save_svg(fig, out_file: str | Path) -> str:
    """Write ``fig`` as SVG (no date metadata) and close it; returns the absolute path."""
    plt = pyplot()
    out_file = Path(out_file).absolute()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, format="svg", facecolor=fig.get_facecolor(), metadata={"Date": None})
    plt.close(fig)
    return str(out_file)
