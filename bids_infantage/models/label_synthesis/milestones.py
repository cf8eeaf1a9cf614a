"""Milestone-driven contrast for label synthesis (issue #14): the age of a sample is carried
by *which* white-matter regions have reached myelinated contrast, with timings from the
neuroradiology literature, not by the intensities of the BMEXInfant templates.

Every earlier synthesis took its contrast from the five BMEXInfant templates, and every network
trained on it read the other template family (``tpl-UNCBCP4DInfant``) with its age range
compressed: the two families differ in *where* tissue is bright, which depends on the sequence
(model card, "Nor does a global intensity mapping"). Radiologists date infant brains by a
pattern that does not depend on the sequence: the order in which regions turn T1w-bright and
T2w-dark (Barkovich et al., Radiology 1988; Barkovich, AJNR 2000; Welker & Patton, Semin
Ultrasound CT MR 2012). Here each white-matter region of
:data:`~bids_infantage.maturity.atlas.REGIONS` (drawn on each of the 12 real ``infant-asegs``
by :func:`~bids_infantage.maturity.atlas.define_regions`) goes from unmyelinated to myelinated
contrast, relative to the cortex, along a logistic curve whose midpoint is the region's
milestone (:data:`MILESTONES_MONTHS`), later near the cortex than deep (central to peripheral,
:data:`PERIPHERAL_DELAY_MONTHS`). The size of the contrasts, the milestones themselves (per
region, about 12%) and the deep grey matter are drawn at random per sample, so only the
order and the rough timing carry age.

The milestone ages are the published ages at which the change is seen (the middle of the
ranges), moved later by about a month to be midpoints of the change; they are approximate
(a few months of spread between infants and studies), and this module is an experiment of
issue #14, not the shipped model's synthesis.
"""
from __future__ import annotations

import numpy as np

from .fields import LABEL_SPACING_MM, LabelFields
from .generator import GROUPS, LabelInfantGenerator

#: Version of the milestone synthesis, recorded with each cohort
MILESTONE_SYNTHESIS_VERSION = 3

#: Region -> (T1w, T2w) midpoint (months) of the change from unmyelinated to myelinated
#: contrast. Barkovich et al. (Radiology 1988, table 1: age at which the change appears):
#: middle cerebellar peduncle T1 birth / T2 birth-2 mo; cerebellar WM 0-4 / 3-5; posterior
#: limb of the internal capsule birth / 4-7 (anterior limb 2-3 / 7-11); splenium 3-4 / 4-6;
#: genu 4-6 / 5-8; occipital WM central 3-5 / 9-14, peripheral 4-7 / 11-15; frontal WM central
#: 3-6 / 11-16, peripheral 7-11 / 14-18; centrum semiovale 2-6 / 7-11. Parietal between
#: occipital and frontal, temporal last (Welker & Patton 2012).
MILESTONES_MONTHS = {
    "brainstem": (-1.0, 1.5),
    "cerebellar_wm": (1.0, 4.5),
    "internal_capsule": (0.0, 6.0),
    "cc_genu": (5.5, 7.5),
    "cc_body": (4.5, 6.5),
    "cc_splenium": (4.0, 5.5),
    "centrum_semiovale": (4.5, 9.5),
    "frontal_wm": (6.0, 14.0),
    "parietal_wm": (5.0, 12.5),
    "occipital_wm": (4.5, 12.0),
    "temporal_wm": (7.0, 15.0),
}
#: Extra delay (months; T1w, T2w) of lobar and centrum semiovale white matter at the cortex,
#: fading linearly to 0 at :data:`PERIPHERAL_DEPTH_MM` from it (central to peripheral)
PERIPHERAL_DELAY_MONTHS = (2.5, 4.0)
PERIPHERAL_DEPTH_MM = 8.0
#: Regions that get the peripheral delay
PERIPHERAL_REGIONS = ("centrum_semiovale", "frontal_wm", "parietal_wm", "occipital_wm",
                      "temporal_wm")
