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
"""
from __future__ import annotations

import csv
import html
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree

from ..utils.columns import BRAINAGE_COLUMNS as _COLUMNS
from ..utils.io import atomic_write_text

#: Columns of the brain-age TSV, in order (:mod:`bids_infantage.utils.columns`).
BRAINAGE_COLUMNS = tuple(_COLUMNS)
#: Text of the banner shown when the prediction is outside the model's age range.
OUT_OF_RANGE_BANNER = "out of range: do not trust the number"
#: Longest crash-file excerpt (characters) copied into the report.
MAX_CRASH_CHARS = 20000

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:1em 2em 4em}
h1{font-size:1.6em;margin:.6em 0 .2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.05em;margin:.8em 0 .3em;color:#555}
.meta{color:#666;font-size:.9em}
.banner{padding:.8em 1em;margin:1em 0;border-radius:4px;font-weight:bold}
.banner.error{background:#c0392b;color:#fff;font-size:1.2em}
.banner.warn{background:#f9e79f;color:#5b4a00;border:1px solid #d4ac0d}
table.summary{border-collapse:collapse;margin:.5em 0;min-width:60%}
table.summary th,table.summary td{border:1px solid #ddd;padding:.35em .8em;text-align:left;
vertical-align:top}
table.summary th{background:#f0f0f0;font-weight:600;width:16em}
tr.bad td{background:#f5b7b1;font-weight:bold}tr.warn td{background:#fcf3cf}
.flag{display:inline-block;background:#f9e79f;border:1px solid #d4ac0d;border-radius:3px;
padding:0 .4em;margin:0 .3em .2em 0}
.figure{background:#000;padding:4px;margin:.5em 0;border-radius:3px}
.figure.light{background:#fff;border:1px solid #ddd}
svg.reportlet{max-width:100%;height:auto;display:block;margin:0 auto}
.caption{color:#444;font-size:.92em;max-width:60em}
.missing{color:#a04000;font-style:italic}
pre{background:#f4f4f4;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:.8em}
nav a{margin-right:1em}
"""


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def _strip_prefix(label: str | None, prefix: str) -> str | None:
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
    subject = _strip_prefix(subject, "sub-")
    session = _strip_prefix(session, "ses-")
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


def find_figures(figure_dirs, subject: str, session: str | None, desc: str) -> list[Path]:
    """SVG figures of one subject/session with ``desc-<desc>``.

    Parameters
    ----------
    figure_dirs : sequence of Path
        Directories searched in order; the first that holds a match wins.
    subject, session : str
        Labels (with or without ``sub-``/``ses-``); without a session, figures carrying a
        ``ses-`` entity are not matched.
    desc : str
        Value of the ``desc`` entity.

    Returns
    -------
    list of Path
        Sorted matches (e.g. one per suffix ``_T1w``/``_T2w``).
    """
    prefix = bids_prefix(subject, session)
    pattern = re.compile(
        rf"^{re.escape(prefix)}_(?!ses-)(?:[a-zA-Z0-9]+-[a-zA-Z0-9]+_)*?desc-{re.escape(desc)}"
        r"(?:_[a-zA-Z0-9]+-[a-zA-Z0-9]+)*_[a-zA-Z0-9]+\.svg$"
    )
    for folder in figure_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        hits = sorted(p for p in folder.iterdir() if pattern.match(p.name))
        if hits:
            return hits
    return []


# --------------------------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------------------------
def inline_svg(path: str | Path, uid: str) -> str:
    """SVG markup ready to be inlined in HTML.

    The XML declaration and DOCTYPE are dropped, every ``id`` (and reference to it) is prefixed
    with ``uid`` so several figures can share a page, and the root element gets
    ``class="reportlet"`` (scaled to the page width by the style sheet).

    Raises
    ------
    ValueError
        The file is not a well-formed SVG.
    """
    text = Path(path).read_text()
    try:
        root = ElementTree.fromstring(text.encode())
    except ElementTree.ParseError as exc:
        raise ValueError(f"{path}: not valid XML ({exc})") from None
    if not root.tag.endswith("svg"):
        raise ValueError(f"{path}: root element is {root.tag!r}, not svg")
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{uid}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{uid}-\1)", text)
    text = re.sub(r'((?:xlink:)?href)="#([^"]+)"', rf'\1="#{uid}-\2"', text)
    text = re.sub(r"<svg\b", '<svg class="reportlet"', text, count=1)
    return text.strip()


def _fmt(value, digits: int = 1, unit: str = "") -> str:
    """Number with ``digits`` decimals and unit, or ``n/a``."""
    v = as_float(value)
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" + (f" {unit}" if unit else "")


