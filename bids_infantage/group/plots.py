"""Group-level figures (SVG) with matplotlib and seaborn.

Each function draws one figure from the group table (see
:func:`bids_infantage.group.cohort.collect_cohort`, plus the
``brain_age_gap_corrected_months`` and ``outlier`` columns added by
:func:`bids_infantage.group.analysis.run_group`), writes one SVG atomically and returns
its path. Outliers are labelled with their ``participant_id`` (and ``session_id``).
Figures are built on :class:`matplotlib.figure.Figure` objects, never through ``pyplot``,
so no GUI backend or global figure state is involved; SVG output is deterministic.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

from bids_infantage.utils.io import atomic_write_text

_SVG_RC = {
    "svg.hashsalt": "bids-infantage",  # stable element ids: identical inputs, identical SVG
    "svg.fonttype": "none",  # keep text as text (small, searchable)
    "font.size": 9,
}
_COLORS = {"inlier": "#4C72B0", "outlier": "#C44E52"}


def _labels(table):
    """``sub-01`` or ``sub-01 ses-02`` for each row."""
    labels = []
    for participant, session in zip(table["participant_id"], table["session_id"]):
        labels.append(f"{participant} {session}" if isinstance(session, str) else str(participant))
    return np.array(labels, dtype=object)


def _outliers(table):
    if "outlier" in table:
        return table["outlier"].fillna(False).to_numpy(dtype=bool)
    return np.zeros(len(table), dtype=bool)


def _annotate(ax, x, y, labels, *, vertical=False):
    for xi, yi, label in zip(x, y, labels):
        ax.annotate(
            label,
            (xi, yi),
            xytext=(0, 6) if vertical else (4, 4),
            textcoords="offset points",
            rotation=90 if vertical else 0,
            ha="center" if vertical else "left",
            va="bottom",
            fontsize=7,
            color=_COLORS["outlier"],
        )


def _styled(func):
    """Run a plotting function inside a local seaborn/matplotlib style (no global changes)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib
        import seaborn as sns

        rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper"), **_SVG_RC}
        with matplotlib.rc_context(rc):
            return func(*args, **kwargs)

    return wrapper


def _new_figure(figsize):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def _save_svg(fig, out_file) -> Path:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return atomic_write_text(out_file, buffer.getvalue())


def _empty(ax, message):
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


@_styled
def plot_predicted_vs_chronological(table, out_file) -> Path:
    """Predicted against chronological age, with predictive intervals and identity line.

    Error bars span ``predicted_age_lower_months`` to ``predicted_age_upper_months`` (rows
    without an interval get none); the dashed line is ``predicted = chronological``.
    Rows without a chronological age cannot be placed and are counted in the title.

    Parameters
    ----------
    table : pandas.DataFrame
        Group table (ages in months); ``outlier`` optional.
    out_file : str or os.PathLike
        Destination SVG.

    Returns
    -------
    pathlib.Path
        ``out_file``.
    """
    import seaborn as sns

    fig, ax = _new_figure((5.0, 4.6))
    chron = table["chronological_age_months"].to_numpy(dtype=float)
    pred = table["predicted_age_months"].to_numpy(dtype=float)
    keep = np.isfinite(chron) & np.isfinite(pred)
    if not keep.any():
        _empty(ax, "No subject/session has both a chronological and a predicted age")
        return _save_svg(fig, out_file)

    lower = table["predicted_age_lower_months"].to_numpy(dtype=float)
    upper = table["predicted_age_upper_months"].to_numpy(dtype=float)
    yerr = np.vstack([pred - lower, upper - pred])
    yerr = np.clip(np.nan_to_num(yerr, nan=0.0), 0.0, None)[:, keep]
    outlier = _outliers(table)[keep]
    x, y = chron[keep], pred[keep]

    ax.errorbar(x, y, yerr=yerr, fmt="none", ecolor="0.6", elinewidth=0.8, capsize=2, zorder=1)
    sns.scatterplot(
        x=x,
        y=y,
        hue=np.where(outlier, "outlier", "inlier"),
        hue_order=["inlier", "outlier"],
        palette=_COLORS,
        ax=ax,
        zorder=2,
        s=28,
    )
    low = float(np.nanmin(np.concatenate([x, y - yerr[0]])))
    high = float(np.nanmax(np.concatenate([x, y + yerr[1]])))
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="identity")
    _annotate(ax, x[outlier], y[outlier], _labels(table)[keep][outlier])
    ax.set_xlabel("Chronological age (months)")
    ax.set_ylabel("Predicted brain age (months)")
    n_missing = int((~keep).sum())
    title = f"Predicted vs chronological age (n = {int(keep.sum())})"
    ax.set_title(title + (f"; {n_missing} without age not shown" if n_missing else ""))
    ax.legend(loc="upper left", frameon=True)
    return _save_svg(fig, out_file)


