"""Label-driven synthesis of infant T1w/T2w images (issue #14), after SynthSeg / SynthBA
(Billot et al., Med Image Anal 2023; Puglisi et al., 2024).

The template-blend synthesis (:mod:`bids_infantage.models.synthesis`) draws every sample from
the five BMEXInfant population averages, so a network can learn what those five images look
like (their grid, blur, crop, anatomy) rather than what age looks like. Here the anatomy
comes from the label maps of 12 real single infants (``infant-asegs``, 0-38 months) and only
the *contrast* comes from the templates:

1. **Label maps** (:func:`~bids_infantage.models.label_synthesis.fields.build_label_fields`):
   each aseg's brain (labels > 0) is normalized to the model's reference brain mask with the
   pipeline's own affine (:func:`~bids_infantage.image.registration.register_mask_to_reference`)
   and its labels resampled (nearest neighbour) to a 1.5 mm grid (128^3) in reference space.
2. **Contrast fields**: the templates, normalized to the same reference
   (:func:`~bids_infantage.models.synthesis.templates.normalize_templates`), are split into
   white matter, cortex, deep grey matter, CSF and hindbrain by a Gaussian mixture of (T1w, T2w)
   guided by an atlas of the label maps
   (:func:`~bids_infantage.models.label_synthesis.fields.template_tissue_posteriors`). For each
   tissue group of :data:`~bids_infantage.models.label_synthesis.generator.GROUPS` a smooth field
   of the template's intensity *within that tissue* (normalized convolution, Knutsson & Westin
   1993; Gaussian of :data:`~bids_infantage.models.label_synthesis.fields.FIELD_SIGMA_MM`) keeps
   the regional pattern of myelination (caudal to rostral, posterior to anterior, central to
   peripheral; Barkovich et al., Radiology 1988) but none of the template's edges.
3. **A sample at age a**
   (:class:`~bids_infantage.models.label_synthesis.generator.LabelInfantGenerator`): one aseg
   anatomy drawn uniformly (independent of ``a``, so that the 12 anatomies carry no age), the
   fields of the two templates around ``a`` blended linearly, each label painted with its
   group's field times a random per-label factor, CSF (ventricles and an optional extra-axial shell) painted T2w-bright
   and T1w-dark relative to the cortex, then partial-volume blur, texture, a random affine and
   elastic deformation (residual registration error), resampling to the 64^3, 3 mm reference
   grid (with the pipeline's anti-aliasing), bias field, gamma, Rician noise, brain-mask jitter,
   and the pipeline's intensity standardization
   (:class:`~bids_infantage.models.transforms.ModelInputd`).

The samples are made in reference space directly: N4, the T1w-to-T2w rigid registration and
the mask normalization are replaced by their residuals (bias field, T1w misalignment, random
affine), which costs about a second per sample instead of about 30 s. A cohort of such samples
is written by :func:`~bids_infantage.models.label_synthesis.cohort.generate_label_cohort`.
"""
