"""Label-driven synthesis of infant T1w/T2w images (issue #14), after SynthSeg / SynthBA
(Billot et al., Med Image Anal 2023; Puglisi et al., 2024).

The template-blend synthesis (:mod:`bids_infantage.models.synthesis`) draws every sample from
the five BMEXInfant population averages, so a network can learn what those five images look
like (their grid, blur, crop, anatomy) rather than what age looks like. Here the anatomy
comes from the label maps of 12 real single infants (``infant-asegs``, 0-38 months) and only
the *contrast* comes from the templates:

1. **Label maps** (:func:`build_label_fields`): each aseg's brain (labels > 0) is normalized to
   the model's reference brain mask with the pipeline's own affine
   (:func:`~bids_infantage.image.registration.register_mask_to_reference`) and its labels
   resampled (nearest neighbour) to a 1.5 mm grid (128^3) in reference space.
2. **Contrast fields**: the templates, normalized to the same reference
   (:func:`~bids_infantage.models.synthesis.normalize_templates`), are split into white matter,
   cortex, deep grey matter, CSF and hindbrain by a Gaussian mixture of (T1w, T2w) guided by an
   atlas of the label maps (:func:`template_tissue_posteriors`). For each tissue group of
   :data:`GROUPS` a smooth field of the template's intensity *within that tissue*
   (normalized convolution, Knutsson & Westin 1993; Gaussian of :data:`FIELD_SIGMA_MM`) keeps
   the regional pattern of myelination (caudal to rostral, posterior to anterior, central to
   peripheral; Barkovich et al., Radiology 1988) but none of the template's edges.
3. **A sample at age a** (:class:`LabelInfantGenerator`): one aseg anatomy drawn uniformly
   (independent of ``a``, so that the 12 anatomies carry no age), the fields of the two
   templates around ``a`` blended linearly, each label painted with its group's field times a
   random per-label factor, CSF (ventricles and an optional extra-axial shell) painted T2w-bright
   and T1w-dark relative to the cortex, then partial-volume blur, texture, a random affine and
   elastic deformation (residual registration error), resampling to the 64^3, 3 mm reference
   grid (with the pipeline's anti-aliasing), bias field, gamma, Rician noise, brain-mask jitter,
   and the pipeline's intensity standardization
   (:class:`~bids_infantage.models.transforms.ModelInputd`).

The samples are made in reference space directly: N4, the T1w-to-T2w rigid registration and
the mask normalization are replaced by their residuals (bias field, T1w misalignment, random
affine), which costs about a second per sample instead of about 30 s.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger("bids_infantage.synthesis")

#: Version of :func:`build_label_fields` and :class:`LabelInfantGenerator`, recorded with
#: each cohort (``generator.json``): 2 atlas-guided tissue classes of the templates, contrast
#: gain exp(U(-0.2, 0.6)); 3 contrast gain exp(U(-0.5, 0.9)) (:data:`CONTRAST_GAIN_LOG`)
LABEL_SYNTHESIS_VERSION = 3

#: Label grid: 128^3 voxels of 1.5 mm in reference space (192 mm, as the 3 mm reference grid)
LABEL_SHAPE = (128, 128, 128)
LABEL_SPACING_MM = 1.5

#: FreeSurfer aseg labels (FreeSurferColorLUT) by tissue group. ``wm`` and ``gm`` take the
#: template's white- / grey-matter field; ``deep`` (nuclei, brainstem, cerebellum, whose
#: template intensity is read locally) the template's smoothed tissue field; ``csf`` is painted
#: from the cortex's intensity (the BMEXInfant ventricles do not look like CSF).
GROUPS = {
    "wm": (2, 41, 77, 85),
    "gm": (3, 42, 17, 53, 18, 54),
    "deep": (7, 46, 8, 47, 10, 49, 11, 50, 12, 51, 13, 52, 16, 26, 58, 28, 60, 30, 62, 31,
             63, 172),
    "csf": (4, 43, 5, 44, 14, 15, 24),
}
#: Cerebral white matter, the labels of the multi-task segmentation target
WM_LABELS = (2, 41)
#: Range of the log of the per-channel power applied to tissue contrast about the cortex
#: (:meth:`LabelInfantGenerator.paint`): the size of the T1w / T2w contrast depends on the
#: sequence and field strength, so only its sign and its regional pattern should carry age
CONTRAST_GAIN_LOG = (-0.5, 0.9)
#: Gaussian SD (mm) of the contrast fields of each group
FIELD_SIGMA_MM = {"wm": 4.0, "gm": 4.0, "deep": 2.0}
#: Index of each group in ``fields`` (K, 3 groups, 2 channels, ...)
FIELD_GROUPS = ("wm", "gm", "deep")


def _label_grid(reference_mask):
    """Empty SimpleITK image of :data:`LABEL_SHAPE` x :data:`LABEL_SPACING_MM`, centred and
    oriented as the reference grid."""
    from .synthesis import _grid

    ref = reference_mask
    centre = ref.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in ref.GetSize()])
    return _grid(centre, LABEL_SHAPE, LABEL_SPACING_MM, ref.GetDirection())


#: Aseg labels of the tissue classes of :func:`template_tissue_posteriors` (in this order)
TISSUE_CLASSES = {
    "wm": (2, 41, 77, 85),
    "cortex": (3, 42),
    "deep": (10, 11, 12, 13, 17, 18, 26, 28, 49, 50, 51, 52, 53, 54, 58, 60),
    "csf": (4, 5, 14, 15, 24, 43, 44),
    "hindbrain": (7, 8, 16, 46, 47),
}


def close_label_map(labels: np.ndarray, iterations: int = 3) -> np.ndarray:
    """``labels`` (Z, Y, X) with the voxels that a closing (``iterations`` voxels) and hole
    filling of the brain add, i.e. unlabelled sulci, the interhemispheric fissure and unlabelled
    ventricle parts, labelled CSF (24), as a brain mask includes them."""
    from scipy.ndimage import binary_closing, binary_fill_holes

    brain = labels > 0
    filled = binary_fill_holes(binary_closing(brain, iterations=iterations))
    out = labels.copy()
    out[filled & ~brain] = 24
    return out


def tissue_priors(labels: np.ndarray, label_grid, synth_grid, sigma_mm: float = 2.25) -> np.ndarray:
    """Probabilistic atlas of :data:`TISSUE_CLASSES` from J affinely normalized label maps.

    Parameters
    ----------
    labels : ndarray (J, 128, 128, 128)
        Aseg labels on the label grid.
    label_grid, synth_grid : SimpleITK.Image
        Geometry of ``labels`` and of the output.
    sigma_mm : float
        Gaussian SD of the smoothing of each class frequency (anatomical variability left after
        the affine normalization).

    Returns
    -------
    ndarray (5, 96, 96, 96) float32
        Class probabilities on the synthesis grid; what no label covers counts as CSF
        (the extra-axial space).
    """
    import SimpleITK as sitk
    from scipy.ndimage import gaussian_filter

    out = []
    for labs in TISSUE_CLASSES.values():
        freq = gaussian_filter(np.isin(labels, labs).mean(0).astype(np.float32),
                               sigma_mm / LABEL_SPACING_MM)
        img = sitk.GetImageFromArray(freq)
        img.CopyInformation(label_grid)
        out.append(sitk.GetArrayFromImage(
            sitk.Resample(img, synth_grid, sitk.Transform(), sitk.sitkLinear, 0.0)))
    out = np.stack(out)
    out[list(TISSUE_CLASSES).index("csf")] += np.clip(1 - out.sum(0), 0, 1)
    return out.astype(np.float32)


def template_tissue_posteriors(t1w: np.ndarray, t2w: np.ndarray, mask: np.ndarray,
                               priors: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Atlas-guided Gaussian-mixture segmentation of a template's T1w and T2w.

    Expectation-maximization of one bivariate Gaussian (log T1w, log T2w) per class, with
    the class probabilities of ``priors`` as spatially varying mixing weights (Van Leemput et
    al., IEEE TMI 1999; Ashburner & Friston, NeuroImage 2005). A k-means of one channel cannot
    tell white matter across the first year (T2w-bright at birth, isointense at 6-9 months,
    T2w-dark by 24 months); the priors can.

    Parameters
    ----------
    t1w, t2w, mask : ndarray (Z, Y, X)
        Template on the synthesis grid (``normalize_templates`` channels 0, 1, 2).
    priors : ndarray (C, Z, Y, X)
        :func:`tissue_priors`.

    Returns
    -------
    ndarray (C, Z, Y, X) float32
        Posterior class probabilities, 0 outside ``mask > 0.5``.
    """
    inside = mask > 0.5
    x = np.log(np.stack([t1w[inside], t2w[inside]], 1).astype(np.float64) + 1e-3)
    p = priors[:, inside].T.astype(np.float64) + 1e-3
    p /= p.sum(1, keepdims=True)
    post = p.copy()
    for _ in range(iterations):
        w = post.sum(0) + 1e-9
        mu = post.T @ x / w[:, None]
        ll = np.empty_like(post)
        for c in range(p.shape[1]):
            d = x - mu[c]
            cov = (post[:, c, None] * d).T @ d / w[c] + 1e-4 * np.eye(2)
            ll[:, c] = (-0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
                        - 0.5 * np.log(np.linalg.det(cov)))
        ll += np.log(p)
        ll -= ll.max(1, keepdims=True)
        post = np.exp(ll)
        post /= post.sum(1, keepdims=True)
    out = np.zeros(priors.shape, np.float32)
    out[:, inside] = post.T
    return out


