"""The cohort table: the participant-level ``*_brainage.tsv`` rows of a derivatives folder.

:func:`collect_cohort` reads, checks and concatenates them; :func:`refuse_mixed_models`
rejects a cohort whose sessions come from more than one model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bids_infantage.utils.columns import BRAINAGE_COLUMNS as _COLUMNS
from bids_infantage.utils.errors import InputError

#: Columns every participant-level ``*_brainage.tsv`` must have, in output order
#: (:mod:`bids_infantage.utils.columns`).
BRAINAGE_COLUMNS = tuple(_COLUMNS)
_TEXT_COLUMNS = (
    "participant_id",
    "session_id",
    "model_configuration",
    "qc_flags",
    "model_name",
    "model_sha256",
)
_BOOL_COLUMNS = ("qc_out_of_range",)
_NUMERIC_COLUMNS = tuple(
    c for c in BRAINAGE_COLUMNS if c not in _TEXT_COLUMNS and c not in _BOOL_COLUMNS
)


def _to_bool(value, *, source):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "n/a", "nan", ""):
        return False
    raise InputError(
        f"{source}: qc_out_of_range must be 'true' or 'false', found {value!r}; "
        "re-run the participant level to regenerate the file."
    )


def _brainage_files(output_dir: Path):
    """The session-level age tables: ``*_brainage.tsv`` without a ``desc-`` entity (the
    ``desc-regional`` tables are per region, not per session)."""
    patterns = ("sub-*/anat/sub-*_brainage.tsv", "sub-*/ses-*/anat/sub-*_brainage.tsv")
    return sorted({p for pattern in patterns for p in output_dir.glob(pattern)
                   if p.is_file() and "_desc-" not in p.name})


def collect_cohort(output_dir, *, with_text: bool = False):
    """Gather the participant-level brain-age tables of a derivatives folder.

    Reads every ``sub-<label>[/ses-<label>]/anat/sub-<label>[_ses-<label>]_brainage.tsv``
    under ``output_dir`` (``n/a`` means missing).

    Parameters
    ----------
    output_dir : str or os.PathLike
        Output folder of the participant-level runs.

    Returns
    -------
    pandas.DataFrame
        One row per subject/session, sorted by ``participant_id`` then ``session_id``
        (sessionless rows first), with a fresh ``RangeIndex``. The columns of
        :data:`BRAINAGE_COLUMNS` come first (ages and intervals in months, volume in mL),
        then any extra columns found. Numeric columns are ``float`` (``NaN`` where ``n/a``),
        ``qc_out_of_range`` is ``bool``, text columns keep their text (``session_id`` is
        ``NaN`` without sessions).
    text : pandas.DataFrame
        Only with ``with_text``: the same rows and columns as the files hold them (str,
        ``n/a`` kept), so that the group table copies the participants' values unchanged.

    Raises
    ------
    bids_infantage.utils.errors.InputError
        If no ``*_brainage.tsv`` exists, a file lacks required columns, or a
        subject/session appears twice.
    """
    output_dir = Path(output_dir)
    files = _brainage_files(output_dir)
    if not files:
        raise InputError(
            f"No sub-*/[ses-*/]anat/*_brainage.tsv under {output_dir}: run the participant "
            "level into this output folder first, then run the group level on it."
        )

    frames, texts = [], []
    for path in files:
        table = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            na_values=["n/a"],
            keep_default_na=False,
        )
        missing = [c for c in BRAINAGE_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(
                f"{path} lacks column(s) {', '.join(missing)}; re-run the participant level "
                "with this version of bids-infantage to regenerate it."
            )
        texts.append(table.copy())
        for column in _NUMERIC_COLUMNS:
            try:
                table[column] = pd.to_numeric(table[column]).astype(float)
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"{path}: column {column} must be numeric or n/a ({err}); "
                    "re-run the participant level to regenerate the file."
                ) from None
        for column in _BOOL_COLUMNS:
            table[column] = [_to_bool(v, source=path) for v in table[column]]
        frames.append(table)

    cohort = pd.concat(frames, ignore_index=True)
    cohort["qc_out_of_range"] = cohort["qc_out_of_range"].astype(bool)
    extra = [c for c in cohort.columns if c not in BRAINAGE_COLUMNS]
    cohort = cohort[list(BRAINAGE_COLUMNS) + extra]

    duplicated = cohort.duplicated(["participant_id", "session_id"], keep=False)
    if duplicated.any():
        first = cohort.loc[duplicated].iloc[0]
        session = first["session_id"] if isinstance(first["session_id"], str) else "no session"
        raise InputError(
            f"{first['participant_id']} ({session}) appears more than once under "
            f"{output_dir}; remove the stale *_brainage.tsv and run the group level again."
        )
    order = cohort.sort_values(
        ["participant_id", "session_id"], na_position="first", kind="stable"
    ).index
    cohort = cohort.loc[order].reset_index(drop=True)
    if not with_text:
        return cohort
    text = pd.concat(texts, ignore_index=True)[list(cohort.columns)].fillna("n/a")
    return cohort, text.loc[order].reset_index(drop=True)


def refuse_mixed_models(table, output_dir) -> None:
    """Raise InputError when the sessions come from more than one model (``model_sha256``):
    their ages are not comparable, and one bias correction cannot serve them."""
    counts = table["model_sha256"].dropna().value_counts()
    if len(counts) > 1:
        example = {sha: table.loc[table["model_sha256"] == sha, "participant_id"].iloc[0]
                   for sha in counts.index}
        listed = ", ".join(f"{sha[:12]} ({n} session(s), e.g. {example[sha]})"
                           for sha, n in counts.items())
        raise InputError(
            f"{output_dir}: the participant outputs come from {len(counts)} models ({listed}); "
            "rerun the participant level with one model (--model) for every session, or write "
            "each model's outputs to its own folder.")
