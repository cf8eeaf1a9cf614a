"""Printing QC values next to their thresholds."""
from __future__ import annotations

import math


def format_pair(value: float, threshold: float, digits: int = 2, *, sign: bool = False) -> tuple[str, str]:
    """``value`` and ``threshold`` printed with the same number of decimals: at least
    ``digits``, and more (up to 6) until the printed numbers compare as the values do (a Dice
    of 0.848 against 0.85 prints "0.848" and "0.850", not "0.85" and "0.85").

    Parameters
    ----------
    value, threshold : float
    digits : int
        Decimals at least.
    sign : bool
        Print a "+" before positive numbers.

    Returns
    -------
    (str, str)
        ``value`` (``"n/a"`` when not finite) and ``threshold``.
    """
    spec = "+" if sign else ""
    if value is None or not math.isfinite(value):
        return "n/a", f"{threshold:{spec}.{digits}f}"

    def order(a, b):
        return (a > b) - (a < b)

    for d in range(digits, 7):
        v, t = f"{value:{spec}.{d}f}", f"{threshold:{spec}.{d}f}"
        if order(float(v), float(t)) == order(value, threshold):
            return v, t
    return f"{value:{spec}.6f}", f"{threshold:{spec}.6f}"


def format_against(value: float, threshold: float, digits: int = 2, *, sign: bool = False) -> str:
    """``value`` as :func:`format_pair` prints it next to ``threshold``."""
    return format_pair(value, threshold, digits, sign=sign)[0]
