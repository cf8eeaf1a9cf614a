"""Drawing the model input of one synthetic infant from
:class:`~bids_infantage.models.label_synthesis.fields.LabelFields` (step 3 of the
recipe in :mod:`bids_infantage.models.label_synthesis`): a real anatomy painted with the
templates' contrast at the age, then blur, texture, deformation, resampling to the reference
grid, bias field, gamma, noise and mask jitter.
"""
from __future__ import annotations

import numpy as np

from .fields import FIELD_GROUPS, LABEL_SHAPE, LABEL_SPACING_MM, TISSUE_CLASSES, LabelFields

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
        from ..synthesis.templates import SYNTH_SPACING_MM

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
        rng = self.rng
        img = np.zeros((2,) + labels.shape, np.float32)
        brain = labels > 0
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
        return self.finish_paint(img, labels)

    def finish_paint(self, img: np.ndarray, labels: np.ndarray):
        """Contrast gain about the cortex and CSF painting of :meth:`paint` on tissue
        intensities ``img`` (2 x label grid, float32, changed in place); returns ``img`` and
        the brain mask (labels > 0, with the extra-axial shell when drawn)."""
        from scipy.ndimage import binary_dilation

        rng = self.rng
        brain = labels > 0
        cortex = np.isin(labels, TISSUE_CLASSES["cortex"])
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

    def paint_sample(self, index: int, age: float):
        """T1w, T2w and brain mask of label map ``index`` at ``age`` months on the label grid:
        :meth:`paint` with the templates' :meth:`contrast_at` (subclasses paint otherwise)."""
        return self.paint(self.f.labels[index], self.contrast_at(age))

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

        from ...image.resampling import resample_like

        img = sitk.GetImageFromArray(arr.astype(np.float32))
        img.CopyInformation(self._lgrid)
        return sitk.GetArrayFromImage(resample_like(img, self.ref, xfm))

    def sample(self, age: float, anatomy: int | None = None) -> dict:
        """One synthetic infant's model input at ``age`` months (step 3 of the recipe in
        :mod:`bids_infantage.models.label_synthesis`).

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

        from ..transforms import ModelInputd

        rng = self.rng
        j = int(rng.integers(len(self.f.labels))) if anatomy is None else int(anatomy)
        labels = self.f.labels[j]
        img, mask = self.paint_sample(j, age)
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
