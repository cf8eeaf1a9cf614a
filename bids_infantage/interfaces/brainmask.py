"""Brain mask: detection of skull-stripped inputs, mask extraction, brain volume."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from ..utils.errors import InputError


def looks_skull_stripped(data: np.ndarray, zooms_mm) -> bool:
    """Tell whether an image is already skull-stripped.

    Rule (documented in docs/usage.md): at least 25% of voxels are exactly 0, the faces of
    the field of view are zero, and the non-zero region is 150-2500 ml (a brain, not a head).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    zooms_mm : sequence of 3 floats

    >>> import numpy as np
    >>> d = np.zeros((40, 40, 40)); d[10:30, 10:30, 10:30] = 1
    >>> looks_skull_stripped(d, (3.0, 3.0, 3.0))
    True
    >>> looks_skull_stripped(d + 0.5, (3.0, 3.0, 3.0))
    False
    """
    nonzero = data != 0
    if nonzero.mean() > 0.75:
        return False
    faces = [data[0], data[-1], data[:, 0], data[:, -1], data[:, :, 0], data[:, :, -1]]
    if max(float(np.mean(f != 0)) for f in faces) > 0.02:
        return False
    volume_ml = nonzero.sum() * float(np.prod(zooms_mm)) / 1000.0
    return bool(150.0 <= volume_ml <= 2500.0)


def mask_from_skull_stripped(image):
    """Brain mask of a skull-stripped image: non-zero voxels, largest component, holes filled.

    Parameters
    ----------
    image : SimpleITK.Image
        Skull-stripped 3D image (background exactly 0).

    Returns
    -------
    SimpleITK.Image
        uint8 mask on the same grid.
    """
    import SimpleITK as sitk

    mask = sitk.Cast(sitk.Abs(sitk.Cast(image, sitk.sitkFloat32)) > 0, sitk.sitkUInt8)
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    mask = sitk.Cast(cc == 1, sitk.sitkUInt8)
    mask = sitk.BinaryMorphologicalClosing(mask, [1, 1, 1])
    return sitk.BinaryFillhole(mask)


def brain_volume_ml(mask) -> float:
    """Volume (ml) of a binary SimpleITK mask."""
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(mask)
    return float((arr > 0).sum() * np.prod(mask.GetSpacing()) / 1000.0)


class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="validated image (RAS)")
    source_file = traits.Str(desc="original BIDS file (for messages)")
    skull_strip = traits.Enum("auto", "skip", "force", usedefault=True)
    mask_file = File(exists=True, desc="precomputed brain mask (e.g. from --derivatives)")
    skull_stripped = traits.Bool(desc="the image's SkullStripped metadata (BIDS inheritance "
                                 "applied, see utils.bids.collect_sessions)")


class _BrainMaskOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="brain mask (uint8)")
    out_file = File(exists=True, desc="image masked by the brain mask")
    volume_ml = traits.Float(desc="brain volume, ml")


class BrainMask(SimpleInterface):
    """Brain mask of an input image.

    ``skull_strip='auto'``: a precomputed mask is used when given; otherwise skull-stripped
    input is detected (:func:`looks_skull_stripped`), or declared by ``SkullStripped: true`` in
    its metadata, and its non-zero voxels form the mask. Heads with skull are not supported yet
    and raise :class:`InputError` saying so.
    """

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        img = sitk.ReadImage(self.inputs.in_file, sitk.sitkFloat32)
        source = self.inputs.source_file or self.inputs.in_file
        if self.inputs.mask_file:
            mask_img = sitk.ReadImage(self.inputs.mask_file)
            mask = sitk.Resample(
                sitk.Cast(mask_img > 0, sitk.sitkUInt8), img, sitk.Transform(),
                sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8,
            )
        else:
            data = sitk.GetArrayViewFromImage(img)
            declared = self.inputs.skull_stripped if isdefined(self.inputs.skull_stripped) else None
            stripped = looks_skull_stripped(data, img.GetSpacing())
            if self.inputs.skull_strip == "force" or (
                self.inputs.skull_strip == "auto" and not stripped
                and declared is not True
            ):
                raise InputError(
                    f"{source}: looks like a head with skull (or --skull-strip force was given); "
                    "skull-stripping is not supported yet: give skull-stripped images, or a brain "
                    "mask with --derivatives DIR (sub-<label>[_ses-<label>]_desc-brain_mask.nii.gz)."
                )
            mask = mask_from_skull_stripped(img)
        volume = brain_volume_ml(mask)
        if volume < 100:
            raise InputError(
                f"{source}: brain mask is only {volume:.0f} ml; check the image or the mask."
            )
        out_mask = Path(runtime.cwd) / "brain_mask.nii.gz"
        out_file = Path(runtime.cwd) / "brain.nii.gz"
        sitk.WriteImage(mask, str(out_mask))
        sitk.WriteImage(img * sitk.Cast(mask, sitk.sitkFloat32), str(out_file))
        self._results.update(out_mask=str(out_mask), out_file=str(out_file), volume_ml=volume)
        return runtime
