"""The one preprocessing path shared by training and inference.

Real inputs go through it as Nipype nodes (``workflows/anatomical.py``); synthetic training
samples go through :func:`preprocess_session`, which calls the very same functions in the
same order: brain mask -> N4 -> rigid T1w->T2w -> affine normalization of the brain mask to
the reference -> resampling to the 3 mm reference grid -> intensity standardization and
T1w/T2w ratio (:class:`~bids_infantage.models.transforms.ModelInputd`).
"""
from __future__ import annotations

import numpy as np

from ..image.masks import brain_volume_ml, mask_from_skull_stripped
from ..image.n4 import n4_correct
from ..image.registration import register_mask_to_reference, register_rigid_t1w_to_t2w
from ..image.resampling import crop_to_mask, mask_region, resample_like
from .transforms import ModelInputd

#: Margin (mm) around the brain mask's bounding box kept when resampling to the reference grid.
CROP_MARGIN_MM = 10.0


def preprocessing_settings() -> dict:
    """The pipeline's default preprocessing parameters, as recorded in a model bundle's
    ``training.preprocessing`` (what the training samples went through).

    Returns
    -------
    dict
        ``n4`` (defaults of :func:`~bids_infantage.image.n4.n4_correct`: shrink in mm,
        iterations per level), ``rigid`` and ``normalization`` (the parameter files
        ``data/t1w-t2w-rigid.json`` and ``data/normalization-affine.json``, without their
        descriptions).
    """
    from ..image import n4
    from ..utils.data import load_json

    drop = {"description"}
    return {
        "n4": {"shrink_mm": n4.SHRINK_MM, "iterations": list(n4.ITERATIONS)},
        "rigid": {k: v for k, v in load_json("t1w-t2w-rigid.json").items() if k not in drop},
        "normalization": {k: v for k, v in load_json("normalization-affine.json").items()
                          if k not in drop},
    }


def to_reference_space(t1w, t2w, mask, reference_mask, transform, extra=None) -> dict:
    """Resample anatomical-space images to the reference grid and build the model input.

    Parameters
    ----------
    t1w, t2w : SimpleITK.Image or None
        Bias-corrected images in the anatomical reference space (T2w space when T2w exists).
    mask : SimpleITK.Image
        Brain mask in the same space.
    reference_mask : SimpleITK.Image
        Model reference mask (defines the grid, 64^3 at 3 mm).
    transform : SimpleITK.Transform
        Reference points -> anatomical points (from :func:`register_mask_to_reference`).
    extra : dict of name -> SimpleITK.Image, optional
        More images to resample linearly (e.g. a white-matter probability map in training).

    Returns
    -------
    dict
        ``image``: float32 (3, X, Y, Z) [T1w, T2w, ratio]; ``mask``: uint8 (X, Y, Z);
        plus one float32 (X, Y, Z) array per ``extra`` entry. Arrays are in SimpleITK's
        (z, y, x) index order.
    """
    import SimpleITK as sitk

    region = mask_region(mask, CROP_MARGIN_MM)  # one box for every image (same grid)

    def arr(img):
        # Everything outside the brain mask is zeroed in the model input, so the anti-aliasing
        # and resampling only need the brain's bounding box plus a margin (10 mm, beyond the
        # smoothing kernel's reach): the same values, 3-4x fewer voxels to smooth.
        if img is None:
            return None
        return sitk.GetArrayFromImage(
            resample_like(crop_to_mask(img, mask, CROP_MARGIN_MM, region), reference_mask, transform))

    mask_ref = arr(sitk.Cast(mask > 0, sitk.sitkFloat32)) > 0.5
    out = ModelInputd()({"T1w": arr(t1w), "T2w": arr(t2w), "mask": mask_ref})
    out["mask"] = mask_ref.astype(np.uint8)
    for name, img in (extra or {}).items():
        out[name] = arr(img).astype(np.float32)
    return out


def preprocess_session(t1w=None, t2w=None, *, reference_mask, extra=None,
                       settings: dict | None = None) -> dict:
    """Run the full preprocessing on skull-stripped SimpleITK images (training path).

    Parameters
    ----------
    t1w, t2w : SimpleITK.Image or None
        Skull-stripped images (at least one), RAS, any grid (mm).
    reference_mask : SimpleITK.Image
        Model reference mask.
    extra : dict, optional
        Images on the T2w grid (or T1w grid when T2w is absent) to carry to reference space.
    settings : dict, optional
        Overrides of the pipeline's defaults, for accuracy checks
        (``benchmarks/bench_participant.py``): ``"n4"`` (keyword arguments of
        :func:`~bids_infantage.image.n4.n4_correct`), ``"rigid"`` and ``"normalization"``
        (parameter dicts replacing ``data/t1w-t2w-rigid.json`` and
        ``data/normalization-affine.json``).

    Returns
    -------
    dict
        As :func:`to_reference_space`, plus ``volume_ml`` (float, brain volume in ml),
        ``mask_dice`` (normalization QC) and ``t1w_t2w_mi`` (registration metric or nan).
    """
    if t1w is None and t2w is None:
        raise ValueError("preprocess_session needs T1w or T2w")
    settings = settings or {}
    n4_kw = settings.get("n4", {})
    anat = t2w if t2w is not None else t1w
    anat_mask = mask_from_skull_stripped(anat)
    t1c = t2c = None
    mi = float("nan")
    if t2w is not None:
        t2c, _ = n4_correct(t2w, anat_mask, **n4_kw)
    if t1w is not None:
        t1_mask = mask_from_skull_stripped(t1w) if t2w is not None else anat_mask
        t1c, _ = n4_correct(t1w, t1_mask, **n4_kw)
        if t2w is not None:
            xfm, mi = register_rigid_t1w_to_t2w(t2c, t1c, anat_mask, settings.get("rigid"))
            t1c = resample_like(t1c, t2c, xfm, antialias=False)
    ref_xfm, dice = register_mask_to_reference(anat_mask, reference_mask,
                                                settings.get("normalization"))
    out = to_reference_space(t1c, t2c, anat_mask, reference_mask, ref_xfm, extra=extra)
    out.update(volume_ml=brain_volume_ml(anat_mask), mask_dice=dice, t1w_t2w_mi=mi)
    return out
