"""The cohort of a cross-validation: model inputs, brain volumes and ages read back from
``bids-infantage`` participant outputs, or synthetic samples of the default model's generator.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...utils.errors import InputError
from ..transforms import CONFIGURATIONS

LOGGER = logging.getLogger("bids_infantage.training")


def load_derivatives_cohort(deriv_dir) -> dict:
    """Model inputs, brain volumes and chronological ages from participant outputs.

    Parameters
    ----------
    deriv_dir : path
        Output folder of ``bids-infantage ... participant``.

    Returns
    -------
    dict
        ``image`` float16 (N, 3, 64, 64, 64) [T1w, T2w, ratio] (zeros for a missing
        modality), ``wm`` uint8 (N, 64, 64, 64) white-matter target (k-means rule on the T2w
        channel, :func:`~bids_infantage.models.synthesis.templates._wm_probability`), ``has`` bool
        (N, 3), ``age`` float32 (N,) months, ``volume_ml`` float32 (N,), ``id`` list of
        ``sub-X[_ses-Y]``.

    Raises
    ------
    InputError
        No usable session (no brain-age table with a chronological age and its
        reference-space images).
    """
    import SimpleITK as sitk

    from ...reports.tables import as_float, read_brainage_tsv
    from ..synthesis.templates import _wm_probability

    deriv_dir = Path(deriv_dir)
    tables = sorted(deriv_dir.glob("sub-*/anat/*_brainage.tsv")) + \
        sorted(deriv_dir.glob("sub-*/ses-*/anat/*_brainage.tsv"))
    tables = [t for t in tables if "_desc-" not in t.name]  # not the desc-regional tables
    out = {k: [] for k in ("image", "wm", "has", "age", "volume_ml", "id")}
    skipped = []
    for table in tables:
        row = read_brainage_tsv(table)
        prefix = table.name[: -len("_brainage.tsv")]
        age = as_float(row.get("chronological_age_months"))
        volume = as_float(row.get("brain_volume_ml"))
        if age is None or volume is None:
            skipped.append(f"{prefix} (no chronological age)")
            continue
        files = [table.parent / f"{prefix}_space-infantageRef_desc-preproc_T1w.nii.gz",
                 table.parent / f"{prefix}_space-infantageRef_desc-preproc_T2w.nii.gz",
                 table.parent / f"{prefix}_space-infantageRef_desc-ratio_T1wT2w.nii.gz"]
        has = [f.exists() for f in files]
        if not (has[0] or has[1]):
            skipped.append(f"{prefix} (no space-infantageRef images: rerun the participant level "
                           "with this version)")
            continue
        chans = [sitk.GetArrayFromImage(sitk.ReadImage(str(f), sitk.sitkFloat32)) if h else None
                 for f, h in zip(files, has)]
        shape = next(c.shape for c in chans if c is not None)
        image = np.stack([c if c is not None else np.zeros(shape, np.float32) for c in chans])
        mask = image[:2].max(0) > 0
        wm = _wm_probability(image[1], mask) if has[1] else np.zeros(shape, np.float32)
        out["image"].append(image.astype(np.float16))
        out["wm"].append((wm > 0.5).astype(np.uint8))
        out["has"].append(has)
        out["age"].append(age)
        out["volume_ml"].append(volume)
        out["id"].append(prefix)
    for item in skipped:
        LOGGER.warning("skipped %s", item)
    if not out["id"]:
        raise InputError(f"{deriv_dir}: no session with a brain-age table, a chronological age "
                         "and reference-space images; run `bids-infantage BIDS_DIR "
                         f"{deriv_dir} participant` on a dataset with ages first")
    return {"image": np.stack(out["image"]), "wm": np.stack(out["wm"]),
            "has": np.asarray(out["has"], bool), "age": np.asarray(out["age"], np.float32),
            "volume_ml": np.asarray(out["volume_ml"], np.float32), "id": out["id"]}


def synthetic_cohort(n: int, *, seed: int, cache_dir: Path, shared: Path, nprocs: int = 1) -> dict:
    """``n`` synthetic infants from the default model's generator (ages uniform in 0-24
    months), each passed through the shared preprocessing; cached in ``cache_dir``.

    Returns
    -------
    dict
        As :func:`load_derivatives_cohort`.
    """
    from ..dataset import generate_cohort
    from ..training import ensure_generator

    cache_dir = Path(cache_dir)
    paths = generate_cohort(cache_dir / f"cv-synthetic-seed{seed}", n=n, seed=seed,
                            nprocs=nprocs, **ensure_generator(cache_dir, shared))
    return load_sample_files(paths)


def load_sample_files(paths) -> dict:
    """Cohort from ``sample-*.npz`` files of :func:`~bids_infantage.models.dataset.generate_cohort`."""
    from ..dataset import load_cohort

    paths = sorted(Path(p) for p in paths)
    if not paths:
        raise InputError("no sample-*.npz files given: pass --synthetic N or a folder that holds "
                         "samples made by bids-infantage-train")
    data = load_cohort(paths)
    data["has"] = np.ones((len(paths), 3), bool)
    data["id"] = [p.stem for p in paths]
    return data


def _subset(data: dict, idx) -> dict:
    return {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in data.items()}


def usable_configurations(data: dict, configs) -> list[str]:
    """Configurations whose channels exist for every subject of the cohort."""
    return [c for c in configs if data["has"][:, list(CONFIGURATIONS[c])].all()]


# --------------------------------------------------------------------------- splits