#: Ranges of the white matter's intensity relative to the cortex, unmyelinated and myelinated,
#: (T1w, T2w): unmyelinated white matter is T1w-darker and T2w-brighter than the cortex,
#: myelinated white matter the reverse (Barkovich 2000). Version 2 widened both towards weaker
#: contrast (version 1: unmyelinated (0.78-0.93, 1.08-1.35), myelinated (1.08-1.30,
#: 0.62-0.85)): on the BMEXInfant templates at the model input's 3 mm, neonatal white matter
#: is nearly isointense to the cortex (centrum semiovale 1.01 / 1.01), and version 1's
#: neonates were far more contrasted (0.92 / 1.12), so real neonates read as 6-10 months.
#: Version 3 moved the unmyelinated T1w range up again (version 2: 0.80-1.01): its neonates
#: still measured 0.95 in the centrum semiovale, against 1.01 on the BMEXInfant neonate.
UNMYELINATED = ((0.90, 1.06), (0.99, 1.30))
MYELINATED = ((1.08, 1.35), (0.55, 0.85))
#: Range of the share (T1w, T2w) of each region's change that is not tied to its milestone but
#: goes on linearly from birth to 24 months, drawn per sample (version 3). The BMEXInfant
#: templates keep changing after the last milestone: centrum semiovale T1w 1.10 -> 1.17 and
#: T2w 0.95 -> 0.71 over the cortex from 12 to 24 months (``benchmarks/synthesis_contrast.py``),
#: as T1 and T2 keep shortening while myelin matures (Dubois et al., Neuroscience 2014).
SLOW_SHARE = ((0.2, 0.5), (0.2, 0.5))


def maturity(age, midpoint, scale=None):
    """Logistic progress (0-1) of a contrast change at ``age`` months whose midpoint is
    ``midpoint`` months; the width grows with the midpoint (``0.25 * midpoint + 0.8`` months
    unless ``scale`` is given): late milestones spread more between infants."""
    midpoint = np.asarray(midpoint, np.float32)
    if scale is None:
        scale = 0.25 * np.maximum(midpoint, 0) + 0.8
    return 1.0 / (1.0 + np.exp(-(float(age) - midpoint) / scale))


def label_grid_ras_affine(fields: LabelFields) -> np.ndarray:
    """(4, 4) affine from the label grid's index (x, y, z order, as ``labels[j].T``) to RAS
    mm, for :func:`~bids_infantage.maturity.atlas.define_regions`."""
    direction = np.asarray(fields.synth_direction, float).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = direction * LABEL_SPACING_MM
    aff[:3, 3] = np.asarray(fields.label_origin, float)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff  # SimpleITK's LPS -> RAS


def milestone_anatomy(fields: LabelFields) -> dict:
    """White-matter regions and depth below the cortex of every label map of ``fields``.

    Returns
    -------
    dict
        ``regions`` uint8 (J, 128, 128, 128): index of
        :data:`~bids_infantage.maturity.atlas.REGIONS` (0 elsewhere), SimpleITK (z, y, x) order
        as ``fields.labels``; ``depth_mm`` float16 (J, 128, 128, 128): distance to the cortex.

    Raises
    ------
    ValueError
        A label map lacks cerebral white matter or lateral ventricles
        (:func:`~bids_infantage.maturity.atlas.define_regions`).
    """
    from scipy.ndimage import distance_transform_edt

    from ...maturity.atlas import CORTEX, define_regions

    aff = label_grid_ras_affine(fields)
    regions, depth = [], []
    for lab in fields.labels:
        regions.append(define_regions(lab.T, aff).T)
        depth.append(distance_transform_edt(~np.isin(lab, CORTEX), sampling=LABEL_SPACING_MM)
                     .astype(np.float16))
    return {"regions": np.stack(regions).astype(np.uint8), "depth_mm": np.stack(depth)}


