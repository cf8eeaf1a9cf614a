"""BIDS-Derivatives writer: niworkflows' DerivativesDataSink with our file patterns, writing
each output atomically."""
from __future__ import annotations

import shutil
from pathlib import Path

from nipype.interfaces.base import isdefined
from niworkflows.interfaces.bids import BIDS_DERIV_PATTERNS
from niworkflows.interfaces.bids import DerivativesDataSink as _DDS

from ..utils.io import atomic_copy

_OURS = (
    "sub-{subject}[/ses-{session}]/{datatype<anat>|anat}/sub-{subject}[_ses-{session}]"
    "[_space-{space}][_desc-{desc}]_{suffix<brainage|T1wT2w|saliency>}"
    "{extension<.tsv|.json|.nii.gz|.nii>|.nii.gz}",
)


class DerivativesDataSink(_DDS):
    """Write one output into the derivatives folder (no ``out_path_base`` subfolder).

    Adds patterns for our files: ``*_brainage.tsv`` (age table), ``*_desc-ratio_T1wT2w``
    (T1w/T2w ratio map) and ``*_desc-gradcam_saliency`` (saliency map).

    Writes are atomic: niworkflows' sink first writes into a staging folder inside the node's
    work folder; each staged file (image, then its JSON sidecar) is then copied to a hidden
    temporary file beside its destination and renamed over it
    (:func:`bids_infantage.utils.io.atomic_copy`). An interrupted run never leaves a
    half-written derivative.
    """

    out_path_base = ""
    _file_patterns = tuple(BIDS_DERIV_PATTERNS) + _OURS

    def _run_interface(self, runtime):
        final = Path(self.inputs.base_directory if isdefined(self.inputs.base_directory)
                     else runtime.cwd).absolute()
        staging = Path(runtime.cwd) / "_staging"
        shutil.rmtree(staging, ignore_errors=True)
        self.inputs.base_directory = str(staging)
        try:
            runtime = super()._run_interface(runtime)
        finally:
            self.inputs.base_directory = str(final)
        root = staging / self.out_path_base

        def publish(staged: str) -> str:
            dest = final / self.out_path_base / Path(staged).relative_to(root)
            atomic_copy(staged, dest)
            return str(dest)

        self._results["out_file"] = [publish(f) for f in self._results["out_file"]]
        if "out_meta" in self._results:
            self._results["out_meta"] = publish(self._results["out_meta"])
        shutil.rmtree(staging, ignore_errors=True)
        return runtime
