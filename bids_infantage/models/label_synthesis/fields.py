"""Label maps of real infants and contrast fields of the templates (steps 1-2 of the recipe
in :mod:`bids_infantage.models.label_synthesis`): the asegs on the label grid in reference
space, the atlas-guided tissue classes of each template, and the templates' intensity
within each tissue, smoothed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger("bids_infantage.synthesis")

#: Version of :func:`build_label_fields` and
#: :class:`~bids_infantage.models.label_synthesis.generator.LabelInfantGenerator`, recorded with
#: each cohort (``generator.json``): 2 atlas-guided tissue classes of the templates, contrast
#: gain exp(U(-0.2, 0.6)); 3 contrast gain exp(U(-0.5, 0.9))
#: (:data:`~bids_infantage.models.label_synthesis.generator.CONTRAST_GAIN_LOG`)
LABEL_SYNTHESIS_VERSION = 3

#: Label grid: 128^3 voxels of 1.5 mm in reference space (192 mm, as the 3 mm reference grid)
LABEL_SHAPE = (128, 128, 128)
LABEL_SPACING_MM = 1.5

#: Gaussian SD (mm) of the contrast fields of each group
FIELD_SIGMA_MM = {"wm": 4.0, "gm": 4.0, "deep": 2.0}
#: Index of each group in ``fields`` (K, 3 groups, 2 channels, ...)
FIELD_GROUPS = ("wm", "gm", "deep")


def _label_grid(reference_mask):
    """Empty SimpleITK image of :data:`LABEL_SHAPE` x :data:`LABEL_SPACING_MM`, centred and
    oriented as the reference grid."""
    from ..synthesis.templates import _grid

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
    """What :class:`~bids_infantage.models.label_synthesis.generator.LabelInfantGenerator` draws from.

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
    recipe in :mod:`bids_infantage.models.label_synthesis`).

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

    from ...image.registration import register_mask_to_reference
    from ...image.resampling import resample_like
    from ..synthesis.asegs import aseg_age_months
    from ..synthesis.templates import TEMPLATE_AGES, normalize_templates

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
