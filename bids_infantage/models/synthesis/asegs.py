"""The ``infant-asegs`` label maps of real infants: their ages, and their ventricles on the
model grid (painted as CSF in training).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...image.registration import register_mask_to_reference
from ...image.resampling import resample_like

LOGGER = logging.getLogger("bids_infantage.synthesis")


#: aseg labels (FreeSurfer LUT) of the ventricles: lateral (4, 43), inferior lateral (5, 44),
#: third (14) and fourth (15)
VENTRICLE_LABELS = (4, 43, 5, 44, 14, 15)


def aseg_age_months(path: str | Path) -> float:
    """Age (months) in an ``infant-asegs`` file name (``12mo_...``; ``34-38mo``: 36)."""
    token = Path(path).name.split("mo_")[0]
    lo, _, hi = token.partition("-")
    return (float(lo) + float(hi or lo)) / 2


def build_ventricle_atlas(aseg_dir: str | Path, reference_mask) -> dict:
    """Ventricles of real infants on the model grid, for CSF painting in training.

    The BMEXInfant templates do not show ventricular CSF as CSF (their lateral ventricles
    are not T2w-bright, and at 0 months they are T1w-bright), while single scans and other
    template families do; a model built from the templates alone never sees the CSF
    contrast of real scans. Each aseg's brain (labels > 0) is normalized to the reference
    mask with the pipeline's affine (:func:`register_mask_to_reference`) and its ventricle
    labels (:data:`VENTRICLE_LABELS`) resampled to the 3 mm grid.

    Parameters
    ----------
    aseg_dir : path
        ``infant-asegs`` (``<age>mo_aseg_acpc.nii.gz``, FreeSurfer labels).
    reference_mask : SimpleITK.Image
        Model reference mask (64^3, 3 mm).

    Returns
    -------
    dict
        ``ages`` float32 (K,) months; ``ventricles`` float32 (K, 64, 64, 64) in [0, 1]
        (partial volume), SimpleITK (z, y, x) order.

    Raises
    ------
    FileNotFoundError
        No ``*mo_aseg_acpc.nii.gz`` in ``aseg_dir``.
    """
    import SimpleITK as sitk

    files = sorted(Path(aseg_dir).glob("*mo_aseg_acpc.nii.gz"), key=aseg_age_months)
    if not files:
        raise FileNotFoundError(f"{aseg_dir}: no *mo_aseg_acpc.nii.gz label maps")
    ages, vents = [], []
    for f in files:
        aseg = sitk.ReadImage(str(f), sitk.sitkInt16)
        arr = sitk.GetArrayFromImage(aseg)
        brain = sitk.GetImageFromArray((arr > 0).astype(np.uint8))
        brain.CopyInformation(aseg)
        vent = sitk.GetImageFromArray(np.isin(arr, VENTRICLE_LABELS).astype(np.float32))
        vent.CopyInformation(aseg)
        xfm, dice = register_mask_to_reference(brain, reference_mask)
        LOGGER.info("%s: mask Dice to reference %.3f", f.name, dice)
        ages.append(aseg_age_months(f))
        vents.append(np.clip(sitk.GetArrayFromImage(resample_like(vent, reference_mask, xfm)), 0, 1))
    return {"ages": np.asarray(ages, np.float32), "ventricles": np.stack(vents).astype(np.float32)}
