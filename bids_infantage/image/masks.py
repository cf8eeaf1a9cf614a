"""Brain masks of images: detection of skull-stripped inputs, the mask of a skull-stripped
image, mask QC and brain volume.

Plain functions on numpy arrays and SimpleITK images (no nipype); the nipype interface
:class:`bids_infantage.interfaces.brainmask.BrainMask` wraps them.
"""
from __future__ import annotations

import numpy as np

#: Brain-mask volumes of the 206 real BCP infants, 0-24 months (``bcp-brainmasks/masks.tsv``):
#: smallest and largest, ml.
BCP_VOLUME_RANGE_ML = (355.8, 1413.9)
#: A mask outside BCP_VOLUME_RANGE_ML widened by these factors is flagged: other skull-strip
#: conventions give masks 13-28% smaller or larger than BCP's at the same age.
VOLUME_TOLERANCE = (0.75, 1.30)
#: Flag a mask whose second-largest piece exceeds this fraction of the largest.
MAX_SECOND_COMPONENT = 0.05
#: Flag a mask whose filled holes exceed this fraction of its volume.
MAX_HOLE_FRACTION = 0.02


def border_background(data: np.ndarray) -> float:
    """Background intensity of an image: the most frequent value on the six faces of its grid.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
        Finite intensities.

    Returns
    -------
    float
        The mode of the face voxels (0 for a skull-stripped image written with a zero
        background, 16 for one written with an offset; for a head with noisy air, the mode of
        the noise, which then covers few voxels).

    >>> import numpy as np
    >>> d = np.full((10, 10, 10), 16.0); d[3:7, 3:7, 3:7] = 500
    >>> border_background(d)
    16.0
    """
    faces = np.concatenate([f.ravel() for f in (data[0], data[-1], data[:, 0], data[:, -1],
                                                 data[:, :, 0], data[:, :, -1])])
    values, counts = np.unique(faces, return_counts=True)
    return float(values[np.argmax(counts)])


def background_voxels(data: np.ndarray, background: float) -> np.ndarray:
    """Voxels exactly at the background level.

    Returns
    -------
    ndarray of bool, shape of ``data``
    """
    return data == background


def looks_skull_stripped(data: np.ndarray, zooms_mm, background: float | None = None) -> bool:
    """Tell whether an image is already skull-stripped.

    Rule (documented in docs/usage.md), with the background being the mode of the grid's faces
    (:func:`border_background`), whatever its value: at least 25% of voxels are background, at
    most 2% of each face is not, and the rest is 150-2500 ml (a brain, not a head).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
        Finite intensities.
    zooms_mm : sequence of 3 floats
    background : float, optional
        Background level (default: :func:`border_background`).

    >>> import numpy as np
    >>> d = np.zeros((40, 40, 40)); d[10:30, 10:30, 10:30] = 1
    >>> looks_skull_stripped(d, (3.0, 3.0, 3.0))
    True
    >>> looks_skull_stripped(d + 16, (3.0, 3.0, 3.0))
    True
    >>> rng = np.random.default_rng(0)
    >>> looks_skull_stripped(d + rng.random(d.shape), (3.0, 3.0, 3.0))
    False
    """
    if background is None:
        background = border_background(data)
    brain = ~background_voxels(data, background)
    if brain.mean() > 0.75:
        return False
    faces = [brain[0], brain[-1], brain[:, 0], brain[:, -1], brain[:, :, 0], brain[:, :, -1]]
    if max(float(np.mean(f)) for f in faces) > 0.02:
        return False
    volume_ml = brain.sum() * float(np.prod(zooms_mm)) / 1000.0
    return bool(150.0 <= volume_ml <= 2500.0)