@_styled
def plot_bland_altman(table, out_file) -> Path:
    """Bland–Altman plot of predicted against chronological age.

    x is the mean of predicted and chronological age, y their difference (predicted −
    chronological, the uncorrected brain-age gap); horizontal lines mark the bias (mean
    difference) and the 95% limits of agreement, bias ± 1.96 SD (sample SD, ``ddof=1``)
    (Bland & Altman, Lancet 1986).

    Parameters
    ----------
    table : pandas.DataFrame
        Group table (ages in months); ``outlier`` optional.
    out_file : str or os.PathLike
        Destination SVG.

    Returns
    -------
    pathlib.Path
        ``out_file``.
    """
    import seaborn as sns

    fig, ax = _new_figure((5.4, 4.2))
    chron = table["chronological_age_months"].to_numpy(dtype=float)
    pred = table["predicted_age_months"].to_numpy(dtype=float)
    keep = np.isfinite(chron) & np.isfinite(pred)
    if keep.sum() < 2:
        _empty(ax, "Bland–Altman needs at least 2 sessions with a chronological age")
        return _save_svg(fig, out_file)

    mean = (pred[keep] + chron[keep]) / 2.0
    diff = pred[keep] - chron[keep]
    outlier = _outliers(table)[keep]
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    sns.scatterplot(
        x=mean,
        y=diff,
        hue=np.where(outlier, "outlier", "inlier"),
        hue_order=["inlier", "outlier"],
        palette=_COLORS,
        ax=ax,
        s=28,
    )
    ax.axhline(bias, color="k", lw=1, label=f"bias {bias:+.2f} mo")
    for sign in (-1, 1):
        ax.axhline(
            bias + sign * 1.96 * sd,
            color="k",
            lw=1,
            ls="--",
            label="bias ± 1.96 SD" if sign > 0 else None,
        )
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
    _annotate(ax, mean[outlier], diff[outlier], _labels(table)[keep][outlier])
    ax.set_xlabel("Mean of predicted and chronological age (months)")
    ax.set_ylabel("Predicted − chronological age (months)")
    ax.set_title(
        f"Bland–Altman (n = {int(keep.sum())}): limits "
        f"{bias - 1.96 * sd:+.2f} to {bias + 1.96 * sd:+.2f} mo"
    )
    ax.legend(loc="best", frameon=True)
    return _save_svg(fig, out_file)


@_styled
def plot_gap_distribution(
    table,
    out_file,
    *,
    column: str = "brain_age_gap_corrected_months",
    threshold: float | None = None,
) -> Path:
    """Distribution of the brain-age gap: histogram, KDE and a rug of the sessions.

    Parameters
    ----------
    table : pandas.DataFrame
        Group table; ``outlier`` optional.
    out_file : str or os.PathLike
        Destination SVG.
    column : str
        Gap column to plot (months), by default the bias-corrected gap.
    threshold : float, optional
        Outlier threshold (months); drawn at ± ``threshold`` when finite.

    Returns
    -------
    pathlib.Path
        ``out_file``.
    """
    import seaborn as sns

    fig, ax = _new_figure((5.4, 3.6))
    gap = table[column].to_numpy(dtype=float)
    keep = np.isfinite(gap)
    if not keep.any():
        _empty(ax, f"No finite values in {column}")
        return _save_svg(fig, out_file)

    values = gap[keep]
    outlier = _outliers(table)[keep]
    kde = values.size >= 3 and np.ptp(values) > 0
    sns.histplot(x=values, kde=kde, stat="count", color=_COLORS["inlier"], ax=ax)
    sns.rugplot(x=values[~outlier], color=_COLORS["inlier"], height=0.04, ax=ax)
    sns.rugplot(x=values[outlier], color=_COLORS["outlier"], height=0.08, lw=1.5, ax=ax)
    if threshold is not None and np.isfinite(threshold):
        for sign in (-1, 1):
            ax.axvline(
                sign * threshold,
                color=_COLORS["outlier"],
                ls="--",
                lw=1,
                label="outlier threshold" if sign > 0 else None,
            )
        ax.legend(loc="upper right", frameon=True)
    y_label = ax.get_ylim()[1] * 0.1
    _annotate(
        ax,
        values[outlier],
        np.full(int(outlier.sum()), y_label),
        _labels(table)[keep][outlier],
        vertical=True,
    )
    ax.axvline(0.0, color="k", lw=0.8)
    pretty = column.replace("_months", "").replace("_", " ")
    ax.set_xlabel(f"{pretty[0].upper()}{pretty[1:]} (months)")
    ax.set_ylabel("Sessions")
    ax.set_title(f"Brain-age gap distribution (n = {values.size})")
    return _save_svg(fig, out_file)


