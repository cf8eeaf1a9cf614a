"""Calibrated prediction intervals of a bundle (``bundle.json`` ``calibration``): the
domain-shift SD, the interval's half-width, the T1w-only upper bound, and the age-range check.
"""
from __future__ import annotations

import numpy as np

#: Months beyond the model's age range (predicted or chronological age) that raise the
#: out-of-range flag
AGE_RANGE_MARGIN_MONTHS = 2.0


#: Age (months) beyond which a T1w-only estimate is flagged: white matter is T1w-bright by
#: about 8-12 months, after which T1w changes little (Barkovich et al., Radiology 1988); such
#: an interval's upper bound is raised to the top of the model's age range
T1W_ONLY_RESOLVES_MONTHS = 12.0


def shift_sd(age_months: float, bands) -> float:
    """Domain-shift SD (months) at a predicted age from a calibration's ``shift_sd_bands``
    ([[low, high, sd], ...] by predicted age, months; ages outside take the nearest band; 0
    when absent). See :func:`~bids_infantage.models.training.calibrate`."""
    if not bands:
        return 0.0
    for lo, hi, sd in bands:
        if lo <= age_months < hi:
            return float(sd)
    return float(bands[0][2] if age_months < bands[0][0] else bands[-1][2])


def interval_half_width(cal: dict, sd_months: float) -> float:
    """Half-width (months) of a calibrated prediction interval.

    ``interval_z * sd`` (same-family validation with the domain-shift term, see
    :func:`~bids_infantage.models.training.calibrate`). A calibration with
    ``template_sd_months`` (the between-template error measured by leave-one-template-out,
    :func:`~bids_infantage.models.training.template_term`) adds it as a second, independent
    error: ``hypot(interval_z * sd, q * template_sd)``, where ``q`` is the standard normal
    quantile of the interval's coverage (1.645 for 90%).
    """
    from statistics import NormalDist

    half = float(cal["interval_z"]) * float(sd_months)
    template_sd = float(cal.get("template_sd_months") or 0.0)
    if template_sd > 0.0:
        q = NormalDist().inv_cdf(0.5 + float(cal["interval_coverage"]) / 2.0)
        half = float(np.hypot(half, q * template_sd))
    return half


def outside_age_range(age_months: float, age_range) -> bool:
    """Whether an age (months, predicted or chronological) lies more than
    :data:`AGE_RANGE_MARGIN_MONTHS` outside a model's ``age_range`` ([low, high], months)."""
    lo, hi = age_range
    return age_months < lo - AGE_RANGE_MARGIN_MONTHS or age_months > hi + AGE_RANGE_MARGIN_MONTHS


def t1w_only_upper(channels, upper: float, age_range_top: float) -> tuple[float, str | None]:
    """Upper bound (months) of an interval of a configuration of input ``channels``, and the flag
    raised: with T1w only (``channels == (0,)``) and an upper bound past
    :data:`T1W_ONLY_RESOLVES_MONTHS`, the bound becomes at least ``age_range_top`` (the top of
    the model's age range) and the flag says why; otherwise ``upper`` unchanged and None."""
    if channels == (0,) and upper > T1W_ONLY_RESOLVES_MONTHS:
        # T1w alone cannot tell a 12-month brain from a 24-month one: the interval's upper
        # bound becomes the top of the model's range instead of a confident number
        upper = max(upper, float(age_range_top))
        return upper, (f"T1w only: T1w myelination contrast is nearly complete by about "
                       f"{T1W_ONLY_RESOLVES_MONTHS:g} months, so older ages are poorly resolved "
                       f"and the interval extends to {upper:.0f} months (add a T2w)")
    return upper, None