def largest_component(binary):
    """Largest connected component of a binary SimpleITK image, and the size of the
    second-largest piece over the largest's (0 with one piece).

    Returns
    -------
    mask : SimpleITK.Image
        uint8.
    second : float
        Voxels of the second piece / voxels of the largest.

    An image without foreground gives an empty mask.
    """
    import SimpleITK as sitk

    cc = sitk.RelabelComponent(sitk.ConnectedComponent(binary), sortByObjectSize=True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(cc)
    sizes = sorted((stats.GetNumberOfPixels(lab) for lab in stats.GetLabels()), reverse=True)
    second = sizes[1] / sizes[0] if len(sizes) > 1 else 0.0
    return sitk.Cast(cc == 1, sitk.sitkUInt8), float(second)


def mask_from_skull_stripped(image, background: float = 0.0):
    """Brain mask of a skull-stripped image: voxels off the background, largest component,
    holes filled.

    Parameters
    ----------
    image : SimpleITK.Image
        Skull-stripped 3D image.
    background : float
        Its background level (0 for the templates and most tools).

    Returns
    -------
    SimpleITK.Image
        uint8 mask on the same grid.
    """
    return mask_and_qc_from_skull_stripped(image, background)[0]


def mask_and_qc_from_skull_stripped(image, background: float = 0.0):
    """:func:`mask_from_skull_stripped` and the QC measures of :func:`mask_qc_messages`.

    Returns
    -------
    mask : SimpleITK.Image
        uint8.
    qc : dict
        ``second_component`` (volume of the second-largest piece over the largest) and
        ``hole_fraction`` (filled holes over the mask's volume).
    """
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(image)
    brain = sitk.GetImageFromArray((~background_voxels(arr, background)).astype(np.uint8))
    brain.CopyInformation(image)
    mask, second = largest_component(brain)
    qc = {"second_component": second}
    closed = sitk.BinaryMorphologicalClosing(mask, [1, 1, 1])
    filled = sitk.BinaryFillhole(closed)
    n_closed = float(sitk.GetArrayViewFromImage(closed).sum())
    n_filled = float(sitk.GetArrayViewFromImage(filled).sum())
    qc["hole_fraction"] = (n_filled - n_closed) / max(n_filled, 1.0)
    return filled, qc


def mask_qc_messages(volume_ml: float, qc: dict) -> list[str]:
    """Plausibility messages of a brain mask (empty when it looks like an infant brain's).

    Checks: the volume against the real BCP infant masks (:data:`BCP_VOLUME_RANGE_ML` widened
    by :data:`VOLUME_TOLERANCE`), a second piece over :data:`MAX_SECOND_COMPONENT` of the
    largest (a cut brain or kept tissue), filled holes over :data:`MAX_HOLE_FRACTION`. The
    overlap with the model's reference mask is checked after normalization
    (``normalization_mask_dice``).

    >>> mask_qc_messages(700.0, {"second_component": 0.0, "hole_fraction": 0.0})
    []
    >>> mask_qc_messages(2100.0, {"second_component": 0.2, "hole_fraction": 0.0})[0][:40]
    'brain mask 2100 ml is outside the 267-18'
    """
    lo = BCP_VOLUME_RANGE_ML[0] * VOLUME_TOLERANCE[0]
    hi = BCP_VOLUME_RANGE_ML[1] * VOLUME_TOLERANCE[1]
    out = []
    if not lo <= volume_ml <= hi:
        out.append(f"brain mask {volume_ml:.0f} ml is outside the {lo:.0f}-{hi:.0f} ml of real "
                   "0-24-month infant masks (check the mask, or the subject is not an infant)")
    if qc.get("second_component", 0.0) > MAX_SECOND_COMPONENT:
        out.append(f"brain mask in pieces (second piece {100 * qc['second_component']:.0f}% of "
                   "the largest, which was kept): check the mask")
    if qc.get("hole_fraction", 0.0) > MAX_HOLE_FRACTION:
        out.append(f"brain mask had holes ({100 * qc['hole_fraction']:.1f}% of its volume "
                   "filled): check the mask")
    return out


def brain_volume_ml(mask) -> float:
    """Volume (ml) of a binary SimpleITK mask."""
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(mask)
    return float((arr > 0).sum() * np.prod(mask.GetSpacing()) / 1000.0)