#: Cohorts up to this many infants get every line labelled on the growth chart (larger ones:
#: only the infants whose gap widens).
GROWTH_CHART_LABEL_MAX = 12


@_styled
def plot_growth_chart(sessions, trajectories, out_file, *, mixed=None) -> Path:
    """Growth chart: brain age against chronological age, one line per infant, the cohort's band.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Sessions of subjects with two or more usable sessions
        (:func:`~bids_infantage.group.longitudinal.longitudinal_sessions`), ages in months.
    trajectories : pandas.DataFrame
        :func:`~bids_infantage.group.longitudinal.subject_trajectories` (``gap_widening``
        infants are drawn in red and labelled; all are labelled in cohorts of up to
        :data:`GROWTH_CHART_LABEL_MAX` infants).
    out_file : str or os.PathLike
        Destination SVG.
    mixed : dict, optional
        :func:`~bids_infantage.group.longitudinal.fit_mixed_model`: its fixed-effect line and
        95% population band (random effects + residual) are drawn; without it, the identity
        line only.

    Returns
    -------
    pathlib.Path
        ``out_file``.
    """
    from .longitudinal import population_band

    fig, ax = _new_figure((5.6, 4.6))
    if sessions.empty:
        _empty(ax, "No subject has two sessions with ages")
        return _save_svg(fig, out_file)
    chron = sessions["chronological_age_months"].to_numpy(dtype=float)
    grid = np.linspace(max(0.0, chron.min() - 1), chron.max() + 1, 100)
    if mixed is not None:
        mean, low, high = population_band(mixed, grid)
        ax.fill_between(grid, low, high, color="0.85", label="cohort 95% band (mixed model)")
        ax.plot(grid, mean, color="0.4", lw=1.2, label="cohort fixed effect")
    ax.plot(grid, grid, "k--", lw=0.8, label="identity")
    widening = set(trajectories.loc[trajectories["gap_widening"] == True, "participant_id"])  # noqa: E712
    label_all = sessions["participant_id"].nunique() <= GROWTH_CHART_LABEL_MAX
    for subject, group in sessions.groupby("participant_id", sort=True):
        x = group["chronological_age_months"].to_numpy(dtype=float)
        y = group["predicted_age_months"].to_numpy(dtype=float)
        flagged = subject in widening
        ax.plot(x, y, "-o", ms=3.5, lw=1.4 if flagged else 0.9,
                color=_COLORS["outlier"] if flagged else "#1f77b4", alpha=1.0 if flagged else 0.7)
        if flagged or label_all:
            ax.annotate(subject, (x[-1], y[-1]), xytext=(3, -9), textcoords="offset points",
                        fontsize=7, color=_COLORS["outlier"] if flagged else "#1f77b4")
    ax.set_xlabel("Chronological age (months)")
    ax.set_ylabel("Predicted brain age (months)")
    n = sessions["participant_id"].nunique()
    ax.set_title(f"Brain-age trajectories ({n} infants, {len(sessions)} sessions)")
    ax.legend(loc="upper left", frameon=True, fontsize=7)
    return _save_svg(fig, out_file)
