"""Reportlet interfaces: each writes one SVG figure of the subject's HTML report.

Thin nipype wrappers of :mod:`bids_infantage.reports.reportlets`. The SVG is written in the
node's working directory and exposed as ``out_report``, to be sunk with a
``DerivativesDataSink(datatype="figures", desc=...)``.
"""
from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)


def _out_name(name: str) -> str:
    """File name of the report, forced to end with ``.svg``."""
    name = Path(name).name
    return name if name.endswith(".svg") else f"{name}.svg"


class _ReportOutputSpec(TraitedSpec):
    out_report = File(exists=True, desc="reportlet (SVG)")


class _ReportInputSpec(BaseInterfaceInputSpec):
    out_report = traits.Str("report.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")
    n_cuts = traits.Range(low=1, high=8, value=3, usedefault=True,
                          desc="slices per orientation (sagittal, coronal, axial)")


class _MaskReportletInputSpec(_ReportInputSpec):
    anat_file = File(exists=True, mandatory=True, desc="anatomical image")
    mask_file = File(exists=True, mandatory=True, desc="brain mask on the same grid")
    bias_field_file = File(exists=True, desc="N4 bias field on the same grid (second row)")
    out_report = traits.Str("brainmask.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class MaskReportlet(SimpleInterface):
    """Brain-mask contour on the anatomical image (and the N4 bias field, if given)."""

    input_spec = _MaskReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.reportlets import plot_mask

        bias = self.inputs.bias_field_file if isdefined(self.inputs.bias_field_file) else None
        self._results["out_report"] = plot_mask(
            self.inputs.anat_file, self.inputs.mask_file,
            Path(runtime.cwd) / _out_name(self.inputs.out_report),
            bias_field_file=bias, n_cuts=self.inputs.n_cuts,
        )
        return runtime


class _RegistrationReportletInputSpec(_ReportInputSpec):
    fixed_file = File(exists=True, mandatory=True, desc="T2w (fixed image)")
    moving_before_file = File(exists=True, mandatory=True,
                              desc="T1w resampled on the fixed grid with the identity")
    moving_after_file = File(exists=True, mandatory=True,
                             desc="T1w resampled on the fixed grid with the rigid transform")
    out_report = traits.Str("t1w2t2w.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class RegistrationReportlet(SimpleInterface):
    """T1w contours on the T2w before and after rigid registration."""

    input_spec = _RegistrationReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.reportlets import plot_registration

        self._results["out_report"] = plot_registration(
            self.inputs.fixed_file, self.inputs.moving_before_file,
            self.inputs.moving_after_file, Path(runtime.cwd) / _out_name(self.inputs.out_report),
            n_cuts=self.inputs.n_cuts,
        )
        return runtime


class _NormalizationReportletInputSpec(_ReportInputSpec):
    image_file = File(exists=True, mandatory=True,
                      desc="subject image on the model reference grid (64^3, 3 mm)")
    reference_mask_file = File(exists=True, mandatory=True,
                               desc="reference brain mask on the same grid")
    out_report = traits.Str("normalization.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class NormalizationReportlet(SimpleInterface):
    """Subject image in the model's reference space with the reference-mask contour."""

    input_spec = _NormalizationReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.reportlets import plot_normalization

        self._results["out_report"] = plot_normalization(
            self.inputs.image_file, self.inputs.reference_mask_file,
            Path(runtime.cwd) / _out_name(self.inputs.out_report), n_cuts=self.inputs.n_cuts,
        )
        return runtime


class _RatioReportletInputSpec(_ReportInputSpec):
    ratio_file = File(exists=True, mandatory=True, desc="T1w/T2w ratio map")
    mask_file = File(exists=True, mandatory=True, desc="brain mask on the same grid")
    out_report = traits.Str("ratio.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class RatioReportlet(SimpleInterface):
    """T1w/T2w ratio map inside the brain mask, with a colorbar."""

    input_spec = _RatioReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.reportlets import plot_ratio

        self._results["out_report"] = plot_ratio(
            self.inputs.ratio_file, self.inputs.mask_file,
            Path(runtime.cwd) / _out_name(self.inputs.out_report), n_cuts=self.inputs.n_cuts,
        )
        return runtime


class _SaliencyReportletInputSpec(_ReportInputSpec):
    anat_file = File(exists=True, mandatory=True, desc="anatomical image")
    saliency_file = File(exists=True, mandatory=True,
                         desc="saliency map (0..1) on the same grid")
    threshold = traits.Range(low=0.0, high=1.0, value=0.2, usedefault=True,
                             desc="saliency below this value is not drawn")
    method = traits.Str("Grad-CAM", usedefault=True, desc="how the map was made (colour bar)")
    out_report = traits.Str("saliency.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class SaliencyReportlet(SimpleInterface):
    """Saliency (Grad-CAM, or gradient saliency for the Wada et al. 2019 ensemble) as a hot
    overlay on the anatomical image."""

    input_spec = _SaliencyReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.reportlets import plot_saliency

        self._results["out_report"] = plot_saliency(
            self.inputs.anat_file, self.inputs.saliency_file,
            Path(runtime.cwd) / _out_name(self.inputs.out_report),
            threshold=self.inputs.threshold, n_cuts=self.inputs.n_cuts, method=self.inputs.method,
        )
        return runtime


class _AgeChartReportletInputSpec(BaseInterfaceInputSpec):
    brainage_tsv = File(exists=True, mandatory=True,
                        desc="one-row brain-age TSV (predicted_age_months, ...)")
    bundle_json = File(exists=True, desc="model bundle.json (its volume_norms_ml are drawn)")
    out_report = traits.Str("agechart.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class AgeChartReportlet(SimpleInterface):
    """Predicted versus chronological age, and brain volume against the BCP norms."""

    input_spec = _AgeChartReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.agechart import plot_age_chart
        from ..reports.tables import as_float, read_brainage_tsv

        row = read_brainage_tsv(self.inputs.brainage_tsv)
        norms = None
        if isdefined(self.inputs.bundle_json):
            norms = json.loads(Path(self.inputs.bundle_json).read_text()).get("volume_norms_ml")
        self._results["out_report"] = plot_age_chart(
            as_float(row.get("predicted_age_months")),
            as_float(row.get("predicted_age_sd_months")),
            as_float(row.get("predicted_age_lower_months")),
            as_float(row.get("predicted_age_upper_months")),
            as_float(row.get("chronological_age_months")),
            Path(runtime.cwd) / _out_name(self.inputs.out_report),
            volume_ml=as_float(row.get("brain_volume_ml")),
            volume_norms=norms,
        )
        return runtime


class _RegionalReportletInputSpec(BaseInterfaceInputSpec):
    anat_file = File(exists=True, mandatory=True, desc="anatomical image in the reference space")
    map_file = File(exists=True, mandatory=True, desc="regional lag map (months), same grid")
    regions_file = File(exists=True, mandatory=True, desc="region map, same grid")
    table_file = File(exists=True, mandatory=True, desc="desc-regional_brainage.tsv")
    metadata = traits.Dict(desc="sidecar of the table (MyelinationOrdering, WholeBrainAgeMonths)")
    out_report = traits.Str("regional.svg", usedefault=True,
                            desc="file name of the SVG, written in the node's directory")


class RegionalReportlet(SimpleInterface):
    """White-matter regions coloured by their lag behind the whole-brain estimate, with the
    myelination-order checks (:func:`bids_infantage.reports.regional.plot_regional_maturity`)."""

    input_spec = _RegionalReportletInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from ..reports.regional import plot_regional_maturity

        meta = self.inputs.metadata if isdefined(self.inputs.metadata) else {}
        self._results["out_report"] = plot_regional_maturity(
            self.inputs.anat_file, self.inputs.map_file, self.inputs.regions_file,
            self.inputs.table_file, Path(runtime.cwd) / _out_name(self.inputs.out_report),
            ordering=meta.get("MyelinationOrdering"), whole_brain_age=meta.get("WholeBrainAgeMonths"),
        )
        return runtime
