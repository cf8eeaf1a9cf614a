"""Synthetic infant cohort with continuous ages (0-24 months) from real templates and real masks.

Recipe (see docs/model_card.md):

1. The five BMEXInfant templates (0, 6, 9, 12, 24 months; T1w + T2w) are affinely normalized
   to the reference brain mask and resampled to a 2 mm "synthesis" grid.
2. Neighbouring templates are registered nonlinearly (SimpleITK fast symmetric-forces demons
   on histogram-matched T2w); the displacement fields are cached.
3. An image at age ``a`` between anchors ``a0 < a1`` (``t = (a - a0) / (a1 - a0)``) blends
   intensity, ``(1 - t) A + t (B o phi)``, and shape, warping by ``-t d`` (first-order inverse
   of the scaled displacement ``d``).
4. Brain size comes from the 206 real BCP masks: a volume is drawn from the real volumes of
   the neighbouring age groups, rescaled to the interpolated group mean at ``a``.
5. Each sample gets a random pose, anisotropic scaling, elastic deformation, gamma, bias field,
   blur, Rician noise, ghosting, acquisition (3D isotropic, or 2D with 4-6 mm slices along a
   random axis), a T1w-to-T2w misalignment and mask jitter.
6. White-matter labels: 3-class k-means of each template's T2w in the brain mask; CSF is the
   brightest class; white matter is the more central of the other two (cortex is peripheral).

The samples then pass through :func:`bids_infantage.models.preprocess.preprocess_session`,
the code path real inputs take.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..image.registration import register_mask_to_reference
from ..image.resampling import resample_like

LOGGER = logging.getLogger("bids_infantage.synthesis")

#: BMEXInfant cohort -> age (months)
TEMPLATE_AGES = {1: 0.0, 2: 6.0, 3: 9.0, 4: 12.0, 5: 24.0}
REFERENCE_COHORT = 4
REF_SHAPE = (64, 64, 64)
REF_SPACING_MM = 3.0
SYNTH_SHAPE = (96, 96, 96)
SYNTH_SPACING_MM = 2.0


def template_path(tf_home: str | Path, cohort: int, suffix: str) -> Path:
    """Path of a BMEXInfant template image in a TemplateFlow home (``res-1``)."""
    return (
        Path(tf_home) / "tpl-BMEXInfant" / f"cohort-{cohort}"
        / f"tpl-BMEXInfant_cohort-{cohort}_res-1_{suffix}.nii.gz"
    )


def _grid(center, shape, spacing, direction):
    import SimpleITK as sitk

    img = sitk.Image([int(s) for s in shape], sitk.sitkFloat32)
    img.SetSpacing([float(spacing)] * 3)
    img.SetDirection(direction)
    d = np.asarray(direction).reshape(3, 3)
    half = (np.asarray(shape) - 1) / 2.0 * spacing
    img.SetOrigin(tuple(np.asarray(center) - d @ half))
    return img


def _center_of_mass(mask):
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    return np.asarray(stats.GetCentroid(1))


def build_reference_mask(tf_home: str | Path):
    """Reference brain mask of the model: the 12-month template's mask on a 64^3, 3 mm grid.

    Returns
    -------
    SimpleITK.Image
        uint8, 64x64x64 voxels of 3 mm (192 mm field of view), RAS, centred on the brain.
    """
    import SimpleITK as sitk

    from ..image.masks import mask_from_skull_stripped

    t2w = sitk.ReadImage(str(template_path(tf_home, REFERENCE_COHORT, "T2w")), sitk.sitkFloat32)
    mask = mask_from_skull_stripped(t2w)
    grid = _grid(_center_of_mass(mask), REF_SHAPE, REF_SPACING_MM, t2w.GetDirection())
    ref = resample_like(sitk.Cast(mask, sitk.sitkFloat32), grid) > 0.5
    return sitk.Cast(ref, sitk.sitkUInt8)


def _wm_probability(t2w: np.ndarray, mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """White-matter map of a template by the k-means rule in the module docstring."""
    from scipy.cluster.vq import kmeans2
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    vals = t2w[mask].astype(np.float64)[:, None]
    rng = np.random.default_rng(seed)
    init = np.percentile(vals, [20, 60, 97])[:, None]
    _, labels = kmeans2(vals, init, minit="matrix", seed=rng)
    means = [vals[labels == k].mean() if np.any(labels == k) else -np.inf for k in range(3)]
    csf = int(np.argmax(means))
    depth = distance_transform_edt(mask)[mask]  # distance from the brain surface
    others = [k for k in range(3) if k != csf]
    wm = max(others, key=lambda k: depth[labels == k].mean() if np.any(labels == k) else -1)
    out = np.zeros(t2w.shape, np.float32)
    out[mask] = (labels == wm).astype(np.float32)
    return gaussian_filter(out, 0.5)


#: Version of :func:`build_atlas`'s output, recorded in ``atlas.npz`` and with each synthetic
#: cohort: 2 aligns a template's T1w to its T2w where they are not in register
#: (:func:`align_t1w_to_t2w`; the 24-month BMEXInfant pair)
ATLAS_VERSION = 2

#: Edge correlation (:func:`~bids_infantage.image.registration.edge_correlation`) of a
#: template's T1w and T2w on the synthesis grid below which the T1w is taken to be out of
#: register with its T2w. BMEXInfant 0-12 months: 0.61-0.81; 24 months: 0.08 (the T1w is
#: offset and scaled by up to 8% against the T2w and its mask).
T1W_IN_REGISTER_MIN = 0.4


def grid_edge_correlation(t1w: np.ndarray, t2w: np.ndarray, mask: np.ndarray,
                          spacing_mm: float = SYNTH_SPACING_MM) -> float:
    """:func:`~bids_infantage.image.registration.edge_correlation` of two arrays
    (Z, Y, X) on a grid of ``spacing_mm`` voxels, inside ``mask > 0.5``."""
    import SimpleITK as sitk

    from ..image.registration import edge_correlation

    images = []
    for a in (t1w, t2w, (mask > 0.5).astype(np.uint8)):
        img = sitk.GetImageFromArray(a)
        img.SetSpacing([spacing_mm] * 3)
        images.append(img)
    return edge_correlation(*images)


def coarse_to_fine_demons(fixed, moving, iterations: int):
    """Displacement field (SimpleITK, float64 vectors) of diffeomorphic demons (fast symmetric
    forces, field smoothing SD 1.5 voxels) from ``moving`` to ``fixed``: ``iterations`` at
    twice the grid spacing (4 mm on the synthesis grid), then as many at full resolution,
    started from the coarse field. Intensities must be comparable (histogram-match first)."""
    import SimpleITK as sitk

    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(iterations)
    demons.SetStandardDeviations(1.5)
    field = None
    for shrink in (2, 1):
        f = sitk.Shrink(fixed, [shrink] * 3) if shrink > 1 else fixed
        mv = sitk.Shrink(moving, [shrink] * 3) if shrink > 1 else moving
        if field is not None:
            field = sitk.Resample(field, f, sitk.Transform(), sitk.sitkLinear, 0.0,
                                  sitk.sitkVectorFloat64)
            field = demons.Execute(f, mv, field)
        else:
            field = demons.Execute(f, mv)
    return field


def align_t1w_to_t2w(t1w: np.ndarray, t2w: np.ndarray, mask: np.ndarray,
                     spacing_mm: float = SYNTH_SPACING_MM) -> np.ndarray:
    """Warp a template's T1w onto its T2w when the two are not in register.

    An affine registration (Mattes mutual information, SimpleITK), then diffeomorphic demons
    (fast symmetric forces) of the T1w to the T2w with its contrast inverted inside the brain
    (white matter dark and CSF bright on T2w, the reverse on T1w, from about 8 months;
    Barkovich et al., Radiology 1988), after histogram matching.

    Parameters
    ----------
    t1w, t2w : ndarray (Z, Y, X)
        On one grid of ``spacing_mm`` voxels; the T2w defines the anatomy.
    mask : ndarray (Z, Y, X)
        The T2w's brain-mask probability.

    Returns
    -------
    ndarray (Z, Y, X)
        The T1w on the T2w's anatomy, float32, 0 outside ``mask > 0.05``.
    """
    import SimpleITK as sitk

    inside = mask > 0.5
    pseudo = np.where(mask > 0.05, t2w[inside].max() - t2w, 0.0).astype(np.float32)
    fixed = sitk.GetImageFromArray(pseudo)
    moving = sitk.GetImageFromArray(t1w.astype(np.float32))
    for img in (fixed, moving):
        img.SetSpacing([spacing_mm] * 3)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, 1)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([1, 0])
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetInitialTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS), inPlace=False)
    affine = reg.Execute(fixed, moving)
    matched = sitk.HistogramMatching(sitk.Resample(moving, fixed, affine, sitk.sitkLinear, 0.0), fixed, 128, 7, True)
    field = coarse_to_fine_demons(fixed, matched, iterations=80)
    warp = sitk.CompositeTransform(3)
    warp.AddTransform(affine)
    warp.AddTransform(sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64)))
    out = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, warp, sitk.sitkLinear, 0.0))
    return (out * (mask > 0.05)).astype(np.float32)


@dataclass
class Atlas:
    """Templates on the synthesis grid with cached pairwise warps.

    Attributes
    ----------
    ages : ndarray (K,)
        Anchor ages (months), increasing.
    images : ndarray (K, 4, 96, 96, 96)
        Per anchor: T1w, T2w (each /p99 in the mask), brain-mask probability, WM probability.
    warped_next : ndarray (K-1, 4, 96, 96, 96)
        Anchor k+1 warped into anchor k's shape (``B o phi``).
    disp : ndarray (K-1, 96, 96, 96, 3)
        Demons displacement (mm, physical LPS) from anchor k to anchor k+1.
    """

    ages: np.ndarray
    images: np.ndarray
    warped_next: np.ndarray
    disp: np.ndarray
    origin: tuple
    direction: tuple
    reference_volume_ml: float

    def grid(self):
        """Empty SimpleITK image on the synthesis grid."""
        import SimpleITK as sitk

        img = sitk.Image(list(SYNTH_SHAPE), sitk.sitkFloat32)
        img.SetSpacing([SYNTH_SPACING_MM] * 3)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img

    def save(self, path: Path) -> None:
        np.savez(path, ages=self.ages, images=self.images, warped_next=self.warped_next,
                 disp=self.disp, origin=np.asarray(self.origin), direction=np.asarray(self.direction),
                 reference_volume_ml=self.reference_volume_ml, version=ATLAS_VERSION)

    @classmethod
    def load(cls, path: Path) -> Atlas:
        z = np.load(path)
        return cls(z["ages"], z["images"], z["warped_next"], z["disp"], tuple(z["origin"]),
                   tuple(z["direction"]), float(z["reference_volume_ml"]))

    @staticmethod
    def saved_version(path: Path) -> int:
        """:data:`ATLAS_VERSION` of a saved atlas (1 before versions were recorded)."""
        with np.load(path) as z:
            return int(z["version"]) if "version" in z.files else 1


def normalize_templates(tf_home, reference_mask, cohorts=(1, 2, 3, 4, 5)):
    """BMEXInfant templates affinely normalized to the reference brain mask, on the 2 mm
    synthesis grid (96^3, 192 mm, centred on the reference mask).

    Each template's brain mask (:func:`mask_from_skull_stripped` of its T2w) is registered to
    the reference (:func:`register_mask_to_reference`, the pipeline's affine); T1w and T2w are
    resampled with it and divided by their 99th percentile in the mask; a T1w out of register
    with its T2w is aligned to it (:func:`align_t1w_to_t2w`).

    Returns
    -------
    images : ndarray (K, 4, 96, 96, 96) float32
        Per cohort: T1w, T2w, brain-mask probability, white-matter probability
        (:func:`_wm_probability`), SimpleITK (z, y, x) order.
    grid : SimpleITK.Image
        The synthesis grid.
    """
    import SimpleITK as sitk

    from ..image.masks import mask_from_skull_stripped

    grid = _grid(_center_of_mass(reference_mask), SYNTH_SHAPE, SYNTH_SPACING_MM,
                 reference_mask.GetDirection())
    images = []
    for c in cohorts:
        t1 = sitk.ReadImage(str(template_path(tf_home, c, "T1w")), sitk.sitkFloat32)
        t2 = sitk.ReadImage(str(template_path(tf_home, c, "T2w")), sitk.sitkFloat32)
        mask = mask_from_skull_stripped(t2)
        xfm, dice = register_mask_to_reference(mask, reference_mask)
        LOGGER.info("template cohort-%d: mask Dice to reference %.3f", c, dice)
        arrs = []
        for img in (t1, t2):
            a = sitk.GetArrayFromImage(resample_like(img, grid, xfm))
            arrs.append(a)
        m = sitk.GetArrayFromImage(resample_like(sitk.Cast(mask, sitk.sitkFloat32), grid, xfm))
        inside = m > 0.5
        for a in arrs:
            a /= max(np.percentile(a[inside], 99), 1e-6)
        before = grid_edge_correlation(arrs[0], arrs[1], m)
        if before < T1W_IN_REGISTER_MIN:  # T1w not in register with the T2w and its mask
            arrs[0] = align_t1w_to_t2w(arrs[0], arrs[1], m)
            arrs[0] /= max(np.percentile(arrs[0][inside], 99), 1e-6)
            LOGGER.info("template cohort-%d: T1w out of register with the T2w (edge correlation "
                        "%.2f); aligned to it (%.2f)", c, before, grid_edge_correlation(arrs[0], arrs[1], m))
        for a in arrs:
            a *= m > 0.05
        wm = _wm_probability(arrs[1], inside)
        images.append(np.stack([arrs[0], arrs[1], m, wm]).astype(np.float32))
    return np.stack(images), grid


def build_atlas(tf_home, reference_mask, cohorts=(1, 2, 3, 4, 5)) -> Atlas:
    """Normalize templates to the reference and register neighbours nonlinearly.

    Parameters
    ----------
    tf_home : path
        TemplateFlow home holding ``tpl-BMEXInfant``.
    reference_mask : SimpleITK.Image
        From :func:`build_reference_mask`.
    cohorts : sequence of int
        Anchors to use (leave-one-template-out validation drops one).
    """
    import SimpleITK as sitk

    from ..image.masks import brain_volume_ml

    images, grid = normalize_templates(tf_home, reference_mask, cohorts)
    warped, disps = [], []
    for k in range(len(cohorts) - 1):
        fixed = sitk.GetImageFromArray(images[k, 1] + images[k, 2] * 0.5)
        moving = sitk.GetImageFromArray(images[k + 1, 1] + images[k + 1, 2] * 0.5)
        for im in (fixed, moving):
            im.CopyInformation(grid)
        moving = sitk.HistogramMatching(moving, fixed, 128, 7, True)
        field = coarse_to_fine_demons(fixed, moving, iterations=60)
        disp = sitk.GetArrayFromImage(field).astype(np.float32)
        field_t = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
        w = []
        for ch in range(4):
            img = sitk.GetImageFromArray(images[k + 1, ch])
            img.CopyInformation(grid)
            w.append(sitk.GetArrayFromImage(sitk.Resample(img, grid, field_t, sitk.sitkLinear, 0.0)))
        warped.append(np.stack(w).astype(np.float32))
        disps.append(disp)
    ref_vol = brain_volume_ml(reference_mask)
    return Atlas(np.asarray([TEMPLATE_AGES[c] for c in cohorts]), images, np.stack(warped),
                 np.stack(disps), grid.GetOrigin(), grid.GetDirection(), ref_vol)


def read_bcp_volumes(masks_tsv: str | Path) -> dict[float, np.ndarray]:
    """Real brain volumes (ml) of the BCP masks by nominal age group (months)."""
    groups: dict[float, list] = {}
    with open(masks_tsv) as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            groups.setdefault(float(row["age_months"]), []).append(float(row["volume_ml"]))
    return {k: np.asarray(v) for k, v in sorted(groups.items())}


def volume_norm(volumes: dict[float, np.ndarray], age_months: float) -> tuple[float, float]:
    """Mean and SD (ml) of brain volume at an age, interpolated between BCP groups."""
    ages = np.asarray(list(volumes))
    means = np.asarray([v.mean() for v in volumes.values()])
    sds = np.asarray([v.std(ddof=1) for v in volumes.values()])
    return float(np.interp(age_months, ages, means)), float(np.interp(age_months, ages, sds))


class SyntheticInfantGenerator:
    """Draw synthetic T1w/T2w pairs of infants at continuous ages.

    Parameters
    ----------
    atlas : Atlas
    volumes : dict
        From :func:`read_bcp_volumes` (real brain volumes by age group, ml).
    seed : int

    Examples
    --------
    ``gen.sample(7.5)`` returns SimpleITK images ``T1w``, ``T2w`` (skull-stripped, arbitrary
    intensity scale, random grid) and ``WM`` (white-matter probability on the T2w grid).
    """

    def __init__(self, atlas: Atlas, volumes: dict, seed: int = 0) -> None:
        self.atlas = atlas
        self.volumes = volumes
        self.rng = np.random.default_rng(seed)
        self._grid = atlas.grid()

    # -- anatomy at an age -------------------------------------------------------------------
    def _blend(self, age: float):
        import SimpleITK as sitk

        ages = self.atlas.ages
        age_c = float(np.clip(age, ages[0], ages[-1]))
        k = int(np.clip(np.searchsorted(ages, age_c, side="right") - 1, 0, len(ages) - 2))
        t = (age_c - ages[k]) / (ages[k + 1] - ages[k])
        mix = (1 - t) * self.atlas.images[k] + t * self.atlas.warped_next[k]
        disp = -t * self.atlas.disp[k] + self._elastic()
        field = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
        field.CopyInformation(self._grid)
        xfm = sitk.DisplacementFieldTransform(field)
        out = []
        for ch in range(mix.shape[0]):
            img = sitk.GetImageFromArray(mix[ch])
            img.CopyInformation(self._grid)
            out.append(sitk.Resample(img, self._grid, xfm, sitk.sitkLinear, 0.0))
        return out

    def _elastic(self) -> np.ndarray:
        from scipy.ndimage import zoom

        amp = self.rng.uniform(0.0, 3.0)  # mm
        coarse = self.rng.normal(0, amp, size=(5, 5, 5, 3))
        f = [s / 5 for s in SYNTH_SHAPE]
        return np.stack([zoom(coarse[..., i], f, order=1) for i in range(3)], -1).astype(np.float32)

    def _volume(self, age: float) -> float:
        groups = np.asarray(list(self.volumes))
        lo = groups[max(0, np.searchsorted(groups, age, side="right") - 1)]
        hi = groups[min(len(groups) - 1, np.searchsorted(groups, age, side="left"))]
        g = hi if (hi != lo and self.rng.random() < (age - lo) / (hi - lo)) else lo
        sample = self.rng.choice(self.volumes[g])
        mean_a, _ = volume_norm(self.volumes, age)
        return float(sample * mean_a / self.volumes[g].mean())

    # -- acquisition ---------------------------------------------------------------------------
    def _acq_grid(self, center, thick_axis=None):
        spacing = np.full(3, self.rng.uniform(1.6, 2.2))
        if thick_axis is not None:
            spacing[thick_axis] = self.rng.uniform(4.0, 6.0)
        import SimpleITK as sitk

        size = [int(np.ceil(200.0 / s)) for s in spacing]
        img = sitk.Image(size, sitk.sitkFloat32)
        img.SetSpacing(spacing.tolist())
        img.SetDirection(self._grid.GetDirection())
        d = np.asarray(self._grid.GetDirection()).reshape(3, 3)
        img.SetOrigin(tuple(center - d @ ((np.asarray(size) - 1) / 2.0 * spacing)))
        return img

    def _pose(self, center, scale, max_deg=12.0, max_mm=8.0, aniso=0.06):
        import SimpleITK as sitk

        angles = np.deg2rad(self.rng.uniform(-max_deg, max_deg, 3))
        rot = sitk.Euler3DTransform((0, 0, 0), *angles.tolist())
        r = np.asarray(rot.GetMatrix()).reshape(3, 3)
        a = np.exp(self.rng.uniform(-aniso, aniso, 3))
        a /= np.prod(a) ** (1 / 3)
        forward = scale * r @ np.diag(a)  # synthesis -> subject
        xfm = sitk.AffineTransform(3)
        xfm.SetCenter(tuple(center))
        xfm.SetMatrix(np.linalg.inv(forward).ravel().tolist())  # subject -> synthesis points
        xfm.SetTranslation(self.rng.uniform(-max_mm, max_mm, 3).tolist())
        return xfm

    def _corrupt(self, img, mask_arr):
        """Gamma, bias field, blur, Rician noise, ghosting, skull-stripping; arbitrary scale."""
        import SimpleITK as sitk
        from scipy.ndimage import gaussian_filter, zoom

        rng = self.rng
        x = np.clip(sitk.GetArrayFromImage(img), 0, None)
        x = x ** np.exp(rng.normal(0, 0.12))
        coarse = rng.normal(0, rng.uniform(0.05, 0.3), size=(4, 4, 4))
        field = zoom(coarse, [s / 4 for s in x.shape], order=1)
        x = x * np.exp(field)
        if rng.random() < 0.5:
            x = gaussian_filter(x, rng.uniform(0.2, 0.8))
        elif rng.random() < 0.3:
            x = x + rng.uniform(0.2, 0.8) * (x - gaussian_filter(x, 1.0))
        sigma = rng.uniform(0.005, 0.06)
        x = np.sqrt((x + rng.normal(0, sigma, x.shape)) ** 2 + rng.normal(0, sigma, x.shape) ** 2)
        if rng.random() < 0.15:
            axis = int(rng.integers(0, 3))
            x = x + rng.uniform(0.03, 0.12) * np.roll(x, x.shape[axis] // 2, axis=axis)
        x = x * mask_arr * rng.uniform(200, 3000)
        out = sitk.GetImageFromArray(x.astype(np.float32))
        out.CopyInformation(img)
        return out

    def sample(self, age: float) -> dict:
        """One synthetic infant at ``age`` months.

        Returns
        -------
        dict
            ``T1w``, ``T2w`` (SimpleITK float32, skull-stripped), ``WM`` (float32 probability,
            T2w grid), ``age`` (months) and ``target_volume_ml``.
        """
        import SimpleITK as sitk
        from scipy.ndimage import binary_dilation, binary_erosion

        t1, t2, m, wm = self._blend(age)
        volume = self._volume(age)
        scale = (volume / self.atlas.reference_volume_ml) ** (1 / 3)
        center = np.asarray(self._grid.TransformContinuousIndexToPhysicalPoint(
            [(s - 1) / 2 for s in SYNTH_SHAPE]))
        xfm2 = self._pose(center, scale)
        thick = int(self.rng.integers(0, 3)) if self.rng.random() < 0.35 else None
        g2 = self._acq_grid(center, thick)
        t2_acq = resample_like(t2, g2, xfm2)
        m2 = sitk.GetArrayFromImage(resample_like(m, g2, xfm2, antialias=False)) > 0.5
        if self.rng.random() < 0.1:  # skull-stripping variability (1 voxel is ~10% of volume)
            m2 = (binary_dilation if self.rng.random() < 0.5 else binary_erosion)(m2)
        wm2 = resample_like(wm, g2, xfm2)
        # T1w: own grid (3D), small rigid misalignment relative to T2w
        mis = sitk.Euler3DTransform((0, 0, 0), *np.deg2rad(self.rng.uniform(-4, 4, 3)).tolist())
        mis.SetCenter(tuple(center))
        mis.SetTranslation(self.rng.uniform(-4, 4, 3).tolist())
        xfm1 = sitk.CompositeTransform([xfm2, mis])
        g1 = self._acq_grid(center, None if self.rng.random() < 0.8 else int(self.rng.integers(0, 3)))
        t1_acq = resample_like(t1, g1, xfm1)
        m1 = sitk.GetArrayFromImage(resample_like(m, g1, xfm1, antialias=False)) > 0.5
        return {
            "T1w": self._corrupt(t1_acq, m1),
            "T2w": self._corrupt(t2_acq, m2),
            "WM": wm2,
            "age": float(age),
            "target_volume_ml": volume,
        }


#: aseg labels (FreeSurfer LUT) of the ventricles: lateral (4, 43), inferior lateral (5, 44),
#: third (14) and fourth (15)
VENTRICLE_LABELS = (4, 43, 5, 44, 14, 15)


def aseg_age_months(path: str | Path) -> float:
    """Age (months) in an ``infant-asegs`` file name (``12mo_...``; ``34-38mo``: 36)."""
    token = Path(path).name.split("mo_")[0]
    lo, _, hi = token.partition("-")
    return (float(lo) + float(hi or lo)) / 2


def build_ventricle_atlas(aseg_dir: str | Path, reference_mask) -> dict:
    """Ventricles of real infants on the model grid, for CSF painting in training.

    The BMEXInfant templates do not show ventricular CSF as CSF (their lateral ventricles
    are not T2w-bright, and at 0 months they are T1w-bright), while single scans and other
    template families do; a model built from the templates alone never sees the CSF
    contrast of real scans. Each aseg's brain (labels > 0) is normalized to the reference
    mask with the pipeline's affine (:func:`register_mask_to_reference`) and its ventricle
    labels (:data:`VENTRICLE_LABELS`) resampled to the 3 mm grid.

    Parameters
    ----------
    aseg_dir : path
        ``infant-asegs`` (``<age>mo_aseg_acpc.nii.gz``, FreeSurfer labels).
    reference_mask : SimpleITK.Image
        Model reference mask (64^3, 3 mm).

    Returns
    -------
    dict
        ``ages`` float32 (K,) months; ``ventricles`` float32 (K, 64, 64, 64) in [0, 1]
        (partial volume), SimpleITK (z, y, x) order.

    Raises
    ------
    FileNotFoundError
        No ``*mo_aseg_acpc.nii.gz`` in ``aseg_dir``.
    """
    import SimpleITK as sitk

    files = sorted(Path(aseg_dir).glob("*mo_aseg_acpc.nii.gz"), key=aseg_age_months)
    if not files:
        raise FileNotFoundError(f"{aseg_dir}: no *mo_aseg_acpc.nii.gz label maps")
    ages, vents = [], []
    for f in files:
        aseg = sitk.ReadImage(str(f), sitk.sitkInt16)
        arr = sitk.GetArrayFromImage(aseg)
        brain = sitk.GetImageFromArray((arr > 0).astype(np.uint8))
        brain.CopyInformation(aseg)
        vent = sitk.GetImageFromArray(np.isin(arr, VENTRICLE_LABELS).astype(np.float32))
        vent.CopyInformation(aseg)
        xfm, dice = register_mask_to_reference(brain, reference_mask)
        LOGGER.info("%s: mask Dice to reference %.3f", f.name, dice)
        ages.append(aseg_age_months(f))
        vents.append(np.clip(sitk.GetArrayFromImage(resample_like(vent, reference_mask, xfm)), 0, 1))
    return {"ages": np.asarray(ages, np.float32), "ventricles": np.stack(vents).astype(np.float32)}
