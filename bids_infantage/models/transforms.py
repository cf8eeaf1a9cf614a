"""Intensity standardization and the T1w/T2w ratio (MONAI style: array transform + dict wrapper).

These run on images already in the model's reference space (64^3 voxels of 3 mm), in
training and at inference alike.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

#: channel order of the model input stack
CHANNELS = ("T1w", "T2w", "ratio")


class StandardizeIntensity:
    """Divide an image by its 99th percentile inside the brain mask; 0 outside; clip to [0, 1.5].

    Intensities of clinical MRI carry no absolute calibration; a robust upper percentile puts
    every scan on a common scale while keeping the white/grey-matter contrast that encodes
    myelination.

    Args:
        percentile: percentile (0-100) inside the mask that maps to 1.0.

    Examples:
        >>> import numpy as np
        >>> img = np.arange(8, dtype=np.float32).reshape(2, 2, 2); mask = img > 0
        >>> out = StandardizeIntensity(percentile=100)(img, mask)
        >>> float(out.max()), float(out[0, 0, 0])
        (1.0, 0.0)
    """

    def __init__(self, percentile: float = 99.0, clip: float = 1.5) -> None:
        self.percentile = percentile
        self.clip = clip

    def __call__(self, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """img, mask: arrays of shape (X, Y, Z); returns float32 (X, Y, Z)."""
        mask = mask > 0
        vals = img[mask]
        scale = float(np.percentile(vals, self.percentile)) if vals.size else 0.0
        if scale <= 0:
            return np.zeros_like(img, dtype=np.float32)
        out = np.clip(img / scale, 0, self.clip) * mask
        return out.astype(np.float32)


class T1wT2wRatio:
    """T1w/T2w ratio map (Glasser & Van Essen, J Neurosci 2011) of standardized images.

    ``ratio = T1w / max(T2w, floor)`` inside the mask, clipped to [0, clip], 0 outside.
    Myelinating white matter is T1w-bright and T2w-dark, so the ratio amplifies its contrast
    (Park, Choi & Gho, JMRI 2026: the best single input for infant brain age).

    Examples:
        >>> import numpy as np
        >>> t1 = np.full((2, 2, 2), 0.8, np.float32); t2 = np.full((2, 2, 2), 0.4, np.float32)
        >>> float(T1wT2wRatio()(t1, t2, t1 > 0)[0, 0, 0])
        2.0
    """

    def __init__(self, floor: float = 0.05, clip: float = 4.0) -> None:
        self.floor = floor
        self.clip = clip

    def __call__(self, t1w: np.ndarray, t2w: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """t1w, t2w, mask: (X, Y, Z) standardized images; returns float32 (X, Y, Z)."""
        ratio = t1w / np.maximum(t2w, self.floor)
        return (np.clip(ratio, 0, self.clip) * (mask > 0)).astype(np.float32)


class ModelInputd:
    """Dictionary transform: ``{"T1w", "T2w", "mask"}`` (reference space) -> ``"image"`` stack.

    Missing modalities (None) give zero channels; the ratio needs both.

    Args:
        keys: names of the T1w, T2w and mask entries.

    Returns a copy of the dict with ``"image"``: float32 array (3, X, Y, Z) in
    :data:`CHANNELS` order.
    """

    def __init__(self, keys: Sequence[Hashable] = ("T1w", "T2w", "mask")) -> None:
        self.keys = keys
        self.standardize = StandardizeIntensity()
        self.ratio = T1wT2wRatio()

    def __call__(self, data: Mapping) -> dict:
        k1, k2, km = self.keys
        mask = np.asarray(data[km]) > 0
        zeros = np.zeros(mask.shape, np.float32)
        t1 = self.standardize(np.asarray(data[k1]), mask) if data.get(k1) is not None else None
        t2 = self.standardize(np.asarray(data[k2]), mask) if data.get(k2) is not None else None
        ratio = self.ratio(t1, t2, mask) if t1 is not None and t2 is not None else zeros
        out = dict(data)
        out["image"] = np.stack([t1 if t1 is not None else zeros, t2 if t2 is not None else zeros, ratio])
        return out


class RankStandardize:
    """Histogram (rank) standardization: each brain voxel's intensity becomes its quantile
    among the voxels of the brain mask's core (the mask eroded by ``erode_voxels``).

    The output does not change under any increasing intensity transform (scale, gamma, a
    scanner's contrast curve), and the mask's edge, where the skull-strip convention decides
    how much extra-axial CSF is kept, does not set the scale (unlike
    :class:`StandardizeIntensity`'s 99th percentile, which CSF dominates on T2w). The spatial
    pattern of which regions are brighter than which, the order in which white matter
    myelinates, is what remains. After the piecewise-linear histogram standardization of
    Nyul & Udupa (Magn Reson Med 1999), taken to one landmark per core voxel.

    Args:
        erode_voxels: erosion of the mask (voxels of the 3 mm grid) that defines the core.

    Examples:
        >>> import numpy as np
        >>> img = np.zeros((5, 5, 5), np.float32); img[1:4, 1:4, 1:4] = np.arange(27).reshape(3, 3, 3) + 1
        >>> out = RankStandardize(erode_voxels=0)(img, img > 0)
        >>> round(float(out.max()), 3), bool(np.allclose(RankStandardize(erode_voxels=0)(img ** 2 * 3, img > 0), out))
        (0.981, True)
    """

    def __init__(self, erode_voxels: int = 1) -> None:
        self.erode_voxels = erode_voxels

    def __call__(self, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """img, mask: arrays of shape (X, Y, Z); returns float32 (X, Y, Z) in [0, 1], 0
        outside the mask."""
        from scipy.ndimage import binary_erosion

        mask = np.asarray(mask) > 0
        core = binary_erosion(mask, iterations=self.erode_voxels) if self.erode_voxels else mask
        if core.sum() < 64:  # tiny masks: the whole mask
            core = mask
        ref = np.sort(np.asarray(img, np.float32)[core])
        out = np.zeros(mask.shape, np.float32)
        if ref.size == 0:
            return out
        vals = np.asarray(img, np.float32)[mask]
        lo = np.searchsorted(ref, vals, side="left")
        hi = np.searchsorted(ref, vals, side="right")
        out[mask] = (lo + hi) / (2.0 * ref.size)  # mid-rank: ties get one value
        return out


def model_input(image: np.ndarray, normalization: dict | None) -> np.ndarray:
    """Model input of a bundle from the pipeline's standardized stack.

    Parameters
    ----------
    image : ndarray, shape (C, X, Y, Z)
        The channels of a configuration taken from :class:`ModelInputd`'s ``"image"`` (T1w,
        T2w, ratio; 99th-percentile standardized, 0 outside the brain mask); the brain mask
        is where any channel is positive.
    normalization : dict or None
        A bundle's ``normalization``; ``"intensity": "rank"`` applies
        :class:`RankStandardize` to each non-empty channel (``rank_erode_voxels``, default 1),
        anything else returns the stack unchanged (99th-percentile bundles, the
        shipped default among them).

    Returns
    -------
    ndarray, float32, shape (C, X, Y, Z)

    Notes
    -----
    With rank, an increasing transform applied to both images (scale, gamma) leaves every
    channel unchanged, the ratio included (it changes by a power), except where the
    99th-percentile stack is clipped (above 1.5, or a ratio beyond [0.05, 4]).
    """
    image = np.asarray(image, np.float32)
    if not normalization or not str(normalization.get("intensity", "")).startswith("rank"):
        return image
    rank = RankStandardize(int(normalization.get("rank_erode_voxels", 1)))
    mask = np.any(image > 0, axis=0)
    return np.stack([rank(ch, mask) if np.any(ch > 0) else np.zeros_like(ch) for ch in image])


#: model input configurations -> channel indices into :data:`CHANNELS`
CONFIGURATIONS = {
    "t1w": (0,),
    "t2w": (1,),
    "t1w+t2w": (0, 1),
    "ratio": (2,),
    "t1w+t2w+ratio": (0, 1, 2),
}


def reads_both_images(config: str) -> bool:
    """Whether an input configuration needs a T1w and a T2w (two image channels, or the
    T1w/T2w ratio)."""
    chans = CONFIGURATIONS[config]
    return 2 in chans or {0, 1} <= set(chans)


def volume_feature(volume_ml: float) -> float:
    """Scalar brain-size input of the network: ``log(volume_ml / 900)`` (volume in ml)."""
    return float(np.log(max(volume_ml, 1.0) / 900.0))


def tta_shifts(shift_voxels: int = 1) -> list[tuple[int, int, int]]:
    """Test-time translations (voxels of 3 mm): none, and +-``shift_voxels`` along each axis.

    Averaging the ensemble over these (each also left-right mirrored) makes the age less
    sensitive to sub-voxel differences of the normalization to the reference (the training
    augmentation shifts by up to 2 voxels, so these inputs are in distribution).

    Returns
    -------
    list of (dz, dy, dx)
        ``[(0, 0, 0)]`` for ``shift_voxels=0``, else 7 shifts in array (z, y, x) order.

    Examples
    --------
    >>> len(tta_shifts(1)), tta_shifts(0)
    (7, [(0, 0, 0)])
    """
    if not shift_voxels:
        return [(0, 0, 0)]
    shifts = [(0, 0, 0)]
    for axis in range(3):
        for sign in (-1, 1):
            s = [0, 0, 0]
            s[axis] = sign * int(shift_voxels)
            shifts.append(tuple(s))
    return shifts


def tta_batch(x, shift_voxels: int = 1):
    """Test-time augmented copies of a batch.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, 64, 64, 64)
    shift_voxels : int
        See :func:`tta_shifts`.

    Returns
    -------
    torch.Tensor, shape (2 * S * B, C, 64, 64, 64)
        For each shift ``s`` of :func:`tta_shifts` (S of them) the shifted batch, then all of
        them mirrored left-right (last axis); copy ``k`` of sample ``b`` is row ``k * B + b``,
        and row ``b`` is the unmodified input.
    """
    import torch

    shifted = [torch.roll(x, s, dims=(2, 3, 4)) if any(s) else x for s in tta_shifts(shift_voxels)]
    xs = torch.cat(shifted)
    return torch.cat([xs, torch.flip(xs, dims=(4,))])
