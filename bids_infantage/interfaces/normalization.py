"""Normalization to the model's reference space and back (saliency to the anatomical space)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _NormalizeInputSpec(BaseInterfaceInputSpec):
    t1w_file = File(exists=True, desc="bias-corrected T1w in the anatomical space")
    t2w_file = File(exists=True, desc="bias-corrected T2w (the anatomical space when present)")
    mask_file = File(exists=True, mandatory=True, desc="brain mask in the anatomical space")
    model = traits.Str(mandatory=True, desc="model bundle name or folder")


class _NormalizeOutputSpec(TraitedSpec):
    model_input = File(exists=True, desc="npz: image (3, 64, 64, 64), mask (64, 64, 64)")
    ref_file = File(exists=True, desc="standardized anatomical image in reference space")
    ratio_ref_file = File(desc="T1w/T2w ratio in reference space (when both exist)")
    t1w_ref_file = File(desc="standardized T1w in reference space (when T2w is the anatomical space)")
    out_xfm = File(exists=True, desc="ITK affine: reference points -> anatomical points")
    mask_dice = traits.Float(desc="Dice of normalized brain mask vs reference mask")


class NormalizeToReference(SimpleInterface):
    """Affine normalization of the brain mask to the model reference, resampling to the 3 mm
    reference grid and the model input stack (same functions as training:
    :func:`~bids_infantage.models.preprocess.to_reference_space`)."""

    input_spec = _NormalizeInputSpec
    output_spec = _NormalizeOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        from ..image.registration import register_mask_to_reference
        from ..models.bundle.resolve import load_bundle
        from ..models.preprocess import to_reference_space

        bundle = load_bundle(self.inputs.model)
        ref = bundle.reference_mask()
        mask = sitk.ReadImage(self.inputs.mask_file, sitk.sitkUInt8)
        t1 = sitk.ReadImage(self.inputs.t1w_file, sitk.sitkFloat32) if self.inputs.t1w_file else None
        t2 = sitk.ReadImage(self.inputs.t2w_file, sitk.sitkFloat32) if self.inputs.t2w_file else None
        xfm, dice = register_mask_to_reference(mask, ref)
        out = to_reference_space(t1, t2, mask, ref, xfm)
        cwd = Path(runtime.cwd)
        np.savez_compressed(cwd / "model_input.npz", image=out["image"], mask=out["mask"])

        def save(arr, name):
            img = sitk.GetImageFromArray(np.ascontiguousarray(arr, dtype=np.float32))
            img.CopyInformation(ref)
            sitk.WriteImage(img, str(cwd / name))
            return str(cwd / name)

        channel = 1 if t2 is not None else 0
        self._results["ref_file"] = save(out["image"][channel], "anat_in_ref.nii.gz")
        if t1 is not None and t2 is not None:
            self._results["ratio_ref_file"] = save(out["image"][2], "ratio_in_ref.nii.gz")
            self._results["t1w_ref_file"] = save(out["image"][0], "t1w_in_ref.nii.gz")
        sitk.WriteTransform(xfm, str(cwd / "from-anat_to-ref_xfm.txt"))
        self._results.update(model_input=str(cwd / "model_input.npz"),
                             out_xfm=str(cwd / "from-anat_to-ref_xfm.txt"), mask_dice=dice)
        return runtime


class _ToAnatInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image in reference space")
    anat_file = File(exists=True, mandatory=True, desc="anatomical-space image (target grid)")
    xfm_file = File(exists=True, mandatory=True, desc="affine reference -> anatomical points")


class _ToAnatOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="image resampled to the anatomical grid")


class ReferenceToAnat(SimpleInterface):
    """Resample a reference-space map (e.g. Grad-CAM saliency) to the anatomical space."""

    input_spec = _ToAnatInputSpec
    output_spec = _ToAnatOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        img = sitk.ReadImage(self.inputs.in_file, sitk.sitkFloat32)
        anat = sitk.ReadImage(self.inputs.anat_file)
        xfm = sitk.ReadTransform(self.inputs.xfm_file)
        out = sitk.Resample(img, anat, xfm.GetInverse(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        path = Path(runtime.cwd) / "in_anat.nii.gz"
        sitk.WriteImage(out, str(path))
        self._results["out_file"] = str(path)
        return runtime


class _RatioInputSpec(BaseInterfaceInputSpec):
    t1w_file = File(exists=True, mandatory=True, desc="T1w in T2w space, bias-corrected")
    t2w_file = File(exists=True, mandatory=True, desc="T2w, bias-corrected")
    mask_file = File(exists=True, mandatory=True, desc="brain mask")


class _RatioOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="T1w/T2w ratio map in T2w space")


class T1wT2wRatioMap(SimpleInterface):
    """T1w/T2w ratio map in the anatomical space (standardized as for the model)."""

    input_spec = _RatioInputSpec
    output_spec = _RatioOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nb

        from ..models.transforms import StandardizeIntensity, T1wT2wRatio

        t1 = nb.load(self.inputs.t1w_file)
        t2 = nb.load(self.inputs.t2w_file)
        mask = np.asanyarray(nb.load(self.inputs.mask_file).dataobj) > 0
        std = StandardizeIntensity()
        ratio = T1wT2wRatio()(std(t1.get_fdata(dtype=np.float32), mask),
                              std(t2.get_fdata(dtype=np.float32), mask), mask)
        out = Path(runtime.cwd) / "ratio.nii.gz"
        nb.Nifti1Image(ratio, t2.affine).to_filename(out)
        self._results["out_file"] = str(out)
        return runtime
