"""The dataset around a run: BIDS validation of the input, ``dataset_description.json`` and
``.bidsignore`` of the derivatives, precomputed brain masks from ``--derivatives``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..utils.io import atomic_write_text

LOGGER = logging.getLogger("bids_infantage")


BIDSIGNORE = """\
*.html
**/figures
logs
**/log
*_xfm.txt
*_brainage.tsv
*_brainage.json
*_brainage.nii.gz
*_T1wT2w.nii.gz
*_T1wT2w.json
*_saliency.nii.gz
*_saliency.json
group_*
"""


def write_derivatives_description(output_dir: Path, bids_dir: Path, bundle) -> None:
    """``dataset_description.json`` (DatasetType derivative, GeneratedBy with version and
    model) and ``.bidsignore`` for the non-BIDS outputs (reports, figures, tables)."""
    from .. import __version__

    generated = {
        "Name": "bids-infantage",
        "Version": __version__,
        "Description": f"model {bundle.name}, bundle.json sha256 {bundle.sha256}",
        "CodeURL": "https://github.com/bids-infantage/bids-infantage",
    }
    if os.getenv("BIDS_INFANTAGE_CONTAINER"):
        generated["Container"] = {"Type": "docker", "Tag": os.environ["BIDS_INFANTAGE_CONTAINER"]}
    desc = {
        "Name": "bids-infantage: infant brain age estimates",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [{"URL": bids_dir.resolve().as_uri()}],
        "HowToAcknowledge": "Cite bids-infantage and the methods in logs/CITATION.md.",
        "License": "CC0",
        "Authors": ["bids-infantage"],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / "dataset_description.json", json.dumps(desc, indent=2) + "\n")
    atomic_write_text(output_dir / ".bidsignore", BIDSIGNORE)
    atomic_write_text(output_dir / "README", "Infant brain-age estimates made by bids-infantage "
                  f"{__version__}. See sub-*.html (per session) and group.html (cohort); column "
                  "descriptions are in the JSON sidecars.\n")


def run_bids_validator(bids_dir: Path) -> None:
    """Validate the input with ``bids-validator-deno``; print one summary block.

    Errors stop the run, except unreadable NIfTI headers of links stored as text files
    (git without symlinks), which bids-infantage follows.

    Raises
    ------
    InputError
        The dataset has validation errors.
    """
    from ..utils.bids import resolve_link_file
    from ..utils.errors import InputError

    exe = shutil.which("bids-validator-deno") or str(Path(sys.executable).parent / "bids-validator-deno")
    if not Path(exe).exists():
        LOGGER.warning("bids-validator-deno is not installed; input validation skipped "
                       "(pip install bids-validator-deno, or pass --skip-bids-validation)")
        return
    try:
        proc = subprocess.run([exe, "--json", str(bids_dir)], capture_output=True, text=True, timeout=600)
        report = json.loads(proc.stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        LOGGER.warning("BIDS validation could not run (%s); continuing", exc)
        return
    issues = report.get("issues", {}).get("issues", [])
    errors, warnings, followed = {}, {}, 0
    for issue in issues:
        loc = issue.get("location") or ""
        if issue.get("code") == "NIFTI_HEADER_UNREADABLE" and loc:
            path = bids_dir / loc.lstrip("/")
            if resolve_link_file(path) != path:
                followed += 1
                continue
        bucket = errors if issue.get("severity") == "error" else warnings
        bucket.setdefault(issue.get("code"), []).append(loc)
    lines = ["BIDS validation (bids-validator-deno):"]
    lines.append(f"  {sum(map(len, errors.values()))} errors, {sum(map(len, warnings.values()))} warnings"
                 + (f"; {followed} links stored as text files will be followed" if followed else ""))
    for code, locs in sorted(errors.items()):
        lines.append(f"  ERROR {code}: {len(locs)} file(s), e.g. {locs[0] or '(dataset)'}")
    for code, locs in sorted(warnings.items()):
        lines.append(f"  warning {code}: {len(locs)}")
    LOGGER.info("\n".join(lines))
    if errors:
        raise InputError(f"{bids_dir}: the dataset has BIDS validation errors (above); fix them or "
                         "pass --skip-bids-validation.")


def find_precomputed_masks(derivatives: list[Path], unit: dict) -> dict:
    """Brain masks ``sub-X[_ses-Y][_space-T1w|T2w]_desc-brain_mask.nii.gz`` in derivatives
    folders; a mask is matched to the T2w when the session has one, else to the T1w."""
    prefix = f"sub-{unit['subject']}" + (f"_ses-{unit['session']}" if unit.get("session") else "")
    for folder in derivatives:
        hits = sorted(Path(folder).rglob(f"{prefix}_*desc-brain_mask.nii*"))
        if not unit.get("session"):
            hits = [h for h in hits if "_ses-" not in h.name]
        if hits:
            key = "t2w" if unit["t2w"] else "t1w"
            for h in hits:
                if f"space-{key.upper()[:2]}w" in h.name or "space-" not in h.name:
                    return {key: str(h)}
    return {}
