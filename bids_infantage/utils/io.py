"""Atomic writes into the derivatives folder.

Every file the app puts into the output folder is first written whole to a hidden temporary
file beside its destination (``.<name>.<random>.partial``), flushed to disk, and then moved
over the destination with :func:`os.replace`, which is atomic on POSIX file systems. A run
that is killed therefore leaves either the previous file or the new one, never half of one;
at worst a hidden ``*.partial`` file remains, which the next run removes
(:func:`remove_partials`) and which BIDS validators ignore (hidden files).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def _temporary_beside(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX)
    return fd, Path(tmp)


def _commit(tmp: Path, path: Path, mode: int | None) -> None:
    if mode is None:  # mkstemp makes 0600 files; give outputs the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder is created if needed.
    text : str
        Content.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        The folder is not writable; ``path`` is then left as it was.
    """
    path = Path(path)
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fobj:
            fobj.write(text)
            fobj.flush()
            os.fsync(fobj.fileno())
        _commit(tmp, path, None)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_copy(src, dest) -> Path:
    """Copy file ``src`` to ``dest`` atomically (content and permission bits of ``src``).

    ``src`` and ``dest`` may lie on different file systems (e.g. a work folder on scratch and
    the derivatives on a project volume): the copy goes to a hidden temporary file beside
    ``dest``, which then replaces ``dest``.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    OSError
        ``src`` cannot be read or the destination folder is not writable; ``dest`` is then
        left as it was.
    """
    src, dest = Path(src), Path(dest)
    fd, tmp = _temporary_beside(dest)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        _commit(tmp, dest, src.stat().st_mode & 0o777 | 0o200)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def remove_partials(folder, *, recursive: bool = True, pattern: str = "*",
                    min_age_s: float = 0.0) -> list[Path]:
    """Delete the hidden ``.*.partial`` files that an interrupted run left under ``folder``.

    Parameters
    ----------
    folder : Path
        Folder searched (with its subfolders when ``recursive``).
    pattern : str
        Only staging files of outputs whose name matches (glob), e.g. ``sub-01*``.
    min_age_s : float
        Only files not modified for this many seconds: a concurrent run's copy in progress
        (a shared top level) is left alone.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    import time

    removed = []
    glob = Path(folder).rglob if recursive else Path(folder).glob
    now = time.time()
    for tmp in glob(f".{pattern}{PARTIAL_SUFFIX}"):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime >= min_age_s:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        except OSError:  # removed meanwhile by the run that made it
            continue
    return removed


def write_nifti_reproducible(image, path) -> str:
    """Write a SimpleITK image as gzip NIfTI (level 9, zero mtime, no file name in the gzip
    header), so that a rerun writes the same bytes; returns the file's sha256."""
    import gzip
    import hashlib

    import SimpleITK as sitk

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "image.nii"
        sitk.WriteImage(image, str(raw))
        data = raw.read_bytes()
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh,
                                                compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return hashlib.sha256(path.read_bytes()).hexdigest()
