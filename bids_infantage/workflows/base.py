"""Top-level workflow: one sub-workflow per subject/session (the only reader of ``config``)."""
from __future__ import annotations

from pathlib import Path


def init_bids_infantage_wf(config, units: list[dict]):
    """Build the participant-level workflow.

    Parameters
    ----------
    config : bids_infantage.config.Config
    units : list of dict
        From :func:`bids_infantage.utils.bids.collect_sessions`, each with ``age`` (months or
        None) and ``masks`` (dict of precomputed brain masks) added.

    Returns
    -------
    nipype Workflow named ``bids_infantage_wf`` with one ``single_session_<sub>[_<ses>]_wf``
    per unit.
    """
    from nipype.pipeline import engine as pe

    from ..models.bundle.resolve import load_bundle

    bundle = load_bundle(config.model)
    workflow = pe.Workflow(name="bids_infantage_wf")
    workflow.base_dir = str(config.work_dir)
    for unit in units:
        sub_wf = init_single_session_wf(
            unit=unit,
            output_dir=config.output_dir,
            model=str(bundle.folder),
            model_desc=f"{bundle.name} (bundle.json sha256 {bundle.sha256})",
            modality=config.modality,
            skull_strip=config.skull_strip,
            device=config.device,
            omp_nthreads=config.omp_nthreads,
        )
        crash_dir = str(Path(config.output_dir) / f"sub-{unit['subject']}" / "log")
        for node in sub_wf._get_all_nodes():  # a node's own config wins over the workflow's
            node.config = {"execution": {"crashdump_dir": crash_dir, "crashfile_format": "txt"}}
        workflow.add_nodes([sub_wf])
    return workflow


def unit_name(unit: dict) -> str:
    """``<subject>[_<session>]`` (workflow-safe)."""
    return unit["subject"] + (f"_{unit['session']}" if unit.get("session") else "")


