"""Drawing one synthetic infant from the atlas (steps 3-5 of the recipe in
:mod:`bids_infantage.models.synthesis`): the blend of the neighbouring templates at the age,
a brain size from the BCP norms, then pose, anisotropic scaling, elastic deformation, gamma,
bias field, blur, Rician noise, ghosting, acquisition grid (thick slices) and mask jitter.
"""
from __future__ import annotations

import numpy as np

from ...image.resampling import resample_like
from .atlas import Atlas
from .templates import SYNTH_SHAPE
from .volumes import volume_norm


class SyntheticInfantGenerator:
    """Draw synthetic T1w/T2w pairs of infants at continuous ages.

    Parameters
    ----------
    atlas : Atlas
    volumes : dict
        From :func:`~bids_infantage.models.synthesis.volumes.read_bcp_volumes` (real brain volumes
        by age group, ml).
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
