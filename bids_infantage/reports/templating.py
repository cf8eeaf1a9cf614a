"""Jinja2 rendering of the HTML reports (the mechanism nireports uses).

Templates live in ``bids_infantage/data/templates`` (package data). Every value is
HTML-escaped unless the template marks it ``|safe`` (inline SVG, pre-rendered fragments).
"""
from __future__ import annotations

from functools import cache

import jinja2

from ..utils.data import data_path


@cache
def environment() -> jinja2.Environment:
    """The package's Jinja2 environment.

    Autoescaping is on for every template; ``trim_blocks`` and ``lstrip_blocks`` keep block
    tags from leaving blank lines; a missing variable raises (``StrictUndefined``).
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_path("templates"))),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, **context) -> str:
    """Render ``data/templates/<template>`` with ``context``.

    Raises
    ------
    jinja2.TemplateNotFound
        If the template is not in the package (a broken installation).
    """
    return environment().get_template(template).render(**context)
