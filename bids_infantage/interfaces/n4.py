"""N4 bias-field correction (Tustison et al., IEEE TMI 2010) with SimpleITK."""
from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

#: Voxel size (mm) at which the field is fit by default: 3 mm matches a 2 mm fit to 0.04% on
#: the 24-month template; 4 mm (a shrink factor of 5 at 0.8 mm) deviated by 0.8%.
SHRINK_MM = 3.0
#: Default iterations per fitting level.
ITERATIONS = (20, 15, 10)


def n4_correct(image, mask, *, shrink_mm: float = SHRINK_MM, iterations=ITERATIONS, seed: int = 0):
    """Correct the bias field of a brain image with SimpleITK's N4.

    The field is estimated on an image shrunk to about ``shrink_mm`` voxels (fast; the field is
    smooth) and evaluated at full resolution.

    Parameters
    ----------
    image : SimpleITK.Image
        3D image, any voxel size (mm).
    mask : SimpleITK.Image
        Brain mask on the same grid (uint8, 1 inside).
    shrink_mm : float
        Target voxel size (mm) for estimating the field.
    iterations : sequence of int
        Iterations per fitting level (N4's multi-resolution B-spline fit).

    Returns
    -------
    corrected : SimpleITK.Image
        float32, same grid, ``image / field`` inside the mask, 0 outside.
    field : SimpleITK.Image
        float32 multiplicative bias field, same grid.
    """
    import SimpleITK as sitk

    img = sitk.Cast(image, sitk.sitkFloat32)
    msk = sitk.Cast(mask > 0, sitk.sitkUInt8)
    shrink = max(1, int(round(shrink_mm / min(img.GetSpacing()))))
    small = sitk.Shrink(img, [shrink] * 3)
    small_mask = sitk.Shrink(msk, [shrink] * 3)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(i) for i in iterations])
    n4.SetNumberOfThreads(1)  # deterministic; parallelism comes from Nipype's MultiProc
    n4.Execute(small, small_mask)
    log_field = n4.GetLogBiasFieldAsImage(img)
    field = sitk.Exp(log_field)
    corrected = sitk.Cast(img / field, sitk.sitkFloat32) * sitk.Cast(msk, sitk.sitkFloat32)
    return corrected, sitk.Cast(field, sitk.sitkFloat32)


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