def _summary(row: dict) -> tuple[str, list[str]]:
    """Summary table and banners (HTML) from a brain-age TSV row."""
    esc = html.escape
    out_of_range = as_bool(row.get("qc_out_of_range"))
    flags = split_flags(row.get("qc_flags"))
    banners = []
    if out_of_range:
        banners.append(f'<div class="banner error" id="qc-out-of-range">{OUT_OF_RANGE_BANNER}'
                       "</div>")
    if flags:
        banners.append('<div class="banner warn" id="qc-flags">QC flags: '
                       + ", ".join(esc(f) for f in flags) + "</div>")

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
    sha = row.get("model_sha256") or ""
    model = " / ".join(esc(v) for v in (row.get("model_name"), row.get("model_configuration"))
                       if v)
    if sha:
        model += f' <code title="{esc(sha)}">sha256 {esc(sha[:12])}</code>'

    rows = [
        ("Participant", esc(row.get("participant_id") or "n/a"), ""),
        ("Session", esc(row.get("session_id") or "n/a"), ""),
        ("Predicted brain age", f'<span id="predicted-age">{esc(predicted)}</span>',
         "bad" if out_of_range else ""),
        ("Prediction interval", esc(interval), ""),
        ("Chronological age", esc(f"{chrono:.1f} months" if chrono is not None else "unknown"),
         ""),
        ("Brain-age gap", esc(f"{gap:+.1f} months" if gap is not None else "n/a"), ""),
        ("Brain volume", esc(vol), "warn" if z is not None and abs(z) > 2 else ""),
        ("Out of the model's range", "yes" if out_of_range else "no",
         "bad" if out_of_range else ""),
        ("QC flags", "".join(f'<span class="flag">{esc(f)}</span>' for f in flags) or "none",
         "warn" if flags else ""),
        ("T1w-T2w brain-mask Dice", esc(_fmt(row.get("t1w_t2w_mask_dice"), 3)), ""),
        ("Normalization mask Dice", esc(_fmt(row.get("normalization_mask_dice"), 3)), ""),
        ("Model", model or "n/a", ""),
    ]
    body = "\n".join(f'<tr class="{cls}"><th>{name}</th><td>{value}</td></tr>' if cls else
                     f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value, cls in rows)
    return f'<table class="summary">\n{body}\n</table>', banners


def brainage_tsv_path(output_dir, subject: str, session: str | None = None) -> Path:
    """``<output_dir>/sub-<label>[/ses-<label>]/anat/<prefix>_brainage.tsv`` (labels with or
    without ``sub-``/``ses-``)."""
    subject = _strip_prefix(subject, "sub-")
    session = _strip_prefix(session, "ses-")
    anat = Path(output_dir) / f"sub-{subject}"
    if session:
        anat = anat / f"ses-{session}"
    return anat / "anat" / f"{bids_prefix(subject, session)}_brainage.tsv"


def sibling_sessions(output_dir, subject: str) -> list[str]:
    """Session labels (without ``ses-``) of a subject that have a brain-age table in
    ``<output_dir>/sub-<label>/ses-*/anat``, sorted; empty for a subject without sessions."""
    subject = _strip_prefix(subject, "sub-")
    labels = (d.name[len("ses-"):] for d in (Path(output_dir) / f"sub-{subject}").glob("ses-*"))
    return sorted(label for label in labels
                  if brainage_tsv_path(output_dir, subject, label).is_file())


def _sessions_html(output_dir, subject: str, session: str | None) -> str | None:
    """Table of the subject's sessions (ages, predicted age, gap) linking their reports, in
    order of chronological age (then label); None with fewer than two sessions."""
    labels = sibling_sessions(output_dir, subject)
    if session is None or len(labels) < 2:
        return None
    esc = html.escape
    entries = []
    for label in labels:
        try:
            row = read_brainage_tsv(brainage_tsv_path(output_dir, subject, label))
        except (OSError, ValueError):
            row = {}
        chrono = as_float(row.get("chronological_age_months"))
        entries.append((chrono if chrono is not None else float("inf"), label, row))
    entries.sort(key=lambda e: (e[0], e[1]))
    body = []
    for _, label, row in entries:
        name = f"{bids_prefix(subject, label)}.html"
        cell = (f"<strong>ses-{esc(label)}</strong> (this page)" if label == session
                else f'<a href="{esc(name)}">ses-{esc(label)}</a>')
        body.append(f"<tr><td>{cell}</td><td>{esc(_fmt(row.get('chronological_age_months')))}"
                    f"</td><td>{esc(_fmt(row.get('predicted_age_months')))}</td>"
                    f"<td>{esc(_fmt(row.get('brain_age_gap_months')))}</td></tr>")
    return ('<section id="sessions"><h2>Sessions of this infant</h2>\n'
            '<table class="sessions"><tr><th>session</th><th>chronological age (months)</th>'
            "<th>predicted age (months)</th><th>brain-age gap (months)</th></tr>\n"
            + "\n".join(body) + "\n</table>\n<p class=\"caption\">The cohort's trajectories "
            "(maturation rate, mixed model, growth chart) are in the group report.</p>\n"
            "</section>")


