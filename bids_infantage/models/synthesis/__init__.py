"""Template-blend synthesis: a synthetic infant cohort with continuous ages (0-24 months) from
real templates and real masks.

Recipe (see docs/model_card.md):

1. The five BMEXInfant templates (0, 6, 9, 12, 24 months; T1w + T2w) are affinely normalized
   to the reference brain mask and resampled to a 2 mm "synthesis" grid
   (:mod:`~bids_infantage.models.synthesis.templates`).
2. Neighbouring templates are registered nonlinearly (SimpleITK fast symmetric-forces demons
   on histogram-matched T2w); the displacement fields are cached
   (:mod:`~bids_infantage.models.synthesis.atlas`).
3. An image at age ``a`` between anchors ``a0 < a1`` (``t = (a - a0) / (a1 - a0)``) blends
   intensity, ``(1 - t) A + t (B o phi)``, and shape, warping by ``-t d`` (first-order inverse
   of the scaled displacement ``d``) (:mod:`~bids_infantage.models.synthesis.generator`).
4. Brain size comes from the 206 real BCP masks: a volume is drawn from the real volumes of
   the neighbouring age groups, rescaled to the interpolated group mean at ``a``
   (:mod:`~bids_infantage.models.synthesis.volumes`).
5. Each sample gets a random pose, anisotropic scaling, elastic deformation, gamma, bias field,
   blur, Rician noise, ghosting, acquisition (3D isotropic, or 2D with 4-6 mm slices along a
   random axis), a T1w-to-T2w misalignment and mask jitter
   (:mod:`~bids_infantage.models.synthesis.generator`).
6. White-matter labels: 3-class k-means of each template's T2w in the brain mask; CSF is the
   brightest class; white matter is the more central of the other two (cortex is peripheral)
   (:func:`~bids_infantage.models.synthesis.templates._wm_probability`).

The samples then pass through :func:`bids_infantage.models.preprocess.preprocess_session`,
the code path real inputs take. The ventricles of real infants, painted as CSF in training, are
in :mod:`~bids_infantage.models.synthesis.asegs`.
"""
