"""Five-level 2D CNN for infant brain age, after Wada et al. (2019).

Wada et al. estimated infant age from five axial levels of clinical T1- and T2-weighted
images (pons/middle cerebellar peduncle, midbrain, internal capsule with the splenium,
centrum semiovale, subcortical white matter), with a 2D CNN per level and contrast, and an
ensemble of a 0-16 month and an 8-24 month model (MAE 1.34 months).

Here the five levels are axial slabs of the model's reference space (64^3 voxels of 3 mm,
after affine normalization): their slice indices are located automatically by
:func:`locate_levels` from the FreeSurfer-style infant label maps in ``../shared/infant-asegs``
(normalized to the reference brain mask like any input) and stored in
``data/wada-levels.json`` so that nothing from ``../shared`` is needed at run time
(``python -m bids_infantage.models.nets.wada2d --shared ../shared`` rebuilds that file).
Each level is a 3-slice (9 mm) slab averaged into one 2D image, as thick clinical slices.

Reference: Wada A, Saito Y, Fujita S, et al. Automation of a rule-based workflow to estimate
age from brain MR imaging of infants and children up to 2 years old using stacked deep
learning. Magnetic Resonance in Medical Sciences 2023;22(1):57-66.
doi:10.2463/mrms.mp.2021-0068 (first reported at ISMRM 2019, abstract 2837).
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["WADA_LEVELS", "WadaAgeRangeEnsemble", "WadaLevelNet", "blend_age_ranges", "load_levels",
           "locate_levels"]

#: The five axial levels of Wada et al. (2019), inferior to superior.
WADA_LEVELS = ("pons_mcp", "midbrain", "internal_capsule_splenium", "centrum_semiovale",
               "subcortical_wm")
#: The two age ranges (months) of the ensemble and where their predictions are blended.
YOUNG_RANGE = (0.0, 16.0)
OLD_RANGE = (8.0, 24.0)

# FreeSurfer labels used to find the levels
_BRAINSTEM = (16,)
_CEREBELLAR_WM = (7, 46)
_VENTRAL_DC = (28, 60)
_THALAMUS = (10, 49)
_LATERAL_VENTRICLES = (4, 43)


def _area(labels: np.ndarray, values) -> np.ndarray:
    return np.isin(labels, values).sum(axis=(1, 2))


def locate_levels(labels_ref: np.ndarray) -> dict[str, int]:
    """Axial slice indices of the five levels in one label map on the reference grid.

    Parameters
    ----------
    labels_ref : ndarray (Z, Y, X), int
        FreeSurfer aseg labels resampled (nearest neighbour) to the reference grid, array
        axis 0 running inferior -> superior (SimpleITK order; the reference is LPS-like).

    Returns
    -------
    dict of level name -> z index
        * pons/MCP: the brainstem slice with the most cerebellar white matter (the middle
          cerebellar peduncles enter the cerebellar white matter at the pons);
        * midbrain: the slice with the largest ventral diencephalon (substantia nigra,
          cerebral peduncles) within the brainstem's extent;
        * internal capsule + splenium: the slice with the largest thalamus;
        * centrum semiovale: the first slice above the bodies of the lateral ventricles
          (where their area drops below 5% of its maximum);
        * subcortical white matter: halfway between the centrum semiovale and the vertex.

    Raises
    ------
    ValueError
        A label needed for a level is missing.
    """
    brain = labels_ref > 0
    for name, values in (("brainstem", _BRAINSTEM), ("cerebellar white matter", _CEREBELLAR_WM),
                         ("thalamus", _THALAMUS), ("lateral ventricles", _LATERAL_VENTRICLES)):
        if not np.isin(labels_ref, values).any():
            raise ValueError(f"label map has no {name} label {values}")
    zs = np.flatnonzero(_area(labels_ref, _BRAINSTEM))
    b0, b1 = int(zs.min()), int(zs.max())
    cwm = _area(labels_ref, _CEREBELLAR_WM)
    pons = b0 + int(np.argmax(cwm[b0:b1 + 1]))
    vdc = _area(labels_ref, _VENTRAL_DC)
    midbrain = pons + 1 + int(np.argmax(vdc[pons + 1:b1 + 2])) if vdc[pons + 1:b1 + 2].any() \
        else min(b1, pons + 3)
    capsule = int(np.argmax(_area(labels_ref, _THALAMUS)))
    vent = _area(labels_ref, _LATERAL_VENTRICLES)
    above = np.flatnonzero((vent >= 0.05 * vent.max()) & (np.arange(len(vent)) > capsule))
    semiovale = int(above.max()) + 1 if len(above) else capsule + 4
    top = int(np.flatnonzero(brain.any(axis=(1, 2))).max())
    subcortical = (semiovale + top) // 2
    return dict(zip(WADA_LEVELS, (pons, midbrain, capsule, semiovale, subcortical)))


def build_levels(shared: Path, reference_mask_path: Path,
                 ages=("6", "7", "8", "12", "24")) -> dict:
    """Median level indices over several infants' label maps (``../shared/infant-asegs``),
    each normalized to the reference mask by the pipeline's affine mask registration."""
    import SimpleITK as sitk

    from ...image.registration import register_mask_to_reference
    from ...image.resampling import resample_like

    ref = sitk.ReadImage(str(reference_mask_path), sitk.sitkUInt8)
    per_subject = {}
    for age in ages:
        path = Path(shared) / "infant-asegs" / f"{age}mo_aseg_acpc.nii.gz"
        aseg = sitk.ReadImage(str(path), sitk.sitkInt16)
        aseg = sitk.DICOMOrient(aseg, "LPS")
        mask = sitk.Cast(aseg > 0, sitk.sitkUInt8)
        xfm, dice = register_mask_to_reference(mask, ref)
        labels = sitk.GetArrayFromImage(resample_like(aseg, ref, xfm, interpolator="nearest"))
        per_subject[f"{age}mo"] = {"levels": locate_levels(labels), "mask_dice": round(dice, 3)}
    levels = {name: int(np.median([s["levels"][name] for s in per_subject.values()]))
              for name in WADA_LEVELS}
    return {"levels": levels, "slab_slices": 3, "per_label_map": per_subject,
            "source": "infant-asegs (DCAN-Labs/BIBSnet, Apache-2.0), "
                      "bids_infantage.models.nets.wada2d.build_levels"}


