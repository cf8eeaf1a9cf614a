"""Training batches: augmentation of standardized samples (contrast, mask shell, brain volume,
CSF painting) and their conversion to tensors with the model input normalization.
"""
from __future__ import annotations

import numpy as np

from ..transforms import volume_feature
from .recipes import input_normalization

#: Training data and settings handed to the member-training worker processes (set by
#: :func:`~.bundle_writer.train_bundle` before the workers fork; read by :func:`~.members._train_job`)
_JOB_DATA: dict = {}

#: SD of the log of the per-channel training gamma unless ``settings["input"]["gamma_sd"]``
#: says otherwise (gamma about 0.85-1.17)
GAMMA_SD = 0.08


def paint_csf(x, channels, ventricles, rng):
    """Paint cerebrospinal fluid into one standardized sample (numpy, in place).

    The BMEXInfant templates show no ventricular CSF contrast (see
    :func:`~bids_infantage.models.synthesis.asegs.build_ventricle_atlas`); real scans do. With
    probability 0.8 the ventricles of a random real infant (``ventricles`` (K, X, Y, Z),
    partial volume in [0, 1], sharpened or softened by a random power) are painted, and with
    probability 0.5 an extra-axial CSF layer on the brain mask's outer voxel shell: T2w
    towards 0.95-1.15 (CSF is the brightest tissue on T2w, about the 99th percentile), T1w
    towards 0.05-0.25, the T1w/T2w ratio towards their quotient.

    Parameters
    ----------
    x : ndarray (C, X, Y, Z)
        One sample's channels, 99th-percentile standardized (0 outside the brain).
    channels : sequence of int
        Index of each channel of ``x`` in :data:`~bids_infantage.models.transforms.CHANNELS`
        (0 T1w, 1 T2w, 2 ratio).
    """
    from scipy.ndimage import binary_erosion

    mask = np.any(x > 0, axis=0)
    w = np.zeros(mask.shape, np.float32)
    if ventricles is not None and len(ventricles) and rng.random() < 0.8:
        v = ventricles[int(rng.integers(len(ventricles)))]
        w = np.clip(v, 0, 1) ** rng.uniform(0.5, 2.0) * rng.uniform(0.7, 1.0)
    if rng.random() < 0.5:
        shell = mask & ~binary_erosion(mask)
        w = np.where(shell, np.maximum(w, rng.uniform(0.3, 0.9)), w)
    w = (w * mask).astype(np.float32)
    t1, t2 = rng.uniform(0.05, 0.25), rng.uniform(0.95, 1.15)
    target = {0: t1, 1: t2, 2: t1 / t2}
    for i, c in enumerate(channels):
        x[i] = (1 - w) * x[i] + w * target[int(c)]
    return x


def _augment(x, vol, rng, contrast: bool = False, channels=None, ventricles=None,
             gamma_sd: float = GAMMA_SD):
    """On-the-fly augmentation of a batch (numpy): L-R flip, shift, per-channel gamma
    (``exp(N(0, gamma_sd))``) and scale, noise, brain-volume jitter (+-3%).

    ``contrast=True`` (the transfer recipe, issue #14) adds what separates one template
    family, scanner or single scan from another at the same age: Gaussian blur (sigma up to
    1 voxel of 3 mm; population averages are blurrier than single scans), local contrast
    scaled by 0.6-1.4 around a 6 mm smooth version, a brain-mask shell of one voxel removed
    (another skull-strip convention), and brain-volume jitter of +-20%.

    ``ventricles`` (K, X, Y, Z) paints CSF into each sample first (:func:`paint_csf`;
    ``channels``: each channel's index in
    :data:`~bids_infantage.models.transforms.CHANNELS`).
    """
    from scipy.ndimage import binary_erosion, gaussian_filter

    x = x.copy()
    for i in range(x.shape[0]):
        if ventricles is not None:
            paint_csf(x[i], channels, ventricles, rng)
        if rng.random() < 0.5:
            x[i] = x[i][..., ::-1]  # last array axis is x (left-right) in SimpleITK order
        shift = rng.integers(-2, 3, size=3)
        x[i] = np.roll(x[i], tuple(shift), axis=(1, 2, 3))
        if contrast:
            mask = np.any(x[i] > 0, axis=0)
            if rng.random() < 0.3:
                mask = binary_erosion(mask)
            for c in range(x.shape[1]):
                ch = x[i, c].astype(np.float32)
                if rng.random() < 0.5:
                    ch = gaussian_filter(ch, rng.uniform(0.3, 1.0))
                if rng.random() < 0.5:
                    smooth = gaussian_filter(ch, 2.0)
                    ch = smooth + rng.uniform(0.6, 1.4) * (ch - smooth)
                x[i, c] = np.clip(ch, 1e-3, None) * mask
        for c in range(x.shape[1]):
            m = x[i, c] > 0
            x[i, c][m] = np.clip(x[i, c][m], 0, None) ** np.exp(rng.normal(0, gamma_sd)) * rng.uniform(0.92, 1.08)
        x[i] += (rng.normal(0, rng.uniform(0, 0.03), x[i].shape) * (x[i] > 0)).astype(x.dtype)
    vol = vol * np.exp(rng.normal(0, 0.2 if contrast else 0.03, vol.shape))
    return np.ascontiguousarray(x), vol


def _batch_tensors(images, vols, idx, channels, rng=None, settings: dict | None = None):
    import torch

    from ..transforms import model_input

    spec = (settings or {}).get("input") or {}
    norm = input_normalization(settings or {})
    x = images[idx][:, channels].astype(np.float32)
    v = vols[idx].astype(np.float64)
    if rng is not None:
        x, v = _augment(x, v, rng, contrast=spec.get("augment") == "contrast", channels=channels,
                        ventricles=_JOB_DATA.get("ventricles") if spec.get("csf") else None,
                        gamma_sd=float(spec.get("gamma_sd", GAMMA_SD)))
    if norm["intensity"].startswith("rank"):
        x = np.stack([model_input(xi, norm) for xi in x])
    if norm["volume_feature"] == "none":
        s = np.zeros((len(v), 1), np.float32)
    else:
        s = np.asarray([[volume_feature(a)] for a in v], np.float32)
    return torch.from_numpy(x), torch.from_numpy(s)
