"""Shared test fixtures: tiny synthetic brains and tiny BIDS datasets.

Both factories are plain functions, also offered as fixtures of the same name::

    def test_something(tmp_path, make_brain, make_bids):
        img = make_brain(tmp_path / "brain.nii.gz")
        root = make_bids(tmp_path, subjects={"01": {"age": 6}})

They are kept small (48^3 voxels at 3 mm by default) so that tests stay light.
"""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

#: semi-axes (mm) of the default ellipsoid brain: about 750 ml, an infant brain at ~6 months
BRAIN_SEMI_AXES_MM = (55.0, 65.0, 50.0)


def _default_values(r: np.ndarray) -> np.ndarray:
    """Intensities inside the brain: bright centre, darker rim (never 0 inside)."""
    return 100.0 * (1.0 - 0.5 * r) + 10.0


def make_brain(path, shape=(48, 48, 48), zooms=(3.0, 3.0, 3.0), value_fn=None, *,
               semi_axes_mm=BRAIN_SEMI_AXES_MM, dtype=np.float32) -> Path:
    """Write a skull-stripped ellipsoid 'brain' as NIfTI.

    Parameters
    ----------
    path : str or Path
        Output file (``.nii`` or ``.nii.gz``); parent folders are created.
    shape : 3 ints
        Grid size in voxels.
    zooms : 3 floats
        Voxel size in mm.
    value_fn : callable, optional
        ``value_fn(r) -> ndarray``: intensity inside the brain given the normalised
        ellipsoid radius ``r`` (0 at the centre, 1 on the surface), same shape as ``r``.
        Values must be non-zero inside for the brain mask to be the ellipsoid.
    semi_axes_mm : 3 floats
        Ellipsoid semi-axes in mm, shrunk to at most 80% of the half field of view.
    dtype : numpy dtype
        Data type on disk.

    Returns
    -------
    Path
        The file written. Orientation RAS (diagonal affine, world origin at the grid
        centre); background exactly 0; volume ``4/3 pi a b c`` (about 750 ml by default,
        within 300-1500 ml for the default grid).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(s) for s in shape)
    zooms = np.asarray(zooms, dtype=float)
    half_fov = np.asarray(shape) * zooms / 2.0
    axes = np.minimum(np.asarray(semi_axes_mm, dtype=float), 0.8 * half_fov)
    centre = (np.asarray(shape) - 1) / 2.0
    grid = np.indices(shape, dtype=np.float32)
    r = np.sqrt(sum(((grid[i] - centre[i]) * zooms[i] / axes[i]) ** 2 for i in range(3)))
    inside = r < 1.0
    values = (value_fn or _default_values)(r)
    data = np.where(inside, values, 0).astype(dtype)
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -centre * zooms
    img = nb.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    img.to_filename(str(path))
    return path


def make_bids(tmp_path, subjects=None, *, name="bids", age_units="months",
              images=True) -> Path:
    """Build a tiny valid BIDS dataset and return its root.

    Parameters
    ----------
    tmp_path : Path
        Folder in which the dataset folder ``name`` is created.
    subjects : dict or iterable of str
        Labels without ``sub-``. As a dict, each value may hold:

        ``age``
            value written to ``participants.tsv`` (``n/a`` when absent);
        ``images``
            file endings under ``anat/`` (default ``("T1w", "T2w")``), e.g.
            ``("run-1_T1w", "run-2_T1w", "T2w")`` or ``()`` for none;
        ``sessions``
            dict of session label (without ``ses-``) to a dict with ``images`` and
            optional ``age`` (written to ``sub-<label>_sessions.tsv``, with a JSON sidecar
            giving the same ``age_units``).

        Default: ``{"01": {"age": 6}}``.
    name : str
        Folder name of the dataset.
    age_units : str
        ``Units`` of the ``age`` column in ``participants.json``.
    images : bool
        Write small brains (:func:`make_brain`, 16^3 at 9 mm) or, when False, empty
        placeholder files (enough for queries with pybids).
    """
    root = Path(tmp_path) / name
    root.mkdir(parents=True, exist_ok=True)
    if subjects is None:
        subjects = {"01": {"age": 6}}
    if not isinstance(subjects, dict):
        subjects = {label: {} for label in subjects}
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "bids-infantage test dataset", "BIDSVersion": "1.10.0", "DatasetType": "raw",
         "License": "CC0", "Authors": ["bids-infantage tests"]}, indent=2) + "\n")
    (root / "README").write_text("Tiny synthetic dataset written by the bids-infantage tests.\n")
    rows = ["participant_id\tage"]
    rows += [f"sub-{label}\t{spec.get('age', 'n/a')}" for label, spec in subjects.items()]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    (root / "participants.json").write_text(json.dumps(
        {"age": {"Description": "age at scan", "Units": age_units}}, indent=2) + "\n")

    def write_images(folder: Path, prefix: str, endings) -> None:
        for ending in endings:
            path = folder / "anat" / f"{prefix}_{ending}.nii.gz"
            if images:
                make_brain(path, shape=(16, 16, 16), zooms=(9.0, 9.0, 9.0))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")

    for label, spec in subjects.items():
        sub = f"sub-{label}"
        sessions = spec.get("sessions")
        if sessions:
            rows = ["session_id\tage"]
            for ses_label, ses_spec in sessions.items():
                ses = f"ses-{ses_label}"
                write_images(root / sub / ses, f"{sub}_{ses}", ses_spec.get("images", ("T1w", "T2w")))
                rows.append(f"{ses}\t{ses_spec.get('age', 'n/a')}")
            (root / sub / f"{sub}_sessions.tsv").write_text("\n".join(rows) + "\n")
            (root / sub / f"{sub}_sessions.json").write_text(json.dumps(
                {"age": {"Description": "age at scan", "Units": age_units}}, indent=2) + "\n")
        else:
            (root / sub).mkdir(parents=True, exist_ok=True)
            write_images(root / sub, sub, spec.get("images", ("T1w", "T2w")))
    return root


@pytest.fixture(name="make_brain")
def make_brain_fixture():
    """The :func:`make_brain` factory."""
    return make_brain


@pytest.fixture(name="make_bids")
def make_bids_fixture():
    """The :func:`make_bids` factory."""
    return make_bids


#: The README's demo dataset (read in place, never written).
DEMO = Path(__file__).resolve().parents[1].parent / "shared" / "demo_bids"


def output_tree(root: Path) -> set[str]:
    """Files under ``root``, relative paths."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def input_state():
    """Modification times of everything in the demo dataset (to prove it is not written)."""
    return {str(p): p.stat().st_mtime for p in DEMO.rglob("*")}


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The README's demo: participant (``--nprocs 2``) then group on ../shared/demo_bids, once
    per test session (tests/test_e2e_demo.py and the brain-extraction comparisons read it)."""
    from bids_infantage.cli.run import main

    if not DEMO.is_dir():
        pytest.skip("../shared/demo_bids not found")
    base = tmp_path_factory.mktemp("demo")
    out, work = base / "out", base / "work"
    before = input_state()
    rc = main([str(DEMO), str(out), "participant", "-w", str(work), "--nprocs", "2"])
    tree = output_tree(out)
    rc_group = main([str(DEMO), str(out), "group", "-w", str(work)])
    return {"out": out, "work": work, "rc": rc, "rc_group": rc_group, "tree": tree,
            "input_before": before}
