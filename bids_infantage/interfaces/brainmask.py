"""Brain mask: detection of skull-stripped inputs, brain extraction of heads, mask QC."""
from __future__ import annotations

import logging
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from ..image.masks import (
    border_background,
    brain_volume_ml,
    looks_skull_stripped,
    mask_and_qc_from_skull_stripped,
    mask_qc_messages,
)
from ..utils.errors import InputError

LOGGER = logging.getLogger("bids_infantage")


class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="validated image (RAS)")
    source_file = traits.Str(desc="original BIDS file (for messages)")
    skull_strip = traits.Enum("auto", "skip", "force", usedefault=True)
    mask_file = File(exists=True, desc="precomputed brain mask (e.g. from --derivatives)")
    skull_stripped = traits.Bool(desc="the image's SkullStripped metadata (BIDS inheritance "
                                 "applied, see utils.bids.collect_sessions)")
    omp_nthreads = traits.Int(1, usedefault=True, desc="threads of the brain extraction")


class _BrainMaskOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="brain mask (uint8)")
    out_file = File(exists=True, desc="image masked by the brain mask, background level removed")
    volume_ml = traits.Float(desc="brain volume, ml")
    method = traits.Str(desc="how the mask was made: derivatives, skull-stripped input, mindgrab")
    warnings = traits.List(traits.Str, desc="mask QC messages")


class BrainMask(SimpleInterface):
    """Brain mask of an input image.

    - A precomputed mask (``--derivatives``) is used when given.
    - ``skull_strip='auto'``: an image detected as skull-stripped (:func:`looks_skull_stripped`,
      background = mode of the grid's faces) or declared so (``SkullStripped: true``) is masked
      by its voxels off the background, and the background level is subtracted; any other
      image (a head, or ``SkullStripped: false``) is skull-stripped with MindGrab
      (:func:`bids_infantage.models.brain_extraction.extract_brain`).
    - ``'skip'``: every image is trusted to be skull-stripped.
    - ``'force'``: every image is skull-stripped with MindGrab, skull-stripped ones included
      (one mask definition whatever tool made the input).

    The mask's plausibility (:func:`mask_qc_messages`) is reported in ``warnings`` (the table's
    ``qc_flags``). Masks under 100 ml raise :class:`InputError`.
    """

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        img = sitk.ReadImage(self.inputs.in_file, sitk.sitkFloat32)
        source = self.inputs.source_file or self.inputs.in_file
        qc: dict = {}
        brain_img = img
        if self.inputs.mask_file:
            mask_img = sitk.ReadImage(self.inputs.mask_file)
            mask = sitk.Resample(
                sitk.Cast(mask_img > 0, sitk.sitkUInt8), img, sitk.Transform(),
                sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8,
            )
            method = "derivatives"
        else:
            data = sitk.GetArrayViewFromImage(img)
            background = border_background(data)
            declared = self.inputs.skull_stripped if isdefined(self.inputs.skull_stripped) else None
            stripped = looks_skull_stripped(data, img.GetSpacing(), background)
            extract = self.inputs.skull_strip == "force" or (
                self.inputs.skull_strip == "auto"
                and (declared is False or (declared is None and not stripped)))
            if extract:
                mask, qc = self._extract(img, source)
                method = "mindgrab"
            else:
                mask, qc = mask_and_qc_from_skull_stripped(img, background)
                method = "skull-stripped input"
                if background != 0:
                    brain_img = sitk.Clamp(img - background, sitk.sitkFloat32, 0.0)
                    LOGGER.info("%s: background level %g subtracted", source, background)
        volume = brain_volume_ml(mask)
        if volume < 100:
            raise InputError(
                f"{source}: brain mask is only {volume:.0f} ml; check the image or the mask "
                "(a head needs --skull-strip auto or force; a brain with a noisy background "
                "needs \"SkullStripped\": true or --skull-strip skip)."
            )
        warnings = [f"{Path(source).name}: {m}" for m in mask_qc_messages(volume, qc)]
        for warning in warnings:
            LOGGER.warning("%s", warning)
        out_mask = Path(runtime.cwd) / "brain_mask.nii.gz"
        out_file = Path(runtime.cwd) / "brain.nii.gz"
        sitk.WriteImage(mask, str(out_mask))
        sitk.WriteImage(brain_img * sitk.Cast(mask, sitk.sitkFloat32), str(out_file))
        self._results.update(out_mask=str(out_mask), out_file=str(out_file), volume_ml=volume,
                             method=method, warnings=warnings)
        return runtime

    def _extract(self, img, source):
        from ..models.brain_extraction import extract_brain

        try:
            mask, info = extract_brain(img, n_threads=self.inputs.omp_nthreads)
        except ValueError as exc:
            raise InputError(f"{source}: brain extraction failed ({exc}); check that the image "
                             "is a head or brain MRI, or give a mask with --derivatives DIR.") from None
        LOGGER.info("%s: brain extracted with MindGrab at %.2f mm (%s voxels) in %.1f s",
                    source, info["spacing_mm"], "x".join(map(str, info["shape"])), info["seconds"])
        import SimpleITK as sitk

        filled = float(sitk.GetArrayViewFromImage(mask).sum())
        qc = {"second_component": info["second_component"],
              "hole_fraction": info["holes_filled"] / max(filled, 1.0)}
        return mask, qc
