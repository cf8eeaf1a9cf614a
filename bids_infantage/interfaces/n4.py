"""Nipype interface of N4 bias-field correction (:func:`bids_infantage.image.n4.n4_correct`)."""
from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from ..image.n4 import SHRINK_MM, n4_correct


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image (RAS)")
    mask_file = File(exists=True, mandatory=True, desc="brain mask on the same grid")
    shrink_mm = traits.Float(SHRINK_MM, usedefault=True, desc="voxel size (mm) at which the field is fit")


class _N4OutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="bias-corrected image (0 outside the mask)")
    bias_field = File(exists=True, desc="estimated multiplicative bias field")


class N4BiasFieldCorrection(SimpleInterface):
    """N4 bias-field correction of a skull-stripped image (SimpleITK)."""

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        corrected, field = n4_correct(
            sitk.ReadImage(self.inputs.in_file),
            sitk.ReadImage(self.inputs.mask_file),
            shrink_mm=self.inputs.shrink_mm,
        )
        out = Path(runtime.cwd) / "n4_corrected.nii.gz"
        fld = Path(runtime.cwd) / "n4_field.nii.gz"
        sitk.WriteImage(corrected, str(out))
        sitk.WriteImage(field, str(fld))
        self._results["out_file"] = str(out)
        self._results["bias_field"] = str(fld)
        return runtime