def _markdown(text: str) -> str:
    """Minimal Markdown to HTML: headings and paragraphs, everything escaped."""
    blocks = re.split(r"\n\s*\n", text.strip())
    out = []
    for block in blocks:
        m = re.match(r"^(#{1,6})\s+(.*)$", block.strip())
        if m and "\n" not in block.strip():
            out.append(f"<h3>{html.escape(m.group(2))}</h3>")
        else:
            out.append(f"<p>{html.escape(' '.join(block.split()))}</p>")
    return "\n".join(out)


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
    subject = _strip_prefix(subject, "sub-")
    session = _strip_prefix(session, "ses-")
    prefix = bids_prefix(subject, session)
    spec = load_spec(spec_file)
    esc = html.escape

    figure_dirs = [output_dir / f"sub-{subject}" / "figures"]
    if work_dir is not None:
        figure_dirs.append(Path(work_dir) / "reportlets" / f"sub-{subject}" / "figures")

    tsv = brainage_tsv_path(output_dir, subject, session)
    parts = []
    if tsv.is_file():
        try:
            table, banners = _summary(read_brainage_tsv(tsv))
        except (OSError, ValueError) as exc:
            table, banners = f'<p class="missing">{esc(str(exc))}</p>', []
        parts += banners
        parts.append(f'<section id="summary"><h2>Summary</h2>\n{table}\n</section>')
    else:
        parts.append('<section id="summary"><h2>Summary</h2><p class="missing">Brain-age table '
                     f"not found: {esc(str(tsv.relative_to(output_dir)))}</p></section>")

    nav = ['<a href="#summary">Summary</a>']
    sessions_html = _sessions_html(output_dir, subject, session)
    if sessions_html:
        nav.append('<a href="#sessions">Sessions</a>')
        parts.append(sessions_html)
    for i, section in enumerate(spec["sections"]):
        sid = f"section-{section['desc']}"
        nav.append(f'<a href="#{sid}">{esc(section["title"])}</a>')
        figs = find_figures(figure_dirs, subject, session, section["desc"])
        body = []
        for j, fig in enumerate(figs):
            if len(figs) > 1:
                body.append(f"<h3>{esc(fig.stem.rsplit('_', 1)[-1])}</h3>")
            try:
                svg = inline_svg(fig, f"r{i}-{j}")
            except (OSError, ValueError) as exc:
                body.append(f'<p class="missing">Figure could not be read: {esc(str(exc))}</p>')
                continue
            light = " light" if section["desc"] == "agechart" else ""
            body.append(f'<div class="figure{light}" data-file="{esc(fig.name)}">{svg}</div>')
        if not figs:
            body.append(f'<p class="missing">Figure not found (expected {esc(prefix)}_desc-'
                        f"{esc(section['desc'])}_*.svg in sub-{esc(subject)}/figures); "
                        "this step was skipped or failed.</p>")
        caption = section.get("caption") or ""
        parts.append(f'<section id="{esc(sid)}"><h2>{esc(section["title"])}</h2>\n'
                     + "\n".join(body)
                     + (f'\n<p class="caption">{esc(caption)}</p>' if caption else "")
                     + "\n</section>")

    citation = output_dir / "logs" / "CITATION.md"
    if citation.is_file():
        nav.append('<a href="#methods">Methods</a>')
        parts.append('<section id="methods"><h2>Methods</h2>\n'
                     + _markdown(citation.read_text(errors="replace")) + "\n</section>")

    crashes = sorted((output_dir / f"sub-{subject}" / "log").glob("**/crash*.txt"))
    if crashes:
        nav.append('<a href="#errors">Errors</a>')
        items = []
        for crash in crashes:
            text = crash.read_text(errors="replace")
            if len(text) > MAX_CRASH_CHARS:
                text = text[:MAX_CRASH_CHARS] + "\n[... truncated]"
            items.append(f"<li><details><summary><code>"
                         f"{esc(str(crash.relative_to(output_dir)))}</code></summary>"
                         f"<pre>{esc(text)}</pre></details></li>")
        parts.append('<section id="errors"><h2>Errors</h2>\n<p>'
                     f"{len(crashes)} crash file(s) were written for this participant:</p>\n"
                     "<ul>\n" + "\n".join(items) + "\n</ul>\n</section>")

    title = f"{spec.get('title', 'bids-infantage report')}: {prefix}"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<p class="meta">bids-infantage {esc(__version__)}; report written {when}</p>\n'
        f"<nav>{' '.join(nav)}</nav>\n" + "\n".join(parts) + "\n</main>\n</body>\n</html>\n"
    )
    out = output_dir / f"{prefix}.html"
    atomic_write_text(out, page)
    return out
