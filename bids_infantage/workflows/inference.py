"""Normalization to the model reference, brain-age inference and the age table."""
from __future__ import annotations


def init_inference_wf(*, model: str, modality: str, has_t1w: bool, has_t2w: bool,
                      device: str = "auto", omp_nthreads: int = 1, name: str = "inference_wf"):
    """Brain age of one session from its preprocessed images.

    Parameters
    ----------
    model : str
        Model bundle name or folder.
    modality : str
        Input configuration (``auto`` or one of t1w, t2w, t1w+t2w, ratio, t1w+t2w+ratio).
    has_t1w, has_t2w : bool
    device : {"auto", "cpu", "cuda"}
    omp_nthreads : int

    Inputs
    ------
    t1w_preproc, t2w_preproc, anat_preproc, anat_mask, volume_ml, t1w_t2w_dice,
    t1w_t2w_edge_correlation
        From :func:`~bids_infantage.workflows.anatomical.init_anat_preproc_wf`.
    subject, session, chronological_age, warnings

    Outputs
    -------
    table, table_meta
        One-row TSV and its column descriptions.
    saliency_anat, saliency_ref
        Grad-CAM saliency in anatomical and reference space.
    regional_table, regional_meta, maturity_map, maturity_meta
        Regional myelination maturity (:class:`~bids_infantage.interfaces.regional.RegionalMaturity`).
    anat_ref, t1w_ref, ratio_ref, anat2ref_xfm, normalization_dice, prediction, configuration
        ``anat_ref``, ``t1w_ref`` and ``ratio_ref`` are the model's input channels (standardized,
        64^3 at 3 mm); ``t1w_ref`` and ``ratio_ref`` exist with both T1w and T2w.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from ..interfaces.inference import BrainAgeInference, BrainAgeTable
    from ..interfaces.normalization import NormalizeToReference, ReferenceToAnat
    from ..interfaces.regional import RegionalMaturity
    from ..models.bundle.resolve import load_bundle

    bundle = load_bundle(model)
    meta = bundle.meta
    norm = meta.get("normalization", {})
    rank = str(norm.get("intensity", "")).startswith("rank")
    if meta.get("architecture") == "WadaAgeRangeEnsemble":
        network = ("brain age was predicted after Wada et al. (MRMS 2023; ISMRM 2019): five axial "
                   "levels of the reference space (pons and middle cerebellar peduncles, midbrain, "
                   "internal capsule with the splenium, centrum semiovale, subcortical white matter), "
                   "a 2D CNN per level and contrast, and an ensemble of a 0-16 and an 8-24 month "
                   "model blended across 8-16 months")
        saliency = "a gradient saliency map (non-zero on the five levels only)"
    else:
        network = ("brain age was predicted by an ensemble of multi-task 3D CNNs (after Park, "
                   "Choi & Gho, JMRI 2026)")
        saliency = "a Grad-CAM saliency map"
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "The brain mask was normalized to the model's reference brain mask with an affine "
        "transform (mean squares of smoothed masks, SimpleITK), images were resampled to the "
        "3 mm reference grid and standardized"
        + (" (99th percentile in the brain mask, then histogram standardization: each voxel's "
           "rank among the voxels of the eroded brain mask, after Nyul & Udupa, MRM 1999)"
           if rank else " (99th percentile in the brain mask)")
        + f", and {network}, given "
        + ("the images only (brain size is not a model input)"
           if norm.get("volume_feature") == "none" else "the images and the brain volume")
        + f", with a calibrated prediction interval and {saliency}. "
        "Regional myelination maturity was estimated in eleven white-matter regions (from a "
        "12-month infant's aseg and geometric rules): each region's median intensity relative "
        "to the cortex was matched to the BMEXInfant templates' at 0-24 months; these regional "
        "ages are relative, uncalibrated across scanners and template families, and the "
        "T1w/T2w ratio is a contrast-weighted proxy of myelin, not a quantitative measure."
    )
    inputnode = pe.Node(niu.IdentityInterface(fields=[
        "t1w_preproc", "t2w_preproc", "anat_preproc", "anat_mask", "volume_ml", "t1w_t2w_dice",
        "t1w_t2w_edge_correlation", "subject", "session", "chronological_age", "warnings"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=[
        "table", "table_meta", "saliency_anat", "saliency_ref", "anat_ref", "t1w_ref", "ratio_ref",
        "anat2ref_xfm", "normalization_dice", "prediction", "configuration", "regional_table",
        "regional_meta", "maturity_map", "maturity_meta"]), name="outputnode")
    normalize = pe.Node(NormalizeToReference(model=model), name="normalize_to_reference")
    infer = pe.Node(BrainAgeInference(model=model, modality=modality, has_t1w=has_t1w,
                                      has_t2w=has_t2w, device=device, omp_nthreads=omp_nthreads),
                    name="brain_age", n_procs=omp_nthreads)
    sal2anat = pe.Node(ReferenceToAnat(), name="saliency_to_anat")
    table = pe.Node(BrainAgeTable(), name="brain_age_table", run_without_submitting=True)
    regional = pe.Node(RegionalMaturity(reference_mask=str(bundle.reference_mask_path),
                                        has_t1w=has_t1w, has_t2w=has_t2w), name="regional_maturity")
    if has_t1w:
        workflow.connect(inputnode, "t1w_preproc", normalize, "t1w_file")
    if has_t2w:
        workflow.connect(inputnode, "t2w_preproc", normalize, "t2w_file")
    workflow.connect([
        (inputnode, normalize, [("anat_mask", "mask_file")]),
        (normalize, infer, [("model_input", "model_input")]),
        (inputnode, infer, [("volume_ml", "volume_ml"),
                            ("t1w_t2w_edge_correlation", "t1w_t2w_edge_correlation")]),
        (infer, sal2anat, [("saliency", "in_file")]),
        (inputnode, sal2anat, [("anat_preproc", "anat_file")]),
        (normalize, sal2anat, [("out_xfm", "xfm_file")]),
        (infer, table, [("prediction", "prediction")]),
        (normalize, table, [("mask_dice", "normalization_dice")]),
        (inputnode, table, [("subject", "subject"), ("session", "session"),
                            ("chronological_age", "chronological_age"),
                            ("t1w_t2w_dice", "t1w_t2w_dice"), ("warnings", "warnings")]),
        (table, outputnode, [("out_file", "table"), ("metadata", "table_meta")]),
        (normalize, regional, [("model_input", "model_input")]),
        (infer, regional, [("prediction", "prediction")]),
        (inputnode, regional, [("subject", "subject"), ("session", "session")]),
        (regional, outputnode, [("out_table", "regional_table"), ("metadata", "regional_meta"),
                                ("out_map", "maturity_map"), ("map_metadata", "maturity_meta")]),
        (sal2anat, outputnode, [("out_file", "saliency_anat")]),
        (infer, outputnode, [("saliency", "saliency_ref"), ("prediction", "prediction"),
                             ("configuration", "configuration")]),
        (normalize, outputnode, [("ref_file", "anat_ref"), ("ratio_ref_file", "ratio_ref"),
                                 ("t1w_ref_file", "t1w_ref"),
                                 ("out_xfm", "anat2ref_xfm"), ("mask_dice", "normalization_dice")]),
    ])
    return workflow
