"""The nipype workflow of the ``group`` analysis level.

:func:`init_group_wf` wraps :func:`bids_infantage.group.analysis.run_group` (which gathers
the participant-level ``*_brainage.tsv``, measures accuracy, corrects the age bias of the
gap, flags outliers, draws the figures and writes ``group.html``; its outputs are listed in
:mod:`bids_infantage.group.analysis`) in one node, for consistency with the participant level.
"""
from __future__ import annotations

from pathlib import Path


def _run_group_node(output_dir, bias_correction_file, n_boot):
    """nipype Function wrapper of :func:`~bids_infantage.group.analysis.run_group` (imports
    inside: run in a fresh process)."""
    from bids_infantage.group.analysis import run_group

    result = run_group(
        output_dir,
        bias_correction_file=bias_correction_file or None,
        n_boot=n_boot,
    )

    def _str(path):
        return str(path) if path is not None else ""

    return (
        _str(result["group_tsv"]),
        _str(result["metrics_tsv"]),
        _str(result["bias_correction"]),
        _str(result["report"]),
    )


def init_group_wf(*, output_dir, bias_correction_file=None, n_boot=2000, name="group_wf"):
    """Build the group-level workflow.

    Workflow Graph
        .. workflow::
            :graph2use: orig
            :simple_form: yes

            from bids_infantage.workflows.group import init_group_wf
            wf = init_group_wf(output_dir=".")

    Parameters
    ----------
    output_dir : str or os.PathLike
        Output folder of the participant level (group files are written there).
    bias_correction_file : str or os.PathLike, optional
        Saved ``group_bias-correction.json`` to apply instead of fitting one.
    n_boot : int
        Bootstrap resamples for the metric CIs.
    name : str
        Workflow name.

    Outputs
    -------
    group_tsv
        ``group_brainage.tsv``.
    metrics_tsv
        ``group_metrics.tsv``, or ``''`` without chronological ages.
    bias_correction
        ``group_bias-correction.json``, or ``''`` when no correction was available.
    report
        ``group.html``.
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Brain-age gaps were corrected for age bias with a linear model fitted by ordinary "
        "least squares (Smith et al., 2019; de Lange & Cole, 2020), and accuracy was "
        "summarised with bootstrap 95% confidence intervals."
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["group_tsv", "metrics_tsv", "bias_correction", "report"]),
        name="outputnode",
    )
    # The result depends on the participant TSVs, which the node hash cannot see: always rerun.
    run_group_node = pe.Node(
        niu.Function(
            function=_run_group_node,
            input_names=["output_dir", "bias_correction_file", "n_boot"],
            output_names=["group_tsv", "metrics_tsv", "bias_correction", "report"],
        ),
        name="run_group",
        overwrite=True,
    )
    run_group_node.inputs.output_dir = str(Path(output_dir).absolute())
    run_group_node.inputs.bias_correction_file = (
        str(Path(bias_correction_file).absolute()) if bias_correction_file else ""
    )
    run_group_node.inputs.n_boot = n_boot

    workflow.connect([
        (run_group_node, outputnode, [
            ("group_tsv", "group_tsv"),
            ("metrics_tsv", "metrics_tsv"),
            ("bias_correction", "bias_correction"),
            ("report", "report"),
        ]),
    ])  # fmt:skip
    return workflow
