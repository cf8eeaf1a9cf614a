"""The layers of the package import downwards only (issue #18; docs/architecture.md).

image (plain functions, no nipype) <- models (networks, synthesis, inference, training)
<- interfaces (nipype wrappers) <- workflows (init_*_wf) <- cli. Imports inside functions
count as much as those at the top of a module.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bids_infantage"
#: A module over this many lines holds more than one concern (issue #18 asks for ~400).
MAX_MODULE_LINES = 420


def module_name(path: Path, root: Path) -> str:
    """Dotted name of ``path`` inside the package folder ``root`` (``root.name`` first)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code, as absolute dotted names
    (``from .x import y`` in ``pkg.a`` gives ``pkg.x`` and ``pkg.x.y``)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def violations(root: Path, rules: dict[str, tuple[str, ...]]) -> list[str]:
    """``"module imports forbidden"`` for each module of ``root`` under a key of ``rules``
    (a dotted prefix) that imports a module under one of that key's forbidden prefixes."""
    out = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        for scope, forbidden in rules.items():
            if name != scope and not name.startswith(scope + "."):
                continue
            for mod in sorted(imported_modules(path, root)):
                if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                    out.append(f"{name} imports {mod}")
    return out


RULES = {
    "bids_infantage.image": ("nipype", "niworkflows", "bids_infantage.interfaces",
                             "bids_infantage.workflows", "bids_infantage.models", "bids_infantage.cli"),
    "bids_infantage.models": ("bids_infantage.interfaces", "bids_infantage.workflows", "bids_infantage.cli",
                              "nipype", "niworkflows"),
    "bids_infantage.maturity": ("bids_infantage.interfaces", "bids_infantage.workflows", "nipype"),
    "bids_infantage.models.bundle": ("bids_infantage.models.training", "bids_infantage.models.cv"),
    "bids_infantage.interfaces.inference": ("bids_infantage.models.training", "bids_infantage.models.cv"),
    "bids_infantage.reports": ("bids_infantage.workflows", "bids_infantage.interfaces", "bids_infantage.cli",
                               "nipype"),
    "bids_infantage.group": ("bids_infantage.workflows", "bids_infantage.interfaces", "bids_infantage.cli",
                             "nipype"),
    "bids_infantage.utils": ("nipype", "niworkflows", "bids_infantage.interfaces", "bids_infantage.workflows",
                             "bids_infantage.models", "bids_infantage.cli"),
}


def test_layers_import_downwards_only():
    """models/ never imports interfaces/ or nipype; image/ and utils/ never import nipype or
    anything above them; inference never imports the training code; reports/ and group/ never
    import nipype, the workflows or the interfaces."""
    assert violations(PACKAGE, RULES) == []


def test_the_layer_check_sees_a_violation(tmp_path):
    """The checker itself: a lazy relative import of interfaces inside a models function, and
    a nipype import in the image layer, are both found."""
    root = tmp_path / "bids_infantage"
    for sub in ("models", "image", "interfaces"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "models" / "synth.py").write_text(
        "def f():\n    from ..interfaces.registration import resample_like\n    return resample_like\n")
    (root / "image" / "io.py").write_text("from nipype.interfaces.base import File\n")
    (root / "image" / "ok.py").write_text("import numpy as np\nfrom .io import File\n")
    found = violations(root, RULES)
    assert "bids_infantage.models.synth imports bids_infantage.interfaces.registration" in found
    assert "bids_infantage.image.io imports nipype.interfaces.base" in found
    assert not any(v.startswith("bids_infantage.image.ok") for v in found)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_hold_one_concern(path):
    """No module is over MAX_MODULE_LINES lines (split it by concern, issue #18)."""
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE.parent)} has {n} lines"
