"""The synthesis atlas: the normalized templates with the demons registration of each to its
older neighbour (step 2 of the recipe in :mod:`bids_infantage.models.synthesis`), cached as
``atlas.npz``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .templates import SYNTH_SHAPE, SYNTH_SPACING_MM, TEMPLATE_AGES, coarse_to_fine_demons, normalize_templates

#: Version of :func:`build_atlas`'s output, recorded in ``atlas.npz`` and with each synthetic
#: cohort: 2 aligns a template's T1w to its T2w where they are not in register
#: (:func:`~bids_infantage.models.synthesis.templates.align_t1w_to_t2w`; the 24-month
#: BMEXInfant pair)
ATLAS_VERSION = 2


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


def build_atlas(tf_home, reference_mask, cohorts=(1, 2, 3, 4, 5)) -> Atlas:
    """Normalize templates to the reference and register neighbours nonlinearly.

    Parameters
    ----------
    tf_home : path
        TemplateFlow home holding ``tpl-BMEXInfant``.
    reference_mask : SimpleITK.Image
        From :func:`~bids_infantage.models.synthesis.templates.build_reference_mask`.
    cohorts : sequence of int
        Anchors to use (leave-one-template-out validation drops one).
    """
    import SimpleITK as sitk

    from ...image.masks import brain_volume_ml

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
