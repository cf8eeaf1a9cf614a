"""The brain-age outlier rule of the group level."""
from __future__ import annotations

import numpy as np

#: Outlier threshold, in standard deviations of the corrected brain-age gap.
OUTLIER_SD = 2.0


def flag_outliers(gap_corrected, out_of_range=None, *, n_sd: float = OUTLIER_SD):
    """Flag brain-age outliers.

    A subject/session is an outlier when ``|gap_corrected| > n_sd * SD`` where SD is the
    sample standard deviation (``ddof=1``) of the finite corrected gaps of the cohort, or
    when the participant level flagged it out of the model's range. The gap is compared
    with 0 (no delay/advance), not with the cohort mean. Without at least 2 finite gaps,
    only the out-of-range flag applies.

    Parameters
    ----------
    gap_corrected : array_like of float
        Corrected brain-age gaps (months); NaN where unknown (never an outlier by gap).
    out_of_range : array_like of bool, optional
        ``qc_out_of_range`` of each row.
    n_sd : float
        Threshold in standard deviations.

    Returns
    -------
    outlier : numpy.ndarray of bool
        One flag per row.
    threshold : float
        ``n_sd * SD`` (months), NaN when it could not be computed.

    Examples
    --------
    >>> flags, thr = flag_outliers([0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 9.0], n_sd=2.0)
    >>> flags.nonzero()[0].tolist(), round(thr, 3)
    ([7], 6.453)
    """
    gap = np.asarray(gap_corrected, dtype=float).ravel()
    finite = np.isfinite(gap)
    threshold = float(n_sd * np.std(gap[finite], ddof=1)) if finite.sum() >= 2 else np.nan
    flags = np.zeros(gap.shape, dtype=bool)
    if np.isfinite(threshold):
        flags[finite] = np.abs(gap[finite]) > threshold
    if out_of_range is not None:
        flags = flags | np.asarray(out_of_range, dtype=bool).ravel()
    return flags, threshold
