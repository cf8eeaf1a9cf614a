"""A synthetic head around a skull-stripped brain (test data for brain extraction)."""
from __future__ import annotations

import numpy as np

#: Layer outer distances from the brain surface (mm) and intensities relative to the brain's
#: 99th percentile, (T1w, T2w): cerebrospinal fluid, skull, scalp. Rough adult/infant values
#: (CSF T1-dark and T2-bright, cortical bone dark in both, scalp fat T1-bright).
HEAD_LAYERS = (
    ("csf", 2.5, (0.12, 1.00)),
    ("skull", 6.0, (0.04, 0.05)),
    ("scalp", 11.0, (0.85, 0.55)),
)


def add_synthetic_head(brain: np.ndarray, mask: np.ndarray, zooms_mm, contrast: str, *,
                       pad_mm: float = 16.0, noise: float = 0.02, seed: int = 0):
    """Wrap a skull-stripped brain in cerebrospinal fluid, skull and scalp.

    Each layer is a shell at a distance from the brain mask (:data:`HEAD_LAYERS`), with its
    thickness modulated by +-30% smooth random variation, constant intensity and Gaussian noise
    of ``noise`` times the brain's 99th percentile everywhere (air included). It tests that a
    brain-extraction method removes bright and dark tissue around the brain; it does not
    model real anatomy (eyes, neck, face, sinuses, dura, vessels), partial volume, a coil's
    bias field or motion.

    Parameters
    ----------
    brain : ndarray, shape (X, Y, Z)
        Skull-stripped image (0 outside ``mask``).
    mask : ndarray of bool, shape (X, Y, Z)
        Its brain mask.
    zooms_mm : 3 floats
        Voxel size (mm).
    contrast : {"T1w", "T2w"}
    pad_mm : float
        Zero padding added on every face (mm) before the layers are drawn.
    noise : float
        Noise standard deviation relative to the brain's 99th percentile.
    seed : int

    Returns
    -------
    head : ndarray, float32, shape (X + 2p, Y + 2p, Z + 2p)
        ``p = ceil(pad_mm / zoom)`` per axis.
    brain_mask : ndarray of bool, same shape
        The brain mask on the padded grid (the reference for Dice).
    pad : ndarray of int, shape (3,)
        Voxels added before each axis (shift the affine's origin by ``-pad * zoom``).

    Raises
    ------
    ValueError
        Unknown ``contrast`` or empty mask.
    """
    from scipy import ndimage

    if contrast not in ("T1w", "T2w"):
        raise ValueError(f"contrast must be 'T1w' or 'T2w', not {contrast!r}")
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the brain mask is empty")
    zooms = np.asarray(zooms_mm, float)
    pad = np.ceil(pad_mm / zooms).astype(int)
    brain = np.pad(np.asarray(brain, np.float32), [(p, p) for p in pad])
    mask = np.pad(mask, [(p, p) for p in pad])
    rng = np.random.default_rng(seed)
    scale = float(np.percentile(brain[mask], 99))
    dist = ndimage.distance_transform_edt(~mask, sampling=zooms)
    wobble = ndimage.gaussian_filter(rng.standard_normal(tuple(np.maximum(np.array(mask.shape) // 8, 2))), 1.0)
    wobble = ndimage.zoom(wobble / (np.abs(wobble).max() + 1e-6),
                          np.array(mask.shape) / np.array(wobble.shape), order=1)
    wobble = 1.0 + 0.3 * wobble[tuple(slice(0, s) for s in mask.shape)]
    head = brain.copy()
    inner = 0.0
    k = 0 if contrast == "T1w" else 1
    for _, outer, values in HEAD_LAYERS:
        shell = (~mask) & (dist > inner * wobble) & (dist <= outer * wobble)
        head[shell] = values[k] * scale
        inner = outer
    head += rng.normal(0.0, noise * scale, head.shape).astype(np.float32)
    return np.abs(head).astype(np.float32), mask, pad