def normalized_convolution(image: np.ndarray, weight: np.ndarray, sigma_vox: float) -> np.ndarray:
    """Smooth ``image`` where ``weight`` > 0 only (Knutsson & Westin, CVPR 1993).

    ``G * (image weight) / G * weight`` with a Gaussian ``G`` of ``sigma_vox`` voxels; where
    the weight's smoothed support is below 5% the result falls back to 3x that sigma, then to
    the weighted median. Returns float32 of the input's shape.
    """
    from scipy.ndimage import gaussian_filter

    w = weight.astype(np.float32)
    med = float(np.median(image[w > 0.5])) if np.any(w > 0.5) else 0.0
    num, den = gaussian_filter(image * w, sigma_vox), gaussian_filter(w, sigma_vox)
    num3, den3 = gaussian_filter(image * w, 3 * sigma_vox), gaussian_filter(w, 3 * sigma_vox)
    out = np.where(den > 0.05, num / np.maximum(den, 1e-6),
                   np.where(den3 > 0.01, num3 / np.maximum(den3, 1e-6), med))
    return out.astype(np.float32)


@dataclass
class LabelFields:
    """What :class:`LabelInfantGenerator` draws from.

    Attributes
    ----------
    labels : ndarray (J, 128, 128, 128) uint8
        Aseg labels of J real infants on the 1.5 mm label grid (reference space).
    label_ages : ndarray (J,)
        Their ages (months; kept for provenance, not used to pair anatomy and age).
    ages : ndarray (K,)
        Template ages (months), increasing.
    fields : ndarray (K, 3, 2, 96, 96, 96) float32
        Contrast fields of :data:`FIELD_GROUPS` x (T1w, T2w) on the 2 mm synthesis grid, each
        template's intensities over its 99th percentile in the brain mask.
    synth_origin, synth_direction, label_origin : tuple
        Grid geometry (the shapes and spacings are the module constants).
    """

    labels: np.ndarray
    label_ages: np.ndarray
    ages: np.ndarray
    fields: np.ndarray
    synth_origin: tuple
    synth_direction: tuple
    label_origin: tuple

    def save(self, path) -> None:
        """Write an ``.npz`` (fields as float16, with :data:`LABEL_SYNTHESIS_VERSION`)."""
        np.savez_compressed(path, labels=self.labels, label_ages=self.label_ages, ages=self.ages,
                            fields=self.fields.astype(np.float16),
                            synth_origin=np.asarray(self.synth_origin),
                            synth_direction=np.asarray(self.synth_direction),
                            label_origin=np.asarray(self.label_origin),
                            version=LABEL_SYNTHESIS_VERSION)

    @classmethod
    def load(cls, path) -> LabelFields:
        """Read what :meth:`save` wrote (fields back to float32)."""
        z = np.load(path)
        return cls(z["labels"], z["label_ages"], z["ages"], z["fields"].astype(np.float32),
                   tuple(z["synth_origin"]), tuple(z["synth_direction"]), tuple(z["label_origin"]))


