"""Assembly of the per-subject (per-session) HTML report.

The report is one self-contained HTML file (no network resources: the SVG reportlets are
inlined, the style sheet is embedded) written to ``<output_dir>/sub-<label>[_ses-<label>].html``.
Its sections follow ``bids_infantage/data/reports-spec.yml``; each section shows the figures

    <output_dir>/sub-<label>/figures/sub-<label>[_ses-<label>]_desc-<desc>_<suffix>.svg

The top of the report summarizes the brain-age table
``<output_dir>/sub-<label>[/ses-<label>]/anat/sub-<label>[_ses-<label>]_brainage.tsv``, with the
quality-control flags highlighted. A methods paragraph is added when
``<output_dir>/logs/CITATION.md`` exists, and an "Errors" section lists the crash files
``<output_dir>/sub-<label>/log/**/crash*.txt``.

This module collects the values (plain strings, lists and dicts); the markup and the escaping
are in the Jinja2 template ``bids_infantage/data/templates/participant.html.j2``.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from ..utils.io import atomic_write_text
from .figures import find_figures, inline_svg
from .tables import (
    as_bool,
    as_float,
    bids_prefix,
    brainage_tsv_path,
    read_brainage_tsv,
    sibling_sessions,
    split_flags,
    strip_prefix,
)
from .templating import render

#: Text of the banner shown when the prediction is outside the model's age range.
OUT_OF_RANGE_BANNER = "out of range: do not trust the number"
#: Longest crash-file excerpt (characters) copied into the report.
MAX_CRASH_CHARS = 20000
#: Template of the report, in ``bids_infantage/data/templates``.
TEMPLATE = "participant.html.j2"


def load_spec(path: str | Path | None = None) -> dict:
    """Report specification (title and ordered sections) from YAML.

    Parameters
    ----------
    path : str or Path, optional
        Spec file; defaults to the package's ``data/reports-spec.yml``.

    Returns
    -------
    dict
        ``{"title": str, "sections": [{"title", "desc", "caption"}, ...]}``.
    """
    import yaml

    from ..utils.data import data_path

    spec = yaml.safe_load(Path(path or data_path("reports-spec.yml")).read_text())
    for section in spec["sections"]:
        for key in ("title", "desc"):
            if key not in section:
                raise ValueError(f"reports spec: section {section!r} has no {key!r}")
        section.setdefault("caption", "")
    return spec


# --------------------------------------------------------------------------------------------
# values shown in the report
# --------------------------------------------------------------------------------------------
def _fmt(value, digits: int = 1, unit: str = "") -> str:
    """Number with ``digits`` decimals and unit, or ``n/a``."""
    v = as_float(value)
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" + (f" {unit}" if unit else "")


def _summary(row: dict) -> dict:
    """Values of the summary table and of the QC banners, from a brain-age TSV row.

    Returns
    -------
    dict
        Display strings (``predicted``, ``interval``, ``chronological``, ``gap``, ``volume``,
        the two Dice, ...), ``out_of_range`` and ``volume_unusual`` (bool), ``flags`` (list of
        str), ``model_names`` (list of str) and ``model_sha256`` (str, may be empty).
    """
    out_of_range = as_bool(row.get("qc_out_of_range"))
    flags = split_flags(row.get("qc_flags"))

    sd = as_float(row.get("predicted_age_sd_months"))
    predicted = _fmt(row.get("predicted_age_months"), 1, "months")
    if sd is not None and predicted != "n/a":
        predicted += f" (SD {sd:.1f})"
    lower, upper = row.get("predicted_age_lower_months"), row.get("predicted_age_upper_months")
    interval = "n/a"
    if as_float(lower) is not None and as_float(upper) is not None:
        interval = f"[{_fmt(lower)}, {_fmt(upper)}] months"
        cov = as_float(row.get("interval_coverage"))
        if cov is not None:
            interval += f" ({cov * 100 if cov <= 1 else cov:.0f}% interval)"
    chrono = as_float(row.get("chronological_age_months"))
    gap = as_float(row.get("brain_age_gap_months"))
    vol = _fmt(row.get("brain_volume_ml"), 0, "ml")
    z = as_float(row.get("brain_volume_z"))
    if z is not None and vol != "n/a":
        vol += f" (z = {z:+.2f} vs BCP norms)"
    return {
        "participant": row.get("participant_id") or "n/a",
        "session": row.get("session_id") or "n/a",
        "predicted": predicted,
        "interval": interval,
        "chronological": f"{chrono:.1f} months" if chrono is not None else "unknown",
        "gap": f"{gap:+.1f} months" if gap is not None else "n/a",
        "volume": vol,
        "volume_unusual": z is not None and abs(z) > 2,
        "out_of_range": out_of_range,
        "flags": flags,
        "t1w_t2w_dice": _fmt(row.get("t1w_t2w_mask_dice"), 3),
        "normalization_dice": _fmt(row.get("normalization_mask_dice"), 3),
        "model_names": [v for v in (row.get("model_name"), row.get("model_configuration")) if v],
        "model_sha256": row.get("model_sha256") or "",
    }


def _sessions(output_dir, subject: str, session: str | None) -> list[dict] | None:
    """The subject's sessions (ages, predicted age, gap; the page of each) in order of
    chronological age (then label); None with fewer than two sessions."""
    labels = sibling_sessions(output_dir, subject)
    if session is None or len(labels) < 2:
        return None
    entries = []
    for label in labels:
        try:
            row = read_brainage_tsv(brainage_tsv_path(output_dir, subject, label))
        except (OSError, ValueError):
            row = {}
        chrono = as_float(row.get("chronological_age_months"))
        entries.append((chrono if chrono is not None else float("inf"), label, row))
    entries.sort(key=lambda e: (e[0], e[1]))
    return [{"label": label,
             "current": label == session,
             "href": f"{bids_prefix(subject, label)}.html",
             "chronological": _fmt(row.get("chronological_age_months")),
             "predicted": _fmt(row.get("predicted_age_months")),
             "gap": _fmt(row.get("brain_age_gap_months"))}
            for _, label, row in entries]


def _figure_sections(spec: dict, figure_dirs, subject: str, session: str | None) -> list[dict]:
    """One entry per section of the spec: its anchor, title, caption and figures (file name,
    suffix, inline SVG or the error that kept it from being read)."""
    sections = []
    for i, section in enumerate(spec["sections"]):
        figures = []
        for j, fig in enumerate(find_figures(figure_dirs, subject, session, section["desc"])):
            entry = {"file": fig.name, "suffix": fig.stem.rsplit("_", 1)[-1], "svg": None,
                     "error": None}
            try:
                entry["svg"] = inline_svg(fig, f"r{i}-{j}")
            except (OSError, ValueError) as exc:
                entry["error"] = str(exc)
            figures.append(entry)
        sections.append({"id": f"section-{section['desc']}", "title": section["title"],
                         "desc": section["desc"], "caption": section.get("caption") or "",
                         "figures": figures})
    return sections


def _markdown_blocks(text: str) -> list[tuple[str, str]]:
    """Minimal Markdown: ``("heading", text)`` for a one-line ``#`` heading, else
    ``("paragraph", text)`` with the whitespace collapsed; blocks are separated by blank
    lines."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        m = re.match(r"^(#{1,6})\s+(.*)$", block.strip())
        if m and "\n" not in block.strip():
            out.append(("heading", m.group(2)))
        else:
            out.append(("paragraph", " ".join(block.split())))
    return out


def _crashes(output_dir: Path, subject: str) -> list[dict]:
    """Crash files of the subject: path relative to ``output_dir`` and text (at most
    :data:`MAX_CRASH_CHARS` characters)."""
    crashes = []
    for crash in sorted((output_dir / f"sub-{subject}" / "log").glob("**/crash*.txt")):
        text = crash.read_text(errors="replace")
        if len(text) > MAX_CRASH_CHARS:
            text = text[:MAX_CRASH_CHARS] + "\n[... truncated]"
        crashes.append({"path": str(crash.relative_to(output_dir)), "text": text})
    return crashes


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def generate_report(output_dir, subject: str, session: str | None = None, work_dir=None,
                    *, spec_file=None) -> Path:
    """Write the HTML report of one subject (and session).

    Parameters
    ----------
    output_dir : str or Path
        Derivatives directory of bids-infantage.
    subject : str
        Participant label, with or without ``sub-``.
    session : str, optional
        Session label, with or without ``ses-``.
    work_dir : str or Path, optional
        Working directory; figures missing from ``<output_dir>/sub-<label>/figures`` are also
        looked for in ``<work_dir>/reportlets/sub-<label>/figures``.
    spec_file : str or Path, optional
        Report specification; defaults to the package's ``data/reports-spec.yml``.

    Returns
    -------
    Path
        ``<output_dir>/sub-<label>[_ses-<label>].html``.
    """
    from .. import __version__

    output_dir = Path(output_dir).absolute()
    subject = strip_prefix(subject, "sub-")
    session = strip_prefix(session, "ses-")
    prefix = bids_prefix(subject, session)
    spec = load_spec(spec_file)

    figure_dirs = [output_dir / f"sub-{subject}" / "figures"]
    if work_dir is not None:
        figure_dirs.append(Path(work_dir) / "reportlets" / f"sub-{subject}" / "figures")

    tsv = brainage_tsv_path(output_dir, subject, session)
    summary = summary_error = None
    if tsv.is_file():
        try:
            summary = _summary(read_brainage_tsv(tsv))
        except (OSError, ValueError) as exc:
            summary_error = str(exc)

    citation = output_dir / "logs" / "CITATION.md"
    page = render(
        TEMPLATE,
        title=f"{spec.get('title', 'bids-infantage report')}: {prefix}",
        version=__version__,
        written=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        out_of_range_banner=OUT_OF_RANGE_BANNER,
        summary=summary,
        summary_error=summary_error,
        tsv_relpath=str(tsv.relative_to(output_dir)),
        sessions=_sessions(output_dir, subject, session),
        sections=_figure_sections(spec, figure_dirs, subject, session),
        prefix=prefix,
        subject=subject,
        methods=(_markdown_blocks(citation.read_text(errors="replace"))
                 if citation.is_file() else None),
        crashes=_crashes(output_dir, subject),
    )
    out = output_dir / f"{prefix}.html"
    atomic_write_text(out, page)
    return out
