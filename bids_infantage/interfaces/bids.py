"""BIDS-Derivatives writer: niworkflows' DerivativesDataSink with our file patterns."""
from __future__ import annotations

from niworkflows.interfaces.bids import BIDS_DERIV_PATTERNS
from niworkflows.interfaces.bids import DerivativesDataSink as _DDS

_OURS = (
    "sub-{subject}[/ses-{session}]/{datatype<anat>|anat}/sub-{subject}[_ses-{session}]"
    "[_space-{space}][_desc-{desc}]_{suffix<brainage|T1wT2w|saliency>}"
    "{extension<.tsv|.json|.nii.gz|.nii>|.nii.gz}",
)


class DerivativesDataSink(_DDS):
    """Write one output into the derivatives folder (no ``out_path_base`` subfolder).

    Adds patterns for our files: ``*_brainage.tsv`` (age table), ``*_desc-ratio_T1wT2w``
    (T1w/T2w ratio map) and ``*_desc-gradcam_saliency`` (saliency map).
    """

    out_path_base = ""
    _file_patterns = tuple(BIDS_DERIV_PATTERNS) + _OURS
