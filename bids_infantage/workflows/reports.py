"""Reportlets (SVG) of one session; they are sunk by ``outputs.init_ds_reportlets_wf``."""
from __future__ import annotations

import json
from pathlib import Path


def init_reportlets_wf(*, has_t1w: bool, has_t2w: bool, model: str, name: str = "reportlets_wf"):
    """Make the SVG reportlets of a session.

    Parameters
    ----------
    has_t1w, has_t2w : bool
    model : str
        Model bundle folder (reference mask, BCP volume norms).

    Inputs
    ------
    anat_preproc, anat_validated (the image before masking: the mask contour is drawn on the
    head), anat_mask, bias_field, t1w_before, t1w_preproc, ratio, anat_ref, saliency_anat, table,
    regional_table, regional_meta, maturity_map

    Outputs
    -------
    One SVG per ``workflow.descs`` entry: brainmask, t1w2t2w (both modalities), normalization,
    ratio (both modalities), saliency, regional, agechart.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from ..interfaces.reports import (
        AgeChartReportlet,
        MaskReportlet,
        NormalizationReportlet,
        RatioReportlet,
        RegionalReportlet,
        RegistrationReportlet,
        SaliencyReportlet,
    )
    from ..maturity.regional import ATLAS_FILE, DATA_DIR

    both = has_t1w and has_t2w
    descs = ["brainmask"] + (["t1w2t2w"] if both else []) + ["normalization"] + (
        ["ratio"] if both else []) + ["saliency", "regional", "agechart"]
    workflow = pe.Workflow(name=name)
    workflow.descs = descs
    inputnode = pe.Node(niu.IdentityInterface(fields=[
        "anat_preproc", "anat_validated", "anat_mask", "bias_field", "t1w_before", "t1w_preproc", "ratio",
        "anat_ref", "saliency_anat", "table", "regional_table", "regional_meta", "maturity_map"]),
        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=descs), name="outputnode")
    folder = Path(model)
    mask_rpt = pe.Node(MaskReportlet(), name="rpt_brainmask")
    norm_rpt = pe.Node(NormalizationReportlet(
        reference_mask_file=str(folder / "reference_mask.nii.gz")), name="rpt_normalization")
    wada = json.loads((folder / "bundle.json").read_text()).get("architecture") == "WadaAgeRangeEnsemble"
    sal_rpt = pe.Node(SaliencyReportlet(method="gradient saliency" if wada else "Grad-CAM"),
                      name="rpt_saliency")
    regional_rpt = pe.Node(RegionalReportlet(regions_file=str(DATA_DIR / ATLAS_FILE)),
                           name="rpt_regional")
    age_rpt = pe.Node(AgeChartReportlet(bundle_json=str(folder / "bundle.json")), name="rpt_agechart")
    workflow.connect([
        (inputnode, mask_rpt, [("anat_validated", "anat_file"), ("anat_mask", "mask_file"),
                               ("bias_field", "bias_field_file")]),
        (inputnode, norm_rpt, [("anat_ref", "image_file")]),
        (inputnode, sal_rpt, [("anat_preproc", "anat_file"), ("saliency_anat", "saliency_file")]),
        (inputnode, age_rpt, [("table", "brainage_tsv")]),
        (inputnode, regional_rpt, [("anat_ref", "anat_file"), ("maturity_map", "map_file"),
                                   ("regional_table", "table_file"), ("regional_meta", "metadata")]),
        (regional_rpt, outputnode, [("out_report", "regional")]),
        (mask_rpt, outputnode, [("out_report", "brainmask")]),
        (norm_rpt, outputnode, [("out_report", "normalization")]),
        (sal_rpt, outputnode, [("out_report", "saliency")]),
        (age_rpt, outputnode, [("out_report", "agechart")]),
    ])
    if both:
        reg_rpt = pe.Node(RegistrationReportlet(), name="rpt_t1w2t2w")
        ratio_rpt = pe.Node(RatioReportlet(), name="rpt_ratio")
        workflow.connect([
            (inputnode, reg_rpt, [("anat_preproc", "fixed_file"), ("t1w_before", "moving_before_file"),
                                  ("t1w_preproc", "moving_after_file")]),
            (inputnode, ratio_rpt, [("ratio", "ratio_file"), ("anat_mask", "mask_file")]),
            (reg_rpt, outputnode, [("out_report", "t1w2t2w")]),
            (ratio_rpt, outputnode, [("out_report", "ratio")]),
        ])
    return workflow