def load_levels() -> list[int]:
    """The five level indices shipped in ``data/wada-levels.json``."""
    from ...utils.data import load_json

    levels = load_json("wada-levels.json")["levels"]
    return [int(levels[name]) for name in WADA_LEVELS]


def _block2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.1, inplace=True),
                         nn.MaxPool2d(2))


class WadaLevelNet(nn.Module):
    """One small 2D CNN per (level, contrast) on five axial slabs, features concatenated with
    the brain-volume scalar into an age MLP (age mean and log-variance), after Wada et al.
    (2019).

    Args:
        in_channels: number of contrasts (e.g. 2 for T1w + T2w).
        levels: five axial slice indices (reference grid, axis 2 of the input tensor).
        channels: feature channels of the four 2D stages of each branch.
        n_scalars: scalar inputs (1: brain volume feature).
        slab: slices averaged around each level.
        age_scale: ages (months) are predicted as ``age_scale * output``.

    Inputs:
        x: (B, in_channels, 64, 64, 64) standardized images in reference space
        (the same input as :class:`~bids_infantage.models.nets.multitask_agenet.MultiTaskAgeNet`).
        scalars: (B, n_scalars).

    Returns:
        dict with ``age`` (B,) months, ``log_var`` (B,), ``features`` (B, F) of the branches,
        ``hidden`` (B, 64) of the age head; no segmentation or reconstruction heads.

    Examples:
        >>> net = WadaLevelNet(in_channels=2, levels=[10, 14, 24, 34, 44])
        >>> net(torch.zeros(3, 2, 64, 64, 64), torch.zeros(3, 1))["age"].shape
        torch.Size([3])
    """

    def __init__(self, in_channels: int, levels: Sequence[int] | None = None,
                 channels: Sequence[int] = (8, 16, 24, 32), n_scalars: int = 1, slab: int = 3,
                 age_scale: float = 12.0) -> None:
        super().__init__()
        self.levels = list(levels) if levels is not None else load_levels()
        if len(self.levels) != len(WADA_LEVELS):
            raise ValueError(f"need {len(WADA_LEVELS)} levels, got {self.levels}")
        self.slab = slab
        self.age_scale = age_scale
        self.branches = nn.ModuleList()
        for _ in range(len(self.levels) * in_channels):
            layers, cin = [], 1
            for cout in channels:
                layers.append(_block2d(cin, cout))
                cin = cout
            self.branches.append(nn.Sequential(*layers))
        n_feat = len(self.branches) * channels[-1]
        self.age_head = nn.Sequential(nn.Linear(n_feat + n_scalars, 64), nn.LeakyReLU(0.1),
                                      nn.Dropout(0.2), nn.Linear(64, 2))
        self.n_features = n_feat

    def forward(self, x: torch.Tensor, scalars: torch.Tensor) -> dict:
        half = self.slab // 2
        feats, k = [], 0
        for z in self.levels:
            slab = x[:, :, max(0, z - half):z + half + 1].mean(dim=2)  # (B, C, 64, 64)
            for c in range(x.shape[1]):
                f = self.branches[k](slab[:, c:c + 1])
                feats.append(f.mean(dim=(2, 3)))
                k += 1
        feats = torch.cat(feats, dim=1)
        hidden = self.age_head[:2](torch.cat([feats, scalars], dim=1))  # Linear + LeakyReLU
        out = self.age_head[2:](hidden)
        return {"age": out[:, 0] * self.age_scale, "log_var": out[:, 1] + 2.0, "features": feats,
                "hidden": hidden}


