"""Reportlet of the regional myelination maturity (``desc-regional``)."""
from __future__ import annotations

import csv
import math

import numpy as np

from .plotting import SVG_RC, load_ras, pyplot, save_svg

LAG_LIMIT_MONTHS = 6.0
ORDER_LABELS = {
    "posterior_before_anterior": "posterior before anterior",
    "central_before_peripheral": "central before peripheral",
    "caudal_before_rostral": "caudal before rostral",
}


def _num(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return float("nan")
    return value


def plot_regional_maturity(anat_ref_file, map_file, regions_file, table_tsv, out_file, *,
                           ordering: dict | None = None, whole_brain_age: float | None = None) -> str:
    """Regions coloured by their lag behind the whole-brain estimate, and the ordering checks.

    Parameters
    ----------
    anat_ref_file : str or Path
        Anatomical image in the reference space (64^3, 3 mm), the background.
    map_file : str or Path
        Lag map (months) on the same grid (``desc-maturity``).
    regions_file : str or Path
        Region map on the same grid (``data/regions``); only region voxels are coloured.
    table_tsv : str or Path
        ``desc-regional_brainage.tsv`` (region, lag_months, regional_age_months, ...).
    out_file : str or Path
        Output SVG.
    ordering : dict, optional
        ``MyelinationOrdering`` of the table's sidecar.
    whole_brain_age : float, optional
        The whole-brain estimate (months), for the title.

    Returns
    -------
    str
        Absolute path of the SVG.
    """
    plt = pyplot()
    anat, _ = load_ras(anat_ref_file)
    lag, _ = load_ras(map_file)
    regions, _ = load_ras(regions_file)
    from ..maturity.atlas import REFERENCE_REGION

    inside = (regions > 0) & (np.rint(regions) != REFERENCE_REGION)
    shown = np.where(inside, lag, np.nan)
    with open(table_tsv, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    rows.sort(key=lambda r: (math.isnan(_num(r["lag_months"])), _num(r["lag_months"])))
    # slices through the internal capsule, the centrum semiovale and near the midline
    zs = np.nonzero(inside.any(axis=(0, 1)))[0]
    xs = np.nonzero(inside.any(axis=(1, 2)))[0]
    z_cuts = [int(np.percentile(zs, q)) for q in (45, 75)] if zs.size else [anat.shape[2] // 2] * 2
    x_cut = int(np.percentile(xs, 40)) if xs.size else anat.shape[0] // 2
    vmax = LAG_LIMIT_MONTHS
    with plt.rc_context(SVG_RC):
        fig = plt.figure(figsize=(11.0, 4.2), facecolor="black")
        # column 3 is empty: room for the bar chart's region names
        grid = fig.add_gridspec(1, 5, width_ratios=[1, 1, 1, 0.45, 1.5], wspace=0.1)
        lo, hi = np.percentile(anat[anat > 0], [1, 99]) if (anat > 0).any() else (0, 1)
        im = None
        panels = [(anat[:, :, z].T, shown[:, :, z].T, f"axial z={z}") for z in z_cuts]
        panels.append((anat[x_cut].T, shown[x_cut].T, f"sagittal x={x_cut}"))
        for k, (bg, ov, title) in enumerate(panels[:3]):
            ax = fig.add_subplot(grid[0, k])
            ax.imshow(bg, origin="lower", cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            im = ax.imshow(ov, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           interpolation="nearest")
            ax.set_title(title, color="white")
            ax.set_axis_off()
        ax = fig.add_subplot(grid[0, 4])
        ax.set_facecolor("black")
        names = [r["region"].replace("_", " ") for r in rows]
        values = np.array([_num(r["lag_months"]) for r in rows])
        cmap = plt.get_cmap("RdBu_r")
        colors = [cmap(0.5 + 0.5 * np.clip(v / vmax, -1, 1)) if math.isfinite(v) else "grey"
                  for v in values]
        ax.barh(range(len(rows)), np.nan_to_num(values), color=colors)
        ax.set_yticks(range(len(rows)), names, color="white")
        ax.invert_yaxis()
        ax.axvline(0, color="white", lw=0.8)
        ax.set_xlim(-max(vmax, np.nanmax(np.abs(values), initial=0) + 0.5),
                    max(vmax, np.nanmax(np.abs(values), initial=0) + 0.5))
        ax.set_xlabel("regional age - whole-brain estimate (months)", color="white")
        ax.tick_params(colors="white")
        for spine in ax.spines.values():
            spine.set_color("white")
        lines = []
        for key, label in ORDER_LABELS.items():
            entry = (ordering or {}).get(key) or {}
            holds = entry.get("Holds")
            diff = entry.get("EarlierMinusLaterMaturityFraction")
            verdict = "n/a" if holds is None else ("yes" if holds else "NO")
            lines.append(f"{label}: {verdict}" + (f" ({diff:+.2f})" if diff is not None else ""))
        fig.text(0.06, 0.03, "myelination order: " + "; ".join(lines), color="white",
                 fontsize=8, va="bottom", ha="left")
        title = "regional lag (blue: behind, red: ahead)"
        if whole_brain_age is not None and math.isfinite(whole_brain_age):
            title += f"; whole-brain estimate {whole_brain_age:.1f} months"
        fig.suptitle(title, color="white")
        if im is not None:
            cax = fig.add_axes([0.06, 0.2, 0.3, 0.03])
            bar = fig.colorbar(im, cax=cax, orientation="horizontal")
            bar.set_label("lag (months)", color="white")
            bar.ax.tick_params(colors="white")
        fig.subplots_adjust(left=0.01, right=0.98, top=0.85, bottom=0.3)
        return save_svg(fig, out_file)
