"""Nipype interface of the rigid T1w->T2w registration (:mod:`bids_infantage.image.registration`).

Parameters live in ``data/t1w-t2w-rigid.json`` and ``data/normalization-affine.json``.
"""
from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from ..image.registration import edge_correlation, register_rigid_t1w_to_t2w, same_brain_messages
from ..image.resampling import resample_like


class _RigidInputSpec(BaseInterfaceInputSpec):
    fixed_file = File(exists=True, mandatory=True, desc="T2w, bias-corrected brain")
    moving_file = File(exists=True, mandatory=True, desc="T1w, bias-corrected brain")
    fixed_mask = File(exists=True, mandatory=True, desc="T2w brain mask")
    moving_mask = File(exists=True, mandatory=True, desc="T1w brain mask")


class _RigidOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="T1w resampled into T2w space")
    out_before = File(exists=True, desc="T1w on the T2w grid before registration (identity)")
    out_mask = File(exists=True, desc="T1w mask resampled into T2w space")
    out_xfm = File(exists=True, desc="ITK transform T2w->T1w points (from-T1w_to-T2w for images)")
    mutual_information = traits.Float(desc="final Mattes MI (negative)")
    mask_dice = traits.Float(desc="Dice of the T1w and T2w brain masks after registration")
    edge_correlation = traits.Float(desc="edge correlation of T1w and T2w after registration "
                                         "(edge_correlation: the same brain?)")
    warnings = traits.List(traits.Str, desc="QC message when the T1w and T2w may be two brains")


class RigidT1wToT2w(SimpleInterface):
    """Register T1w to T2w (rigid, mutual information) and resample T1w into T2w space; check
    that they show the same brain (:func:`edge_correlation`, a QC message below
    :data:`SAME_BRAIN_MIN`)."""

    input_spec = _RigidInputSpec
    output_spec = _RigidOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        t2w = sitk.ReadImage(self.inputs.fixed_file, sitk.sitkFloat32)
        t1w = sitk.ReadImage(self.inputs.moving_file, sitk.sitkFloat32)
        t2w_mask = sitk.ReadImage(self.inputs.fixed_mask, sitk.sitkUInt8)
        t1w_mask = sitk.ReadImage(self.inputs.moving_mask, sitk.sitkUInt8)
        xfm, metric = register_rigid_t1w_to_t2w(t2w, t1w, t2w_mask)
        moved = resample_like(t1w, t2w, xfm, antialias=False)
        moved_mask = resample_like(t1w_mask, t2w, xfm, interpolator="nearest")
        a = sitk.GetArrayViewFromImage(moved_mask) > 0
        b = sitk.GetArrayViewFromImage(t2w_mask) > 0
        cwd = Path(runtime.cwd)
        sitk.WriteImage(moved, str(cwd / "t1w_in_t2w.nii.gz"))
        sitk.WriteImage(resample_like(t1w, t2w, antialias=False), str(cwd / "t1w_before.nii.gz"))
        sitk.WriteImage(moved_mask, str(cwd / "t1w_mask_in_t2w.nii.gz"))
        sitk.WriteTransform(xfm, str(cwd / "from-T1w_to-T2w_xfm.txt"))
        self._results.update(
            out_file=str(cwd / "t1w_in_t2w.nii.gz"),
            out_before=str(cwd / "t1w_before.nii.gz"),
            out_mask=str(cwd / "t1w_mask_in_t2w.nii.gz"),
            out_xfm=str(cwd / "from-T1w_to-T2w_xfm.txt"),
            mutual_information=metric,
            mask_dice=float(2 * (a & b).sum() / max(1, a.sum() + b.sum())),
            edge_correlation=edge_correlation(moved, t2w, t2w_mask),
        )
        self._results["warnings"] = same_brain_messages(self._results["edge_correlation"])
        return runtime


