"""Image validation and reorientation to RAS (first step of every input image)."""
from __future__ import annotations

import logging
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from ..image.validation import load_validated

LOGGER = logging.getLogger("bids_infantage")


class _ValidateImageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="input NIfTI image")


class _ValidateImageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="validated 3D float32 image in RAS orientation")
    warnings = traits.List(traits.Str, desc="fallbacks applied")


class ValidateImage(SimpleInterface):
    """Check an input image (readable, 3D, finite, not empty) and reorient it to RAS."""

    input_spec = _ValidateImageInputSpec
    output_spec = _ValidateImageOutputSpec

    def _run_interface(self, runtime):
        img, warnings = load_validated(self.inputs.in_file)
        out = Path(runtime.cwd) / "validated_ras.nii.gz"
        img.to_filename(out)
        for warning in warnings:
            LOGGER.warning("%s: %s", self.inputs.in_file, warning)
        self._results["out_file"] = str(out)
        self._results["warnings"] = [f"{Path(self.inputs.in_file).name}: {w}" for w in warnings]
        return runtime
