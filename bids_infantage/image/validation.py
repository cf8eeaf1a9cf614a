"""Image validation and reorientation to RAS: the checks every input image goes through.

Plain functions on files and nibabel images (no nipype); the nipype interface
:class:`bids_infantage.interfaces.images.ValidateImage` wraps :func:`load_validated`.
"""
from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import nibabel as nb
import numpy as np

from ..utils.errors import InputError

LOGGER = logging.getLogger("bids_infantage")


def _first_line(exc: BaseException) -> str:
    """An exception's message on one line (messages reach the user as one line)."""
    text = " ".join(str(exc).split())
    return text[:200] or exc.__class__.__name__


def _dangling_link_text(path: Path) -> str | None:
    """Target named by a link stored as a small text file when that target is missing."""
    try:
        if path.stat().st_size >= 1024:
            return None
        text = path.read_bytes()
        if text.startswith(b"\x1f\x8b") or b"\0" in text:
            return None
        line = text.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if line and "\n" not in line and line.endswith((".nii", ".nii.gz")):
        if not (path.parent / line).exists():
            return line
    return None


def fill_nonfinite(data: np.ndarray, finite: np.ndarray | None = None) -> np.ndarray:
    """Give each NaN/Inf voxel the value of the nearest finite voxel (Euclidean, in voxels).

    Outside the head this is the background; inside the brain, a neighbouring slice's tissue,
    so that NaN slices neither split the brain mask nor leave dark stripes for N4 and the model.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    finite : ndarray of bool, optional
        ``np.isfinite(data)``, if already known.

    Returns
    -------
    ndarray, float32, same shape

    >>> import numpy as np
    >>> d = np.ones((3, 3, 5), np.float32); d[:, :, 2] = np.nan
    >>> float(fill_nonfinite(d).sum())
    45.0
    """
    from scipy import ndimage

    finite = np.isfinite(data) if finite is None else finite
    if finite.all():
        return np.asarray(data, np.float32)
    idx = ndimage.distance_transform_edt(~finite, return_distances=False, return_indices=True)
    return np.asarray(data[tuple(idx)], np.float32)


#: Voxel size (mm) of the model's input grid (the bundles' ``geometry.spacing_mm``): an image
#: with coarser voxels carries less detail than the networks were trained on
MODEL_INPUT_SPACING_MM = 3.0


def check_affine(img, path) -> None:
    """Refuse a NIfTI image whose voxel-to-world mapping is degenerate.

    Checks the header's sform (when ``sform_code`` > 0) and qform (when ``qform_code`` > 0)
    fields for NaN/Inf, and the affine nibabel derives from them for NaN/Inf and a zero
    scale (|det| of the 3x3 part below 1e-6 mm^3; nibabel silently replaces zero voxel sizes
    by 1 mm).

    Parameters
    ----------
    img : nibabel.Nifti1Image or Nifti2Image
        Image (only the header is read).
    path : str or Path
        File named in the error.

    Raises
    ------
    InputError
        Degenerate sform, qform or affine.
    """
    hdr = img.header
    try:  # the header as stored: nibabel's checks on load replace a zero pixdim by 1
        from nibabel.openers import ImageOpener

        with ImageOpener(img.get_filename()) as fobj:
            hdr = type(img.header).from_fileobj(fobj, check=False)
    except Exception:  # noqa: BLE001 - in-memory image, or a header nibabel reads only fixed
        pass
    bad = []
    try:
        if int(hdr["sform_code"]) > 0:
            srow = np.concatenate([hdr["srow_x"], hdr["srow_y"], hdr["srow_z"]]).astype(float)
            if not np.all(np.isfinite(srow)) or abs(np.linalg.det(srow.reshape(3, 4)[:, :3])) < 1e-6:
                bad.append("sform")
        if int(hdr["qform_code"]) > 0:
            q = [hdr[k] for k in ("quatern_b", "quatern_c", "quatern_d",
                                  "qoffset_x", "qoffset_y", "qoffset_z")]
            q = np.asarray(q + list(hdr["pixdim"][1:4]), dtype=float)
            if not np.all(np.isfinite(q)) or np.any(np.asarray(hdr["pixdim"][1:4]) == 0):
                bad.append("qform")
    except (KeyError, ValueError):  # not a NIfTI header (e.g. MINC): the affine check below
        pass
    affine = np.asarray(img.affine, dtype=float)
    if not bad and (not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-6):
        bad.append("affine")
    if bad:
        raise InputError(
            f"{path}: the NIfTI header's {' and '.join(bad)} is degenerate (NaN/Inf or a zero "
            "voxel scale); fix the header (re-export with dcm2niix, or copy a valid qform to the "
            "sform, e.g. fslorient -copyqform2sform) and run again.")


