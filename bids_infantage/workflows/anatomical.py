"""Anatomical preprocessing: validation, brain mask, N4, rigid T1w->T2w, T1w/T2w ratio."""
from __future__ import annotations


def init_anat_preproc_wf(*, has_t1w: bool, has_t2w: bool, skull_strip: str = "auto",
                         skull_stripped: dict | None = None, omp_nthreads: int = 1,
                         name: str = "anat_preproc_wf"):
    """Preprocess the T1w and/or T2w of one session into the anatomical space.

    The anatomical space is the T2w's when a T2w exists (the T1w is registered to it), else
    the T1w's.

    Parameters
    ----------
    has_t1w, has_t2w : bool
        Which images the session has (at least one).
    skull_strip : {"auto", "skip", "force"}
    skull_stripped : dict, optional
        ``SkullStripped`` metadata per modality (``"t1w"``/``"t2w"`` -> bool or None), read with
        BIDS inheritance by :func:`~bids_infantage.utils.bids.collect_sessions`.
    omp_nthreads : int
        Threads of the brain extraction (MindGrab).

    Inputs
    ------
    t1w, t2w : str
        BIDS files.
    t1w_mask, t2w_mask : str
        Optional precomputed brain masks (``--derivatives``).

    Outputs
    -------
    t1w_preproc, t2w_preproc
        Bias-corrected brains in the anatomical space.
    t1w_before
        T1w on the T2w grid before registration (report).
    anat_validated
        The anatomical reference image before masking (the head, for the mask report).
    anat_preproc, anat_mask, bias_field
        The anatomical reference image, its brain mask and N4 field.
    volume_ml
        Brain volume (ml).
    t1w_t2w_xfm, t1w_t2w_dice, t1w_t2w_edge_correlation
        Rigid transform (ITK), mask Dice and edge correlation (the same-brain check) of the
        registered images (None with one modality).
    ratio
        T1w/T2w ratio map (both modalities only).
    warnings
        Fallbacks applied to the inputs.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from ..interfaces.brainmask import BrainMask
    from ..interfaces.images import ValidateImage
    from ..interfaces.n4 import N4BiasFieldCorrection
    from ..interfaces.normalization import T1wT2wRatioMap
    from ..interfaces.registration import RigidT1wToT2w

    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Images were reoriented to RAS and checked; the brain mask was taken from the "
        "skull-stripped input (background: the most frequent value on the image's faces) or, "
        "for heads, extracted with MindGrab (MeshNet, brainchop; Masoud et al., JOSS 2023); "
        "intensity non-uniformity was corrected with N4 (SimpleITK)"
        + ("; the T1w image was registered to the T2w image with a rigid (6 degrees of freedom) "
           "transform maximizing Mattes mutual information, and the T1w/T2w ratio computed "
           "(Glasser & Van Essen, J Neurosci 2011): a contrast-weighted proxy that tracks "
           "myelination but is not calibrated across scanners and associates more weakly with "
           "histological myelin than quantitative T2 or myelin-water imaging (Mojtabai et al., "
           "medRxiv 2025)."
           if has_t1w and has_t2w else ".")
    )
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w", "t2w", "t1w_mask", "t2w_mask"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=[
        "t1w_preproc", "t2w_preproc", "t1w_before", "anat_preproc", "anat_validated", "anat_mask",
        "bias_field", "volume_ml", "t1w_t2w_xfm", "t1w_t2w_dice", "t1w_t2w_edge_correlation", "ratio",
        "warnings"]),
        name="outputnode")
    # one input per list of messages: Merge would concatenate them into one list of strings,
    # which _flatten must not iterate character by character
    merge_warn = pe.Node(niu.Merge(5), name="merge_warnings", run_without_submitting=True)
    flatten = pe.Node(niu.Function(function=_flatten, output_names=["out"]), name="flatten_warnings",
                      run_without_submitting=True)
    workflow.connect([(merge_warn, flatten, [("out", "in_lists")]),
                      (flatten, outputnode, [("out", "warnings")])])
    n4 = {}
    masks = {}
    vals = {}
    for k, (mod, present) in enumerate((("t1w", has_t1w), ("t2w", has_t2w))):
        if not present:
            continue
        val = pe.Node(ValidateImage(), name=f"validate_{mod}")
        mask = pe.Node(BrainMask(skull_strip=skull_strip, omp_nthreads=omp_nthreads),
                       name=f"brain_mask_{mod}", n_procs=omp_nthreads)
        if (skull_stripped or {}).get(mod) is not None:
            mask.inputs.skull_stripped = skull_stripped[mod]
        n4[mod] = pe.Node(N4BiasFieldCorrection(), name=f"n4_{mod}")
        masks[mod] = mask
        vals[mod] = val
        workflow.connect([
            (inputnode, val, [(mod, "in_file")]),
            (inputnode, mask, [(mod, "source_file"), (f"{mod}_mask", "mask_file")]),
            (val, mask, [("out_file", "in_file")]),
            (mask, n4[mod], [("out_file", "in_file"), ("out_mask", "mask_file")]),
            (val, merge_warn, [("warnings", f"in{2 * k + 1}")]),
            (mask, merge_warn, [("warnings", f"in{2 * k + 2}")]),
        ])
    anat = "t2w" if has_t2w else "t1w"
    workflow.connect([
        (n4[anat], outputnode, [("out_file", "anat_preproc"), ("bias_field", "bias_field"),
                                ("out_file", f"{anat}_preproc")]),
        (masks[anat], outputnode, [("out_mask", "anat_mask"), ("volume_ml", "volume_ml")]),
        (vals[anat], outputnode, [("out_file", "anat_validated")]),
    ])
    if has_t1w and has_t2w:
        rigid = pe.Node(RigidT1wToT2w(), name="rigid_t1w_to_t2w")
        ratio = pe.Node(T1wT2wRatioMap(), name="t1w_t2w_ratio")
        workflow.connect([
            (n4["t2w"], rigid, [("out_file", "fixed_file")]),
            (n4["t1w"], rigid, [("out_file", "moving_file")]),
            (masks["t2w"], rigid, [("out_mask", "fixed_mask")]),
            (masks["t1w"], rigid, [("out_mask", "moving_mask")]),
            (rigid, outputnode, [("out_file", "t1w_preproc"), ("out_before", "t1w_before"),
                                 ("out_xfm", "t1w_t2w_xfm"), ("mask_dice", "t1w_t2w_dice"),
                                 ("edge_correlation", "t1w_t2w_edge_correlation")]),
            (rigid, merge_warn, [("warnings", "in5")]),
            (rigid, ratio, [("out_file", "t1w_file")]),
            (n4["t2w"], ratio, [("out_file", "t2w_file")]),
            (masks["t2w"], ratio, [("out_mask", "mask_file")]),
            (ratio, outputnode, [("out_file", "ratio")]),
        ])
    else:
        outputnode.inputs.t1w_t2w_dice = None
        outputnode.inputs.t1w_t2w_edge_correlation = None
        merge_warn.inputs.in5 = []
    if not has_t1w:
        merge_warn.inputs.in1 = merge_warn.inputs.in2 = []
    if not has_t2w:
        merge_warn.inputs.in3 = merge_warn.inputs.in4 = []
    return workflow


def _flatten(in_lists):
    """Messages from a list of messages and lists of messages (never a string's characters)."""
    out = []
    for item in in_lists or []:
        if isinstance(item, str):
            out.append(item)
        else:
            out.extend(str(w) for w in (item or []))
    return out