def build_label_fields(tf_home, aseg_dir, reference_mask, cohorts=(1, 2, 3, 4, 5),
                       max_label_age_months: float | None = None) -> LabelFields:
    """Label maps of the real infants and contrast fields of the templates (steps 1-2 of the
    module docstring).

    Parameters
    ----------
    tf_home : path
        TemplateFlow home with ``tpl-BMEXInfant``.
    aseg_dir : path
        ``infant-asegs`` (``<age>mo_aseg_acpc.nii.gz``).
    reference_mask : SimpleITK.Image
        Model reference mask (64^3, 3 mm).
    cohorts : sequence of int
        BMEXInfant cohorts whose contrast is used (leave-one-template-out drops one).
    max_label_age_months : float, optional
        Leave out asegs older than this.

    Raises
    ------
    FileNotFoundError
        No aseg in ``aseg_dir``.
    """
    import SimpleITK as sitk

    from ..image.registration import register_mask_to_reference
    from ..image.resampling import resample_like
    from .synthesis import TEMPLATE_AGES, aseg_age_months, normalize_templates

    files = sorted(Path(aseg_dir).glob("*mo_aseg_acpc.nii.gz"), key=aseg_age_months)
    if max_label_age_months is not None:
        files = [f for f in files if aseg_age_months(f) <= max_label_age_months]
    if not files:
        raise FileNotFoundError(f"{aseg_dir}: no *mo_aseg_acpc.nii.gz label maps; point "
                                "--shared at a folder holding infant-asegs/")
    grid = _label_grid(reference_mask)
    labels = []
    for f in files:
        aseg = sitk.ReadImage(str(f), sitk.sitkInt16)
        brain = sitk.Cast(aseg > 0, sitk.sitkUInt8)
        xfm, dice = register_mask_to_reference(brain, reference_mask)
        LOGGER.info("%s: mask Dice to reference %.3f", f.name, dice)
        labels.append(sitk.GetArrayFromImage(resample_like(aseg, grid, xfm, interpolator="nearest")))
    images, synth = normalize_templates(tf_home, reference_mask, cohorts)
    labels = np.stack([close_label_map(lab) for lab in labels]).astype(np.uint8)
    priors = tissue_priors(labels, grid, synth)
    fields = np.zeros((len(cohorts), len(FIELD_GROUPS), 2) + images.shape[2:], np.float32)
    sp = float(synth.GetSpacing()[0])
    names = list(TISSUE_CLASSES)
    for k in range(len(cohorts)):
        post = template_tissue_posteriors(images[k, 0], images[k, 1], images[k, 2], priors)
        cls = np.where(images[k, 2] > 0.5, post.argmax(0), -1)
        for name in names:
            LOGGER.info("template age %g: %s %d voxels", TEMPLATE_AGES[cohorts[k]], name,
                        int((cls == names.index(name)).sum()))
        weights = {"wm": cls == names.index("wm"), "gm": cls == names.index("cortex"),
                   "deep": (cls >= 0) & (cls != names.index("csf"))}
        for g, name in enumerate(FIELD_GROUPS):
            for c in range(2):
                fields[k, g, c] = normalized_convolution(images[k, c], weights[name],
                                                         FIELD_SIGMA_MM[name] / sp)
    return LabelFields(labels,
                       np.asarray([aseg_age_months(f) for f in files], np.float32),
                       np.asarray([TEMPLATE_AGES[c] for c in cohorts], np.float32), fields,
                       synth.GetOrigin(), synth.GetDirection(), grid.GetOrigin())


