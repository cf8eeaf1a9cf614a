"""The outcome of a participant run: crash files read back, outputs of earlier runs removed, and
the summary printed at the end (with the exit code).
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from .logs import SUMMARY

LOGGER = logging.getLogger("bids_infantage")


def _crash_message(crash_file: Path) -> str:
    text = crash_file.read_text(errors="replace")
    for pattern in (r"InputError: (.*)", r"ModelBundleError: (.*)"):
        found = re.findall(pattern, text)
        if found:
            return found[-1].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    return errs[-1] if errs else (lines[-1] if lines else "unknown error")


def _crash_unit(crash_file: Path) -> str | None:
    """Subject/session of a crash file, from the workflow path recorded in it."""
    found = re.search(r"single_session_([A-Za-z0-9_]+?)_wf", crash_file.read_text(errors="replace"))
    return found.group(1) if found else None


def remove_stale_outputs(output_dir: Path, unit: dict, run_start: float) -> list[Path]:
    """Remove a session's outputs that this run did not write (#19 item 4).

    A session's run owns its outputs: every sink runs in every run (``overwrite``), so a file
    of the session older than the run (its anatomical derivatives, figures and crash files)
    comes from an earlier run with other inputs (e.g. a T1w since removed) and would
    otherwise be mixed into the new result and its report.

    Parameters
    ----------
    output_dir : Path
    unit : dict
        The session (``subject``, ``session``).
    run_start : float
        Time (s since the epoch) the workflow started.

    Returns
    -------
    list of Path
        The files removed.
    """
    from ..workflows.base import unit_name

    sub = f"sub-{unit['subject']}"
    ses = f"ses-{unit['session']}" if unit.get("session") else None
    prefix = "_".join(filter(None, [sub, ses])) + "_"
    folders = [output_dir / sub / (ses or "") / "anat", output_dir / sub / "figures"]
    removed = []

    def older(path: Path) -> bool:
        return path.stat().st_mtime < run_start - 1

    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            if (path.is_file() and name.startswith(prefix) and (ses or "_ses-" not in name)
                    and older(path)):
                path.unlink()
                removed.append(path)
    log = output_dir / sub / "log"
    if log.is_dir():
        for crash in log.glob("crash-*"):
            if crash.is_file() and older(crash) and _crash_unit(crash) == unit_name(unit):
                crash.unlink()
                removed.append(crash)
    return removed


def summarize(config, units, t0: float, run_start: float) -> int:
    """Print one line per unit (age or failure with crash file); returns the exit code."""
    from ..reports.tables import read_brainage_tsv
    from ..workflows.base import unit_name

    failed = 0
    lines = [f"Summary ({time.time() - t0:.0f} s):"]
    for unit in units:
        sub = f"sub-{unit['subject']}"
        ses = f"ses-{unit['session']}" if unit.get("session") else None
        folder = config.output_dir / sub / (ses or "") / "anat"
        table = folder / ("_".join(filter(None, [sub, ses])) + "_brainage.tsv")
        crash_dir = config.output_dir / sub / "log"
        crashes = [c for c in sorted(crash_dir.glob("crash-*"), key=lambda p: p.stat().st_mtime)
                   if c.stat().st_mtime >= run_start - 1 and _crash_unit(c) == unit_name(unit)
                   ] if crash_dir.exists() else []
        if crashes:
            failed += 1
            lines.append(f"  {unit_name(unit)}: FAILED: {_crash_message(crashes[-1])} (crash file: {crashes[-1]})")
        elif table.exists():
            rec = {k: v or "n/a" for k, v in read_brainage_tsv(table).items()}
            flag = " OUT OF RANGE" if rec.get("qc_out_of_range") == "true" else ""
            flag += " (from cache)" if table.stat().st_mtime < run_start - 1 else ""
            lines.append(f"  {unit_name(unit)}: {rec['predicted_age_months']} months "
                         f"[{rec['predicted_age_lower_months']}, {rec['predicted_age_upper_months']}] "
                         f"({rec['model_configuration']}){flag}")
        else:
            failed += 1
            lines.append(f"  {unit_name(unit)}: FAILED (not run; an earlier failure stopped the workflow)")
    LOGGER.log(SUMMARY, "\n".join(lines))
    return 1 if failed else 0
