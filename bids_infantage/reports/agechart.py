"""Reportlet of the brain-age estimate (``desc-agechart``): predicted versus chronological age
and brain volume against the BCP norms, on a white background."""
from __future__ import annotations

import math

import numpy as np

from .plotting import SVG_RC, pyplot, save_svg


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
    plt = pyplot()
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
    rc = dict(SVG_RC, **{"savefig.facecolor": "white"})
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
        return save_svg(fig, out_file)
