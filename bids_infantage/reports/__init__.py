"""Figures and HTML reports.

Participant level: :mod:`.reportlets` (the SVG of each anatomical step), :mod:`.agechart` and
:mod:`.regional` (the estimate and the regional maturity), drawn with :mod:`.plotting`;
:mod:`.participant` assembles them into the subject's HTML page, reading the brain-age table
with :mod:`.tables` and inlining the SVGs with :mod:`.figures`. Group level: :mod:`.group`.
The pages are rendered from Jinja2 templates by :mod:`.templating`.
"""