class LabelInfantGenerator:
    """Draw model inputs of synthetic infants at continuous ages from :class:`LabelFields`.

    Parameters
    ----------
    fields : LabelFields
    reference_mask : SimpleITK.Image
        Model reference mask (defines the 64^3, 3 mm output grid).
    seed : int

    Examples
    --------
    ``gen.sample(7.5)`` returns the model input of one infant of 7.5 months on the reference
    grid: ``image`` float32 (3, 64, 64, 64) (T1w, T2w, T1w/T2w ratio after
    :class:`~bids_infantage.models.transforms.ModelInputd`), ``wm`` and ``mask`` uint8
    (64, 64, 64), SimpleITK (z, y, x) order.
    """

    def __init__(self, fields: LabelFields, reference_mask, seed: int = 0) -> None:
        import SimpleITK as sitk

        self.f = fields
        self.ref = reference_mask
        self.rng = np.random.default_rng(seed)
        self._lgrid = sitk.Image(list(LABEL_SHAPE), sitk.sitkFloat32)
        self._lgrid.SetSpacing([LABEL_SPACING_MM] * 3)
        self._lgrid.SetOrigin(fields.label_origin)
        self._lgrid.SetDirection(fields.synth_direction)
        self._sgrid = sitk.Image(list(fields.fields.shape[-3:]), sitk.sitkFloat32)
        from .synthesis import SYNTH_SPACING_MM

        self._sgrid.SetSpacing([SYNTH_SPACING_MM] * 3)
        self._sgrid.SetOrigin(fields.synth_origin)
        self._sgrid.SetDirection(fields.synth_direction)

    # -- contrast at an age --------------------------------------------------------------------
    def contrast_at(self, age: float) -> np.ndarray:
        """Fields (3 groups, 2 channels, 128, 128, 128) at ``age`` months on the label grid:
        linear between the two templates around ``age`` (clamped to the template ages)."""
        import SimpleITK as sitk

        ages = self.f.ages
        a = float(np.clip(age, ages[0], ages[-1]))
        k = int(np.clip(np.searchsorted(ages, a, side="right") - 1, 0, len(ages) - 2))
        t = (a - ages[k]) / (ages[k + 1] - ages[k])
        mix = (1 - t) * self.f.fields[k] + t * self.f.fields[k + 1]
        out = np.empty((len(FIELD_GROUPS), 2) + LABEL_SHAPE, np.float32)
        for g in range(mix.shape[0]):
            for c in range(2):
                img = sitk.GetImageFromArray(mix[g, c])
                img.CopyInformation(self._sgrid)
                out[g, c] = sitk.GetArrayFromImage(
                    sitk.Resample(img, self._lgrid, sitk.Transform(), sitk.sitkLinear, 0.0))
        return out

    # -- painting ------------------------------------------------------------------------------
    def paint(self, labels: np.ndarray, contrast: np.ndarray):
        """T1w, T2w (float32, label grid) and the brain mask of one label map.

        Each label gets its group's field times exp(N(0, 0.04)) (per label and channel) times
        the group's exp(N(0, 0.03)); tissue contrast to the cortex median is raised to a power
        exp(U(:data:`CONTRAST_GAIN_LOG`)) per channel (template averages have less contrast than
        one infant, and sequences differ, by unknown amounts); CSF labels, and with probability 0.6 an extra-axial shell
        of 1-4 voxels (1.5-6 mm) around the brain, get the cortex's median times U(1.3, 2.2)
        on T2w and U(0.2, 0.6) on T1w (CSF is the brightest tissue on T2w, the darkest on T1w).
        """
        from scipy.ndimage import binary_dilation

        rng = self.rng
        img = np.zeros((2,) + labels.shape, np.float32)
        brain = labels > 0
        cortex = np.isin(labels, (3, 42))
        group_of = {lab: name for name, labs in GROUPS.items() for lab in labs}
        gfactor = {name: np.exp(rng.normal(0, 0.03, 2)) for name in GROUPS}
        for lab in np.unique(labels[brain]):
            name = group_of.get(int(lab), "deep")
            sel = labels == lab
            if name == "csf":
                continue
            g = FIELD_GROUPS.index(name)
            fac = gfactor[name] * np.exp(rng.normal(0, 0.04, 2))
            for c in range(2):
                img[c][sel] = contrast[g, c][sel] * fac[c]
        gm_med = [float(np.median(img[c][cortex])) if cortex.any() else 0.5 for c in range(2)]
        tissue = brain & ~np.isin(labels, GROUPS["csf"])
        for c in range(2):  # contrast gain about the cortex: keeps the sign of each contrast
            img[c][tissue] = gm_med[c] * (np.maximum(img[c][tissue], 1e-6) / gm_med[c]) ** np.exp(
                rng.uniform(*CONTRAST_GAIN_LOG))
        csf_val = (gm_med[0] * rng.uniform(0.2, 0.6), gm_med[1] * rng.uniform(1.3, 2.2))
        csf = np.isin(labels, GROUPS["csf"])
        mask = brain.copy()
        if rng.random() < 0.6:
            shell = binary_dilation(brain, iterations=int(rng.integers(1, 5))) & ~brain
            csf |= shell
            mask |= shell
        for c in range(2):
            img[c][csf] = csf_val[c] * np.exp(rng.normal(0, 0.05))
        return img, mask

    # -- geometry ------------------------------------------------------------------------------
    def _deformation(self):
        """Random affine (scale +-8 %, rotation +-6 deg, shift +-4 mm) and elastic (up to 3 mm)
        transform, reference points -> label-grid points."""
        import SimpleITK as sitk
        from scipy.ndimage import zoom

        rng = self.rng
        centre = np.asarray(self._lgrid.TransformContinuousIndexToPhysicalPoint(
            [(s - 1) / 2 for s in LABEL_SHAPE]))
        rot = sitk.Euler3DTransform((0, 0, 0), *np.deg2rad(rng.uniform(-6, 6, 3)).tolist())
        mat = np.asarray(rot.GetMatrix()).reshape(3, 3) @ np.diag(np.exp(rng.uniform(-0.08, 0.08, 3)))
        aff = sitk.AffineTransform(3)
        aff.SetCenter(tuple(centre))
        aff.SetMatrix(mat.ravel().tolist())
        aff.SetTranslation(rng.uniform(-4, 4, 3).tolist())
        coarse_shape = (6, 6, 6)
        amp = rng.uniform(0.0, 3.0)
        disp = np.stack([zoom(rng.normal(0, amp, coarse_shape), [s / 6 for s in LABEL_SHAPE[::-1]],
                              order=1) for _ in range(3)], -1)
        field = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
        field.CopyInformation(self._lgrid)
        return sitk.CompositeTransform([aff, sitk.DisplacementFieldTransform(field)])

    def _to_reference(self, arr: np.ndarray, xfm) -> np.ndarray:
        import SimpleITK as sitk

        from ..image.resampling import resample_like

        img = sitk.GetImageFromArray(arr.astype(np.float32))
        img.CopyInformation(self._lgrid)
        return sitk.GetArrayFromImage(resample_like(img, self.ref, xfm))

    def sample(self, age: float, anatomy: int | None = None) -> dict:
        """One synthetic infant's model input at ``age`` months (steps 3 of the module
        docstring).

        Parameters
        ----------
        age : float
            Months; contrast is clamped to the template ages (0-24).
        anatomy : int, optional
            Index of the label map; drawn uniformly when None.

        Returns
        -------
        dict
            ``image`` float32 (3, 64, 64, 64), ``wm`` uint8, ``mask`` uint8 (64, 64, 64),
            ``age`` (months), ``anatomy`` (index), ``anatomy_age_months``.
        """
        import SimpleITK as sitk
        from scipy.ndimage import binary_dilation, binary_erosion, gaussian_filter, zoom

        from .transforms import ModelInputd

        rng = self.rng
        j = int(rng.integers(len(self.f.labels))) if anatomy is None else int(anatomy)
        labels = self.f.labels[j]
        img, mask = self.paint(labels, self.contrast_at(age))
        for c in range(2):  # texture (sub-voxel structure a label map lacks) and partial volume
            tex = gaussian_filter(rng.normal(0, 1, LABEL_SHAPE).astype(np.float32), rng.uniform(1, 2))
            tex *= rng.uniform(0.0, 0.04) / max(float(tex.std()), 1e-6)
            img[c] = gaussian_filter(img[c] * (1 + tex), rng.uniform(0.3, 1.0)) * mask
        xfm = self._deformation()
        mis = sitk.Euler3DTransform((0, 0, 0), *np.deg2rad(rng.uniform(-2, 2, 3)).tolist())
        mis.SetTranslation(rng.uniform(-1.5, 1.5, 3).tolist())
        t1_xfm = sitk.CompositeTransform([xfm, mis])  # residual T1w-to-T2w misregistration
        t1 = self._to_reference(img[0], t1_xfm)
        t2 = self._to_reference(img[1], xfm)
        m = self._to_reference(mask.astype(np.float32), xfm) > 0.5
        wm = self._to_reference(np.isin(labels, WM_LABELS).astype(np.float32), xfm) > 0.5
        r = rng.random()
        if r < 0.15:
            m = binary_erosion(m)
        elif r < 0.3:
            m = binary_dilation(m)
        out = []
        for x in (t1, t2):
            bias = zoom(rng.normal(0, rng.uniform(0.0, 0.1), (4, 4, 4)), [s / 4 for s in x.shape], order=1)
            x = np.clip(x, 0, None) * np.exp(bias)
            x = x ** np.exp(rng.normal(0, 0.1))
            sigma = rng.uniform(0.0, 0.04) * float(np.percentile(x[m], 99) if m.any() else 1.0)
            x = np.sqrt((x + rng.normal(0, sigma, x.shape)) ** 2 + rng.normal(0, sigma, x.shape) ** 2)
            out.append((x * m * rng.uniform(200, 3000)).astype(np.float32))
        model_in = ModelInputd()({"T1w": out[0], "T2w": out[1], "mask": m})
        return {"image": model_in["image"], "wm": (wm & m).astype(np.uint8),
                "mask": m.astype(np.uint8), "age": float(age), "anatomy": j,
                "anatomy_age_months": float(self.f.label_ages[j])}