class MilestoneInfantGenerator(LabelInfantGenerator):
    """:class:`~bids_infantage.models.label_synthesis.generator.LabelInfantGenerator` whose
    tissue contrast follows the myelination milestones (:data:`MILESTONES_MONTHS`) instead of
    the templates' fields; everything after painting (CSF, blur, texture, deformation,
    resampling, bias, gamma, noise, mask jitter, standardization) is the same.

    Parameters
    ----------
    fields : LabelFields
        Only its label maps and grid are used.
    anatomy : dict
        :func:`milestone_anatomy` of ``fields``.
    reference_mask : SimpleITK.Image
    seed : int
    """

    def __init__(self, fields: LabelFields, anatomy: dict, reference_mask, seed: int = 0) -> None:
        super().__init__(fields, reference_mask, seed=seed)
        self.anatomy = anatomy

    def paint_sample(self, index: int, age: float):
        """T1w, T2w (float32, 2 x label grid) and brain mask of label map ``index`` at ``age``
        months: cortex 1, white matter between :data:`UNMYELINATED` and :data:`MYELINATED`
        by each region's :func:`maturity` and, for a share drawn from :data:`SLOW_SHARE`,
        linearly with age from 0 to 24 months; deep grey matter slightly T1w-brighter and
        T2w-darker with age, then the contrast gain and CSF of the base class."""
        from ...maturity.atlas import CORTEX, REGIONS

        rng = self.rng
        labels = self.f.labels[index]
        regions = self.anatomy["regions"][index]
        depth = self.anatomy["depth_mm"][index].astype(np.float32)
        brain = labels > 0
        img = np.zeros((2,) + labels.shape, np.float32)
        tissue = brain & ~np.isin(labels, GROUPS["csf"])
        for c in range(2):
            img[c][tissue] = 1.0
        # deep grey matter (and the rest of the "deep" group): thalamus T1w-bright early
        deep = tissue & np.isin(labels, GROUPS["deep"]) & (regions == 0)
        d1, d2 = rng.uniform(0.03, 0.18), rng.uniform(0.03, 0.22)
        img[0][deep] = 1 + d1 * maturity(age, rng.uniform(0.5, 3.0))
        img[1][deep] = 1 - d2 * maturity(age, rng.uniform(3.0, 8.0))
        lo = [rng.uniform(*UNMYELINATED[c]) for c in range(2)]
        hi = [rng.uniform(*MYELINATED[c]) for c in range(2)]
        slow = [rng.uniform(*SLOW_SHARE[c]) for c in range(2)]
        linear = float(np.clip(age / 24.0, 0.0, 1.0))
        name_of = {i: n for i, (n, _) in REGIONS.items()}
        for index_r in np.unique(regions[tissue]):
            name = name_of.get(int(index_r))
            if name not in MILESTONES_MONTHS:
                continue
            sel = (regions == index_r) & tissue
            for c in range(2):
                mid = MILESTONES_MONTHS[name][c] * np.exp(rng.normal(0, 0.12)) + rng.normal(0, 0.3)
                mid = np.full(int(sel.sum()), mid, np.float32)
                if name in PERIPHERAL_REGIONS:
                    mid += PERIPHERAL_DELAY_MONTHS[c] * np.clip(
                        1 - depth[sel] / PERIPHERAL_DEPTH_MM, 0, 1)
                progress = (1 - slow[c]) * maturity(age, mid) + slow[c] * linear
                value = lo[c] + (hi[c] - lo[c]) * progress
                if name == "brainstem":  # nuclei and tracts mixed at this scale
                    value = 1 + 0.7 * (value - 1)
                img[c][sel] = value * np.exp(rng.normal(0, 0.03))
        other = tissue & ~deep & (regions == 0) & ~np.isin(labels, CORTEX)
        for c in range(2):  # grey-matter labels other than the cortex vary a little
            img[c][other] *= np.exp(rng.normal(0, 0.04))
        return self.finish_paint(img, labels)