def check_header(path: str | Path) -> None:
    """Pre-flight check of one input image's header (no voxel data read): refuse a
    degenerate sform/qform (:func:`check_affine`) before anything is written. Files that
    cannot be opened at all are left to :func:`load_validated`, which names the problem.

    Raises
    ------
    InputError
        Degenerate sform, qform or affine.
    """
    from ..utils.bids import resolve_link_file

    try:
        img = nb.load(str(resolve_link_file(Path(path))))
    except Exception:  # reported by load_validated in the session's own node
        return
    check_affine(img, path)


def load_validated(path: str | Path) -> tuple[nb.Nifti1Image, list[str]]:
    """Load a NIfTI image, check it is usable, and reorient it to RAS.

    Parameters
    ----------
    path : str or Path
        NIfTI-1/2 file (``.nii`` or ``.nii.gz``).

    Returns
    -------
    img : nibabel.Nifti1Image
        3D float32 image, shape (X, Y, Z), RAS+ orientation (``nibabel.as_closest_canonical``),
        voxel sizes in mm, non-finite voxels filled from the nearest finite voxel
        (:func:`fill_nonfinite`).
    warnings : list of str
        Fallbacks applied (NaN/Inf replaced, singleton 4th dimension dropped, ...) and
        warnings (anisotropic voxels, voxels coarser than :data:`MODEL_INPUT_SPACING_MM`).

    A link stored as a small text file (git without symlinks) is followed.

    Raises
    ------
    InputError
        Missing file or link target, unreadable or truncated file, not NIfTI, degenerate
        sform/qform (:func:`check_affine`), 4D with several volumes, all-zero image, or voxel
        size missing. The message names the file and says what to do.
    """
    from ..utils.bids import resolve_link_file

    path = Path(path)
    warnings: list[str] = []
    target = resolve_link_file(path)
    if target != path:
        LOGGER.info("%s: link stored as a text file, followed to %s", path, target)
    if not target.is_file():
        raise InputError(f"{path}: does not exist (or is a broken link); check the path and run again.")
    dangling = _dangling_link_text(target)
    if dangling:
        raise InputError(
            f"{path}: is a link stored as a text file whose target {dangling} does not exist; "
            "fetch the data (e.g. datalad get / git annex get) or restore the target and run again."
        )
    try:
        img = nb.load(str(target))
        check_affine(img, path)
        data = np.asanyarray(img.dataobj)
    except InputError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise InputError(
            f"{path}: cannot be read ({exc.__class__.__name__}: {_first_line(exc)}); the file is "
            "truncated or corrupted: re-export it from DICOM (e.g. dcm2niix) and run again."
        ) from None
    except nb.filebasedimages.ImageFileError:
        raise InputError(
            f"{path}: is not a NIfTI image; convert it with dcm2niix (or remove it from the "
            "dataset) and run again."
        ) from None
    except Exception as exc:  # nibabel raises many kinds for garbage input
        raise InputError(
            f"{path}: cannot be read as NIfTI ({_first_line(exc)}); re-export it and run again."
        ) from None

    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
        warnings.append("singleton 4th dimension dropped")
    if data.ndim != 3:
        raise InputError(
            f"{path}: has {data.ndim} dimensions {tuple(data.shape)}; an anatomical image must be a "
            "single 3D volume: split the series (e.g. fslsplit) and keep one run."
        )
    if min(data.shape) < 8:
        raise InputError(f"{path}: shape {tuple(data.shape)} is too small for a brain image; give the "
                         "full anatomical volume (at least 8 voxels along each axis).")
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    if not np.all(np.isfinite(zooms)) or np.any(zooms <= 0):
        raise InputError(f"{path}: voxel sizes {tuple(zooms)} are invalid; fix the NIfTI header.")
    data = np.asarray(data, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        raise InputError(f"{path}: every voxel is NaN or Inf; the image is empty: re-export it.")
    if not finite.all():
        n_bad = int((~finite).sum())
        data = fill_nonfinite(data, finite)
        warnings.append(f"{n_bad} NaN/Inf voxels filled from the nearest finite voxel")
    if not np.any(data != 0):
        raise InputError(f"{path}: every voxel is zero; the image is empty: re-export it.")
    if float(data.min()) < 0:
        data = np.clip(data, 0, None)
        warnings.append("negative intensities clipped to 0")
    if float(zooms.max() / zooms.min()) > 3.0:
        warnings.append(
            f"anisotropic voxels {tuple(np.round(zooms, 2))} mm: thick slices lower accuracy"
        )
    if float(zooms.max()) > MODEL_INPUT_SPACING_MM * 1.01:
        warnings.append(
            f"voxels {tuple(float(z) for z in np.round(zooms, 2))} mm are coarser than the model's "
            f"{MODEL_INPUT_SPACING_MM:g} mm input: the estimate is less reliable; give a "
            "higher-resolution image"
        )
    out = nb.Nifti1Image(data, img.affine)
    out.header.set_xyzt_units("mm")
    out = nb.as_closest_canonical(out)
    out.header.set_data_dtype(np.float32)
    return out, warnings
