"""Where the brain-age tables of a derivatives directory are, and how to read their cells.

One table per subject (and session):
``<output_dir>/sub-<label>[/ses-<label>]/anat/sub-<label>[_ses-<label>]_brainage.tsv``, a header
row (:data:`BRAINAGE_COLUMNS`) and one data row. Cells are strings; ``n/a`` marks a missing
value. Used by the participant report, the group level and the benchmarks.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from ..utils.columns import BRAINAGE_COLUMNS as _COLUMNS

#: Columns of the brain-age TSV, in order (:mod:`bids_infantage.utils.columns`).
BRAINAGE_COLUMNS = tuple(_COLUMNS)


def strip_prefix(label: str | None, prefix: str) -> str | None:
    """``'sub-01' -> '01'``; labels without the prefix are returned unchanged."""
    if label is None:
        return None
    label = str(label)
    return label[len(prefix):] if label.startswith(prefix) else label


def bids_prefix(subject: str, session: str | None = None) -> str:
    """File-name prefix of a subject/session.

    Examples
    --------
    >>> bids_prefix("01")
    'sub-01'
    >>> bids_prefix("sub-01", "ses-3mo")
    'sub-01_ses-3mo'
    """
    subject = strip_prefix(subject, "sub-")
    session = strip_prefix(session, "ses-")
    return f"sub-{subject}" + (f"_ses-{session}" if session else "")


def read_brainage_tsv(path: str | Path) -> dict[str, str | None]:
    """Read the first data row of a brain-age TSV.

    Parameters
    ----------
    path : str or Path
        Tab-separated file with a header row (columns: :data:`BRAINAGE_COLUMNS`).

    Returns
    -------
    dict
        Column name -> string value; ``n/a`` and empty cells are None.

    Raises
    ------
    ValueError
        The file has no data row.
    """
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: no data row")
    return {k: (None if v is None or v.strip() in ("", "n/a") else v.strip())
            for k, v in rows[0].items() if k is not None}


def as_float(value) -> float | None:
    """Float of a TSV cell, None for missing/non-numeric/non-finite values.

    Examples
    --------
    >>> as_float("3.5"), as_float(None), as_float("n/a")
    (3.5, None, None)
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def as_bool(value) -> bool:
    """True for ``true``/``1``/``yes`` (any case), else False.

    Examples
    --------
    >>> as_bool("True"), as_bool("false"), as_bool(None)
    (True, False, False)
    """
    return str(value).strip().lower() in ("true", "1", "yes", "y")


def split_flags(value) -> list[str]:
    """QC flags of a TSV cell (separated by ``;``); [] when missing or ``none``.

    Examples
    --------
    >>> split_flags("low_dice; motion")
    ['low_dice', 'motion']
    """
    if value is None:
        return []
    return [f for f in re.split(r"\s*;\s*", str(value).strip()) if f and f not in ("n/a", "none")]


def brainage_tsv_path(output_dir, subject: str, session: str | None = None) -> Path:
    """``<output_dir>/sub-<label>[/ses-<label>]/anat/<prefix>_brainage.tsv`` (labels with or
    without ``sub-``/``ses-``)."""
    subject = strip_prefix(subject, "sub-")
    session = strip_prefix(session, "ses-")
    anat = Path(output_dir) / f"sub-{subject}"
    if session:
        anat = anat / f"ses-{session}"
    return anat / "anat" / f"{bids_prefix(subject, session)}_brainage.tsv"


def sibling_sessions(output_dir, subject: str) -> list[str]:
    """Session labels (without ``ses-``) of a subject that have a brain-age table in
    ``<output_dir>/sub-<label>/ses-*/anat``, sorted; empty for a subject without sessions."""
    subject = strip_prefix(subject, "sub-")
    labels = (d.name[len("ses-"):] for d in (Path(output_dir) / f"sub-{subject}").glob("ses-*"))
    return sorted(label for label in labels
                  if brainage_tsv_path(output_dir, subject, label).is_file())