class WadaAgeRangeEnsemble(nn.Module):
    """The age-range ensemble of Wada et al. (2019) as one network: a
    :class:`WadaLevelNet` trained on 0-16 months (``young``) and one on 8-24 months (``old``),
    blended as :func:`blend_age_ranges` does (the old model's weight rises from 0 to 1 across
    8-16 months, at the mean of both predictions).

    Inputs and outputs are those of :class:`WadaLevelNet` (``age``, ``log_var`` of the blended
    variance), with ``features`` the age heads' hidden layers of both networks concatenated
    (B, 128: compact enough for the out-of-distribution distance of the calibration), plus
    ``age_young`` and ``age_old`` (B,) months and ``weight_old`` (B,) in [0, 1].

    Examples:
        >>> young = WadaLevelNet(in_channels=1, levels=[10, 14, 24, 34, 44])
        >>> old = WadaLevelNet(in_channels=1, levels=[10, 14, 24, 34, 44])
        >>> out = WadaAgeRangeEnsemble(young, old).eval()(torch.zeros(2, 1, 64, 64, 64), torch.zeros(2, 1))
        >>> sorted(out), out["features"].shape
        (['age', 'age_old', 'age_young', 'features', 'log_var', 'weight_old'], torch.Size([2, 128]))
    """

    def __init__(self, young: WadaLevelNet, old: WadaLevelNet) -> None:
        super().__init__()
        self.young = young
        self.old = old

    def forward(self, x: torch.Tensor, scalars: torch.Tensor) -> dict:
        y, o = self.young(x, scalars), self.old(x, scalars)
        lo, hi = OLD_RANGE[0], YOUNG_RANGE[1]
        w = torch.clamp(((y["age"] + o["age"]) / 2 - lo) / (hi - lo), 0.0, 1.0)
        var = (1 - w) * y["log_var"].exp() + w * o["log_var"].exp()
        return {"age": (1 - w) * y["age"] + w * o["age"], "log_var": var.log(),
                "features": torch.cat([y["hidden"], o["hidden"]], dim=1),
                "age_young": y["age"], "age_old": o["age"], "weight_old": w}


def blend_age_ranges(young: np.ndarray, old: np.ndarray, var_young=None, var_old=None):
    """Combine the 0-16 and 8-24 month models (Wada et al. 2019 age-range ensemble).

    The weight of the older model rises linearly from 0 to 1 across the overlap (8-16
    months), evaluated at the mean of both predictions.

    Parameters
    ----------
    young, old : ndarray (N,)
        Predictions (months) of the young and old models.
    var_young, var_old : ndarray (N,), optional
        Their variances (months^2).

    Returns
    -------
    age : ndarray (N,); var : ndarray (N,) or None

    Examples:
        >>> blend_age_ranges(np.array([2.0, 12.0, 30.0]), np.array([4.0, 12.0, 22.0]))[0]
        array([ 2., 12., 22.])
    """
    young, old = np.asarray(young, float), np.asarray(old, float)
    lo, hi = OLD_RANGE[0], YOUNG_RANGE[1]
    w = np.clip(((young + old) / 2 - lo) / (hi - lo), 0.0, 1.0)
    age = (1 - w) * young + w * old
    var = None
    if var_young is not None and var_old is not None:
        var = (1 - w) * np.asarray(var_young) + w * np.asarray(var_old)
    return age, var


def main(argv=None) -> int:
    """Rebuild ``data/wada-levels.json`` from ``../shared/infant-asegs``."""
    from ...utils.data import data_path

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--shared", type=Path, default=Path("../shared"))
    p.add_argument("--out", type=Path, default=data_path("wada-levels.json"))
    args = p.parse_args(argv)
    ref = data_path("models") / "infantage-default" / "reference_mask.nii.gz"
    result = build_levels(args.shared, ref)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["levels"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