def init_single_session_wf(*, unit: dict, output_dir, model: str, model_desc: str, modality: str,
                           skull_strip: str, device: str, omp_nthreads: int, name: str | None = None):
    """Preprocessing, inference, outputs and reportlets of one subject/session.

    Parameters
    ----------
    unit : dict
        ``subject``, ``session``, ``t1w``, ``t2w``, ``age``, ``warnings``, ``masks``.
    output_dir : path
    model : str
        Model bundle folder.
    model_desc : str
        Name and sha256 for sidecars.
    modality, skull_strip, device, omp_nthreads
        See ``bids-infantage --help``.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from .anatomical import init_anat_preproc_wf
    from .inference import init_inference_wf
    from .outputs import init_ds_outputs_wf, init_ds_reportlets_wf
    from .reports import init_reportlets_wf

    has_t1w, has_t2w = unit["t1w"] is not None, unit["t2w"] is not None
    workflow = pe.Workflow(name=name or f"single_session_{unit_name(unit)}_wf")
    inputnode = pe.Node(niu.IdentityInterface(fields=[
        "t1w", "t2w", "t1w_mask", "t2w_mask", "subject", "session", "chronological_age",
        "warnings"]), name="inputnode")
    inputnode.inputs.t1w = unit["t1w"]
    inputnode.inputs.t2w = unit["t2w"]
    masks = unit.get("masks") or {}
    if masks.get("t1w"):
        inputnode.inputs.t1w_mask = masks["t1w"]
    if masks.get("t2w"):
        inputnode.inputs.t2w_mask = masks["t2w"]
    inputnode.inputs.subject = unit["subject"]
    inputnode.inputs.session = unit.get("session")
    inputnode.inputs.chronological_age = unit.get("age")

    anat_wf = init_anat_preproc_wf(has_t1w=has_t1w, has_t2w=has_t2w, skull_strip=skull_strip,
                                   skull_stripped=unit.get("skull_stripped"),
                                   omp_nthreads=omp_nthreads)
    infer_wf = init_inference_wf(model=model, modality=modality, has_t1w=has_t1w, has_t2w=has_t2w,
                                 device=device, omp_nthreads=omp_nthreads)
    ds_wf = init_ds_outputs_wf(output_dir=output_dir, has_t1w=has_t1w, has_t2w=has_t2w,
                               model_desc=model_desc)
    report_wf = init_reportlets_wf(has_t1w=has_t1w, has_t2w=has_t2w, model=model)
    anat = "T2w" if has_t2w else "T1w"
    ds_report_wf = init_ds_reportlets_wf(output_dir=output_dir, descs=report_wf.descs, anat=anat)
    unit_warnings = pe.Node(niu.Function(function=_extend, output_names=["out"]), name="all_warnings",
                            run_without_submitting=True)
    unit_warnings.inputs.extra = list(unit.get("warnings") or [])

    workflow.connect([
        (inputnode, anat_wf, [("t1w", "inputnode.t1w"), ("t2w", "inputnode.t2w"),
                              ("t1w_mask", "inputnode.t1w_mask"), ("t2w_mask", "inputnode.t2w_mask")]),
        (anat_wf, unit_warnings, [("outputnode.warnings", "in_list")]),
        (anat_wf, infer_wf, [
            ("outputnode.t1w_preproc", "inputnode.t1w_preproc"),
            ("outputnode.t2w_preproc", "inputnode.t2w_preproc"),
            ("outputnode.anat_preproc", "inputnode.anat_preproc"),
            ("outputnode.anat_mask", "inputnode.anat_mask"),
            ("outputnode.volume_ml", "inputnode.volume_ml"),
            ("outputnode.t1w_t2w_dice", "inputnode.t1w_t2w_dice"),
            ("outputnode.t1w_t2w_edge_correlation", "inputnode.t1w_t2w_edge_correlation")]),
        (unit_warnings, infer_wf, [("out", "inputnode.warnings")]),
        (inputnode, infer_wf, [("subject", "inputnode.subject"), ("session", "inputnode.session"),
                               ("chronological_age", "inputnode.chronological_age")]),
        (inputnode, ds_wf, [("t1w", "inputnode.source_t1w"), ("t2w", "inputnode.source_t2w")]),
        (anat_wf, ds_wf, [
            ("outputnode.t1w_preproc", "inputnode.t1w_preproc"),
            ("outputnode.t2w_preproc", "inputnode.t2w_preproc"),
            ("outputnode.anat_mask", "inputnode.anat_mask"),
            ("outputnode.ratio", "inputnode.ratio"),
            ("outputnode.t1w_t2w_xfm", "inputnode.t1w_t2w_xfm")]),
        (infer_wf, ds_wf, [
            ("outputnode.saliency_anat", "inputnode.saliency_anat"),
            ("outputnode.anat_ref", "inputnode.anat_ref"),
            ("outputnode.t1w_ref", "inputnode.t1w_ref"),
            ("outputnode.ratio_ref", "inputnode.ratio_ref"),
            ("outputnode.anat2ref_xfm", "inputnode.anat2ref_xfm"),
            ("outputnode.table", "inputnode.table"),
            ("outputnode.table_meta", "inputnode.table_meta"),
            ("outputnode.regional_table", "inputnode.regional_table"),
            ("outputnode.regional_meta", "inputnode.regional_meta"),
            ("outputnode.maturity_map", "inputnode.maturity_map"),
            ("outputnode.maturity_meta", "inputnode.maturity_meta")]),
        (anat_wf, report_wf, [
            ("outputnode.anat_preproc", "inputnode.anat_preproc"),
            ("outputnode.anat_validated", "inputnode.anat_validated"),
            ("outputnode.anat_mask", "inputnode.anat_mask"),
            ("outputnode.bias_field", "inputnode.bias_field"),
            ("outputnode.t1w_before", "inputnode.t1w_before"),
            ("outputnode.t1w_preproc", "inputnode.t1w_preproc"),
            ("outputnode.ratio", "inputnode.ratio")]),
        (infer_wf, report_wf, [
            ("outputnode.anat_ref", "inputnode.anat_ref"),
            ("outputnode.saliency_anat", "inputnode.saliency_anat"),
            ("outputnode.table", "inputnode.table"),
            ("outputnode.regional_table", "inputnode.regional_table"),
            ("outputnode.regional_meta", "inputnode.regional_meta"),
            ("outputnode.maturity_map", "inputnode.maturity_map")]),
        (inputnode, ds_report_wf, [("t2w" if has_t2w else "t1w", "inputnode.source_file")]),
    ])
    for desc in report_wf.descs:
        workflow.connect(report_wf, f"outputnode.{desc}", ds_report_wf, f"inputnode.{desc}")
    return workflow


def _extend(in_list, extra):
    return list(extra) + list(in_list or [])
