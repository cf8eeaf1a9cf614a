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


def test_architecture_names_modules_that_exist():
    """Every ``package.module`` (and ``package/module.py``) that docs/architecture.md names
    exists, so the page follows the code when modules move."""
    import importlib
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    layers = "cli|workflows|interfaces|reports|group|models|maturity|image|utils"
    dotted = set(re.findall(rf"\b((?:{layers})(?:\.[a-z_0-9]+)+)", text))
    dotted = {d for d in dotted if d.rsplit(".", 1)[-1] not in ("html", "py", "md", "tsv", "json", "yml")}
    paths = {p.replace("/", ".") for p in re.findall(rf"`((?:{layers})/[a-z_0-9/]+)\.py`", text)}
    assert len(dotted | paths) > 20
    missing = []
    for name in sorted(dotted | paths):
        parts = name.split(".")
        for k in range(len(parts), 0, -1):  # longest importable module, then attributes
            try:
                obj = importlib.import_module("bids_infantage." + ".".join(parts[:k]))
            except ModuleNotFoundError:
                continue
            for attr in parts[k:]:
                obj = getattr(obj, attr, None)
            break
        else:
            obj = None
        if obj is None:
            missing.append(name)
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"
