"""The SVG reportlets of a subject: finding them in the figures directories and inlining them
in the HTML report.

Figures are named ``sub-<label>[_ses-<label>]_desc-<desc>_<suffix>.svg`` and live in
``<output_dir>/sub-<label>/figures`` (or, while a run is going, in
``<work_dir>/reportlets/sub-<label>/figures``).
"""
from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from .tables import bids_prefix


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
