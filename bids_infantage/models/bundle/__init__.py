"""Model bundles: safetensors weights + ``bundle.json`` + the reference brain mask.

A bundle is a folder. ``--model NAME`` looks in ``bids_infantage/data/models/NAME``;
``--model PATH`` takes a folder with ``bundle.json``. Loading requires ``files_sha256`` to
list every file the bundle loads (weights and reference mask), checks each sha256 and the
tensor shapes, and fails with :class:`~bids_infantage.utils.errors.ModelBundleError` naming
the file on a mismatch. The packaged default is also checked against
:data:`~bids_infantage.models.bundle.resolve.DEFAULT_BUNDLE_SHA256`, pinned there; another
bundle never carries the default's name.

Modules: :mod:`~bids_infantage.models.bundle.resolve` (which folder a ``--model`` names, the
integrity checks, :func:`~bids_infantage.models.bundle.resolve.load_bundle`),
:mod:`~bids_infantage.models.bundle.model_bundle` (the loaded bundle: its networks and the
prediction of one session with its QC flags), :mod:`~bids_infantage.models.bundle.intervals`
(calibrated prediction intervals and the age-range check) and
:mod:`~bids_infantage.models.bundle.saliency` (the saliency map of a prediction).
"""
