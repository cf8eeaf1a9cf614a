"""The documentation of the outputs follows the one definition of the brain-age table."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _outputs_table_rows() -> dict[str, str]:
    """``column -> units cell`` of the brain-age table in docs/outputs.md (columns without
    ``Units`` in the sidecar, e.g. true/false, are not compared)."""
    rows = {}
    for line in (ROOT / "docs" / "outputs.md").read_text().splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|(.*)\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(3).strip()
    return rows


def test_outputs_doc_lists_every_brainage_column_with_its_units():
    from bids_infantage.utils.columns import BRAINAGE_COLUMNS

    rows = _outputs_table_rows()
    missing = [c for c in BRAINAGE_COLUMNS if c not in rows]
    assert not missing, f"docs/outputs.md does not describe {missing}"
    for column, spec in BRAINAGE_COLUMNS.items():
        if "Units" in spec:
            assert rows[column] == spec["Units"], (column, rows[column], spec["Units"])