# -- cohorts ------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(fields_path: str, reference_path: str, masks_tsv: str) -> None:
    import SimpleITK as sitk

    from .synthesis import read_bcp_volumes

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    _WORKER["fields"] = LabelFields.load(fields_path)
    _WORKER["ref"] = sitk.ReadImage(reference_path)
    _WORKER["volumes"] = read_bcp_volumes(masks_tsv)


def _make_one(job) -> str:
    index, age, seed, out_dir = job
    out = Path(out_dir) / f"sample-{index:05d}.npz"
    if out.exists():
        return str(out)
    from .synthesis import volume_norm

    gen = LabelInfantGenerator(_WORKER["fields"], _WORKER["ref"], seed=seed)
    s = gen.sample(age)
    mean, sd = volume_norm(_WORKER["volumes"], float(np.clip(age, 0, 24)))
    volume = mean + sd * float(np.clip(gen.rng.normal(), -2.5, 2.5))
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, image=s["image"].astype(np.float16), wm=s["wm"], mask=s["mask"],
                        age=np.float32(age), volume_ml=np.float32(volume),
                        anatomy=np.int16(s["anatomy"]))
    os.replace(tmp, out)
    return str(out)


def generate_label_cohort(out_dir, *, fields_path, reference_path, masks_tsv, n: int, seed: int,
                          age_range=(0.0, 24.0), nprocs: int = 2, strata: int | None = None):
    """``n`` samples of :class:`LabelInfantGenerator` as ``sample-XXXXX.npz`` (the cohort format
    of :func:`~bids_infantage.models.dataset.load_cohort`; ``volume_ml`` drawn from the BCP norm
    at the age, since the label maps are size-normalized), ages stratified as
    :func:`~bids_infantage.models.dataset.generate_cohort`. Resumable; records
    ``generator.json`` and ``preprocessing.json``. Returns the sample paths."""
    import multiprocessing as mp

    from ..utils.io import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not any(out_dir.glob("sample-*.npz")):
        atomic_write_text(out_dir / "generator.json", json.dumps(
            {"generator": "labels", "label_synthesis_version": LABEL_SYNTHESIS_VERSION}) + "\n")
        atomic_write_text(out_dir / "preprocessing.json", json.dumps(
            {"path": "label synthesis in reference space (N4, T1w-T2w rigid and mask "
                     "normalization replaced by their residuals)",
             "standardization": "ModelInputd"}) + "\n")
    rng = np.random.default_rng(seed)
    lo, hi = age_range
    k = max(n, strata or n)
    ages = lo + (np.arange(k) + rng.random(k)) * (hi - lo) / k
    rng.shuffle(ages)
    jobs = [(i, float(a), seed * 100003 + i, str(out_dir)) for i, a in enumerate(ages[:n])]
    init = (str(fields_path), str(reference_path), str(masks_tsv))
    if nprocs <= 1:
        _init_worker(*init)
        return [Path(_make_one(j)) for j in jobs]
    with mp.get_context("fork").Pool(nprocs, initializer=_init_worker, initargs=init) as pool:
        paths = []
        for i, p in enumerate(pool.imap(_make_one, jobs, chunksize=4)):
            paths.append(Path(p))
            if (i + 1) % 50 == 0:
                LOGGER.info("generated %d/%d samples in %s", i + 1, n, out_dir)
    return paths
