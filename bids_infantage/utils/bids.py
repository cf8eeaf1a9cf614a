"""BIDS queries: input images per subject/session and chronological age."""
from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

from .errors import InputError

LOGGER = logging.getLogger("bids_infantage")

#: months per unit
_UNITS = {
    "days": 12 / 365.25, "day": 12 / 365.25, "d": 12 / 365.25,
    "weeks": 12 / 52.1775, "week": 12 / 52.1775, "w": 12 / 52.1775,
    "months": 1.0, "month": 1.0, "mo": 1.0, "m": 1.0,
    "years": 12.0, "year": 12.0, "y": 12.0, "yr": 12.0,
}


def to_months(value, units: str) -> float | None:
    """Convert an age to months.

    >>> to_months("26", "weeks")
    5.98
    >>> to_months("1.5", "years")
    18.0
    >>> to_months("n/a", "months") is None
    True
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(v):
        return None
    factor = _UNITS.get(str(units).strip().lower())
    if factor is None:
        return None
    return round(v * factor, 2)


def _read_tsv(path: Path) -> list[dict]:
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports) would otherwise become part of
        # the first column's name and hide it
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        LOGGER.warning("%s: cannot be read (%s); ages from it are ignored", path, exc)
        return []


def _age_from_row(row: dict, sidecar: dict, source: Path | None = None) -> float | None:
    """Age (months) of a TSV row; a value that is given but cannot be read (``6m``, an
    unknown unit) is logged with the file, the row and the value, then ignored."""
    candidates = [(col, unit) for col, unit in (("age_weeks", "weeks"), ("age_months", "months"),
                                                ("age_years", "years"), ("age_days", "days"))
                  if col in row]
    if "age" in row:
        candidates.append(("age", (sidecar.get("age") or {}).get("Units", "years")))  # BIDS: years
    for col, unit in candidates:
        months = to_months(row[col], unit)
        if months is not None:
            return months
        value = (row[col] or "").strip()
        if value and value.lower() != "n/a":
            ident = row.get("filename") or row.get("session_id") or row.get("participant_id") or "?"
            LOGGER.warning("%s: %s %s = %r is not a number of %s; it is ignored (write a number, "
                           "or n/a, and give the units in the JSON sidecar)", source or "TSV", ident,
                           col, value, unit)
    return None


def _sidecar(tsv: Path) -> dict:
    js = tsv.with_suffix(".json")
    try:
        return json.loads(js.read_text()) if js.exists() else {}
    except (OSError, ValueError):
        LOGGER.warning("%s: malformed JSON; age units default to years", js)
        return {}


def chronological_age(bids_dir: str | Path, subject: str, session: str | None = None,
                      image_file: str | Path | None = None) -> tuple[float | None, str]:
    """Chronological age (months) of a subject/session, for reports and metrics only.

    Looks in ``scans.tsv`` (row of ``image_file``), then ``sessions.tsv``, then
    ``participants.tsv``; columns ``age_weeks``, ``age_months``, ``age_years``, ``age_days``,
    or ``age`` with units from the JSON sidecar (years when not given, as in BIDS).

    Returns
    -------
    age : float or None
        Months; None when not found or malformed.
    source : str
        The file it came from, or "not found".
    """
    bids_dir = Path(bids_dir)
    sub = f"sub-{subject}"
    ses = f"ses-{session}" if session else None
    subdir = bids_dir / sub / ses if ses else bids_dir / sub
    scans = subdir / f"{sub}{'_' + ses if ses else ''}_scans.tsv"
    if scans.exists() and image_file is not None:
        rel = Path(image_file)
        for row in _read_tsv(scans):
            if Path(row.get("filename", "")).name == rel.name:
                age = _age_from_row(row, _sidecar(scans), scans)
                if age is not None:
                    return age, str(scans)
    sessions = bids_dir / sub / f"{sub}_sessions.tsv"
    if ses and sessions.exists():
        for row in _read_tsv(sessions):
            if row.get("session_id") == ses:
                age = _age_from_row(row, _sidecar(sessions), sessions)
                if age is not None:
                    return age, str(sessions)
    participants = bids_dir / "participants.tsv"
    if participants.exists():
        for row in _read_tsv(participants):
            if row.get("participant_id") == sub:
                age = _age_from_row(row, _sidecar(participants), participants)
                if age is not None:
                    return age, str(participants)
    return None, "not found"


def select_run(files: list[str]) -> tuple[str | None, str | None]:
    """Choose one image among several runs.

    Rule (docs/usage.md): the highest ``run-`` index wins (re-acquisitions usually follow a
    motion-corrupted run); without run entities, the last file in sorted order. Returns the
    file and a warning when a choice was made.
    """
    if not files:
        return None, None
    files = sorted(files)
    if len(files) == 1:
        return files[0], None

    def run_index(f):
        for part in Path(f).name.split("_"):
            if part.startswith("run-"):
                try:
                    return int(part[4:])
                except ValueError:
                    return -1
        return -1

    chosen = max(files, key=lambda f: (run_index(f), f))
    return chosen, f"{len(files)} runs found; using {Path(chosen).name} (highest run index)"


def _skull_stripped(layout, path: str) -> bool | None:
    """The ``SkullStripped`` metadata of an image (BIDS inheritance applied by pybids), or None
    when absent or not a boolean (an unreadable sidecar is ignored here; detection decides)."""
    try:
        value = layout.get_metadata(path).get("SkullStripped")
    except Exception:  # noqa: BLE001 - malformed JSON: fall back to detection
        return None
    return value if isinstance(value, bool) else None


def index_dataset(bids_dir: str | Path):
    """Index a BIDS dataset with pybids (``BIDSLayout``, no validation: bids-validator-deno
    does that).

    Raises
    ------
    InputError
        A JSON sidecar cannot be decoded (the message names it), or pybids cannot index the
        folder for another reason (its first line).
    """
    import re

    from bids import BIDSLayout

    try:
        return BIDSLayout(str(bids_dir), validate=False)
    except Exception as exc:  # pybids raises OSError, ValueError, BIDSValidationError, ...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        found = re.search(r"decode JSON from file <\w+ filename='([^']+)'>", text)
        if found:
            reason = ""
            try:
                json.loads(Path(found.group(1)).read_text())
            except ValueError as err:
                reason = f" ({err})"
            except OSError:
                pass
            raise InputError(f"{found.group(1)}: is not valid JSON{reason}; fix or remove this "
                             "sidecar and run again.") from None
        raise InputError(f"{bids_dir}: pybids cannot index the dataset ({text}); fix it (run "
                         "bids-validator-deno for details) and run again.") from None


def collect_sessions(layout, participant_labels=None, session_labels=None) -> list[dict]:
    """Subject/session units with their T1w and T2w files.

    Parameters
    ----------
    layout : bids.BIDSLayout
    participant_labels, session_labels : list of str, optional (without prefixes)

    Returns
    -------
    list of dict
        ``subject``, ``session`` (None without sessions), ``t1w``, ``t2w`` (paths or None),
        ``skull_stripped`` (dict modality -> the ``SkullStripped`` sidecar value, True, False or
        None, read with BIDS inheritance, so a dataset-level ``T1w.json`` counts),
        ``warnings`` (list of str). Sessions with neither image are skipped with a warning.

    Raises
    ------
    InputError
        A requested label does not exist, or no T1w/T2w is found at all.
    """
    subjects = layout.get_subjects()
    if participant_labels:
        missing = sorted(set(participant_labels) - set(subjects))
        if missing:
            raise InputError(
                f"participant label(s) {', '.join(missing)} not found in {layout.root}; "
                f"available: {', '.join(sorted(subjects)) or 'none'}."
            )
        subjects = [s for s in subjects if s in participant_labels]
    units = []
    for sub in sorted(subjects):
        sessions = layout.get_sessions(subject=sub) or [None]
        if session_labels:
            sessions = [s for s in sessions if s in session_labels]
        for ses in sessions:
            query = {"subject": sub, "datatype": "anat", "extension": [".nii", ".nii.gz"],
                     "return_type": "file"}
            if ses:
                query["session"] = ses
            warnings = []
            t1w, w1 = select_run(layout.get(suffix="T1w", **query))
            t2w, w2 = select_run(layout.get(suffix="T2w", **query))
            warnings += [w for w in (w1, w2) if w]
            if t1w is None and t2w is None:
                LOGGER.warning("sub-%s%s: no T1w or T2w image; skipped", sub, f" ses-{ses}" if ses else "")
                continue
            stripped = {mod: _skull_stripped(layout, f) for mod, f in (("t1w", t1w), ("t2w", t2w)) if f}
            units.append({"subject": sub, "session": ses, "t1w": t1w, "t2w": t2w,
                          "skull_stripped": stripped, "warnings": warnings})
    if session_labels and not units:
        available = sorted({s for sub in subjects for s in layout.get_sessions(subject=sub)})
        raise InputError(
            f"session label(s) {', '.join(session_labels)} not found for the selected participants "
            f"in {layout.root}; available: {', '.join(available) or 'none'}."
        )
    if not units:
        raise InputError(
            f"{layout.root}: no T1w or T2w images found; put them in sub-<label>/[ses-<label>/]anat/ "
            "as sub-<label>[_ses-<label>]_T1w.nii.gz / _T2w.nii.gz (BIDS) and run again."
        )
    return units


def resolve_link_file(path: str | Path) -> Path:
    """Follow a symbolic link stored as a small text file (as git writes links where
    ``core.symlinks`` is false, e.g. ``../../templateflow/.../T1w.nii.gz``).

    Returns the target when ``path`` is such a file and the target exists, else ``path``.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size < 1024:
            text = path.read_bytes()
            if not text.startswith(b"\x1f\x8b") and b"\0" not in text:
                target = (path.parent / text.decode("utf-8").strip()).resolve()
                if target.is_file() and target != path.resolve():
                    return target
    except (OSError, UnicodeDecodeError):
        pass
    return path
