"""Every output file leaves through a ``DerivativesDataSink`` named ``ds_*`` (sMRIPrep style)."""
from __future__ import annotations

from pathlib import Path

#: ``SpatialReference`` of the ``space-infantageRef`` outputs.
REF_DESCRIPTION = "bids-infantage model reference (64^3 voxels, 3 mm)"


def init_ds_outputs_wf(*, output_dir: str | Path, has_t1w: bool, has_t2w: bool,
                       model_desc: str = "", name: str = "ds_outputs_wf"):
    """Sink the derivatives of one session.

    Parameters
    ----------
    output_dir : path
        Root of the derivatives dataset.
    has_t1w, has_t2w : bool
        Which modalities the session has; the anatomical space is the T2w's when present.
    model_desc : str
        Model name and sha256, written in sidecars.

    Inputs
    ------
    source_t1w, source_t2w
        BIDS source files (names give the entities).
    t1w_preproc, t2w_preproc, anat_mask, ratio, saliency_anat, anat_ref, t1w_ref, ratio_ref,
    t1w_t2w_xfm, anat2ref_xfm, table, table_meta, regional_table, regional_meta, maturity_map,
    maturity_meta
        Files from the preprocessing and inference workflows.
    reportlets
        List of (desc, svg path) pairs for ``figures/``.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from ..interfaces.bids import DerivativesDataSink

    out = str(output_dir)
    anat = "T2w" if has_t2w else "T1w"
    src = "source_t2w" if has_t2w else "source_t1w"
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=[
        "source_t1w", "source_t2w", "t1w_preproc", "t2w_preproc", "anat_mask", "ratio",
        "saliency_anat", "anat_ref", "t1w_ref", "ratio_ref", "t1w_t2w_xfm", "anat2ref_xfm", "table",
        "table_meta", "regional_table", "regional_meta", "maturity_map", "maturity_meta"]),
        name="inputnode")

    def ds(name, **kw):
        # images go to the workers: niworkflows' sink rewrites (re-gzips) a NIfTI whose header
        # it normalizes, about 1 s for a 0.8 mm image, which would stall the MultiProc
        # scheduler if run in the main process; small text files stay there
        # overwrite: a sink runs in every run, also when Nipype has it cached, so that each
        # output's modification time says this run wrote it (remove_stale_outputs)
        image = kw.get("compress", False)
        return pe.Node(DerivativesDataSink(base_directory=out, datatype="anat", **kw),
                       name=name, run_without_submitting=not image, overwrite=True)

    preproc_anat = ds(f"ds_{anat.lower()}_preproc", desc="preproc", suffix=anat, compress=True,
                      SkullStripped=True)
    mask = ds("ds_brain_mask", desc="brain", suffix="mask", compress=True, Type="Brain")
    saliency = ds("ds_saliency", desc="gradcam", suffix="saliency", compress=True,
                  Description="Grad-CAM saliency of the predicted age (0-1), first ensemble member",
                  Model=model_desc)
    anat_ref = ds("ds_anat_ref", space="infantageRef", desc="preproc", suffix=anat, compress=True,
                  SkullStripped=True, SpatialReference=REF_DESCRIPTION)
    xfm_ref = ds("ds_anat2ref_xfm", mode="image", suffix="xfm", extension=".txt",
                 **{"from": anat, "to": "infantageRef"})
    table = ds("ds_brainage", suffix="brainage", extension=".tsv")
    regional = ds("ds_regional", desc="regional", suffix="brainage", extension=".tsv")
    maturity = ds("ds_maturity", space="infantageRef", desc="maturity", suffix="brainage",
                  compress=True, SpatialReference=REF_DESCRIPTION)
    workflow.connect([
        (inputnode, preproc_anat, [(src, "source_file"), (f"{anat.lower()}_preproc", "in_file")]),
        (inputnode, mask, [(src, "source_file"), ("anat_mask", "in_file")]),
        (inputnode, saliency, [(src, "source_file"), ("saliency_anat", "in_file")]),
        (inputnode, anat_ref, [(src, "source_file"), ("anat_ref", "in_file")]),
        (inputnode, xfm_ref, [(src, "source_file"), ("anat2ref_xfm", "in_file")]),
        (inputnode, table, [(src, "source_file"), ("table", "in_file"), ("table_meta", "meta_dict")]),
        (inputnode, regional, [(src, "source_file"), ("regional_table", "in_file"),
                               ("regional_meta", "meta_dict")]),
        (inputnode, maturity, [(src, "source_file"), ("maturity_map", "in_file"),
                               ("maturity_meta", "meta_dict")]),
    ])
    if has_t1w and has_t2w:
        t1w = ds("ds_t1w_preproc", space="T2w", desc="preproc", suffix="T1w", compress=True,
                 SkullStripped=True)
        ratio = ds("ds_ratio", space="T2w", desc="ratio", suffix="T1wT2w", compress=True,
                   Description="T1w/T2w ratio of standardized (p99) bias-corrected images")
        xfm = ds("ds_t1w2t2w_xfm", mode="image", suffix="xfm", extension=".txt",
                 **{"from": "T1w", "to": "T2w"})
        workflow.connect([
            (inputnode, t1w, [("source_t1w", "source_file"), ("t1w_preproc", "in_file")]),
            (inputnode, ratio, [("source_t2w", "source_file"), ("ratio", "in_file")]),
            (inputnode, xfm, [("source_t2w", "source_file"), ("t1w_t2w_xfm", "in_file")]),
        ])
        t1w.inputs.SpatialReference = "T2w space of the same session (desc-preproc_T2w)"
        # the other model-input channels in the model reference space (bids-infantage-cv reads
        # them back to retrain on a labelled cohort)
        t1w_ref = ds("ds_t1w_ref", space="infantageRef", desc="preproc", suffix="T1w", compress=True,
                     SkullStripped=True, SpatialReference=REF_DESCRIPTION)
        ratio_ref = ds("ds_ratio_ref", space="infantageRef", desc="ratio", suffix="T1wT2w",
                       compress=True, SpatialReference=REF_DESCRIPTION,
                       Description="T1w/T2w ratio of the standardized images (model input channel)")
        workflow.connect([
            (inputnode, t1w_ref, [("source_t1w", "source_file"), ("t1w_ref", "in_file")]),
            (inputnode, ratio_ref, [("source_t2w", "source_file"), ("ratio_ref", "in_file")]),
        ])
    return workflow


def init_ds_reportlets_wf(*, output_dir: str | Path, descs, anat: str, name: str = "ds_reportlets_wf"):
    """Sink reportlet SVGs into ``sub-X/figures/`` (``sub-X[_ses-Y]_desc-<desc>_<anat>.svg``).

    Inputs are named after ``descs``; ``source_file`` gives the entities.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from ..interfaces.bids import DerivativesDataSink

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["source_file", *descs]), name="inputnode")
    for desc in descs:
        node = pe.Node(DerivativesDataSink(base_directory=str(output_dir), datatype="figures",
                                           desc=desc, suffix=anat, extension=".svg"),
                       name=f"ds_report_{desc}", run_without_submitting=True, overwrite=True)
        workflow.connect([(inputnode, node, [("source_file", "source_file"), (desc, "in_file")])])
    return workflow
