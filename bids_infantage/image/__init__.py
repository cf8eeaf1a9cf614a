"""Image operations: plain functions on numpy arrays, nibabel and SimpleITK images.

The lowest layer of bids-infantage. The nipype interfaces (``bids_infantage.interfaces``) are
thin wrappers around these functions (inputs -> function -> outputs), and the model code
(``bids_infantage.models``: synthesis, preprocessing of training samples) calls them directly,
so that a training sample and a participant's session go through the same operations. Nothing
here imports nipype, ``interfaces``, ``workflows`` or ``models``.

Modules
-------
validation
    Reading, checking and RAS reorientation of input images (:func:`~.validation.load_validated`).
masks
    Skull-stripped input detection, brain masks of skull-stripped images, mask QC, brain volume.
n4
    N4 bias-field correction (Tustison et al., IEEE TMI 2010).
registration
    Rigid T1w->T2w registration, affine normalization of a brain mask to the reference, the
    same-brain check.
resampling
    Resampling (anti-aliased), cropping to a mask, mask smoothing.
"""
