"""Which bundle a ``--model`` names, and whether it is intact: the packaged default, pinned
by the sha256 of its ``bundle.json``; the resolution of a name or path; the integrity checks
run when a bundle is loaded (see :mod:`bids_infantage.models.bundle`); loading once per
process.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ...utils.checksums import sha256
from ...utils.errors import ModelBundleError

if TYPE_CHECKING:
    from .model_bundle import ModelBundle

DEFAULT_MODEL = "infantage-default"
#: sha256 of the packaged default's ``bundle.json`` (which holds the sha256 of its weights):
#: update it together with the bundle when the default model is retrained
DEFAULT_BUNDLE_SHA256 = "d1e595f19b64e5a9c42aee05ababd6d9eb6778a1ed8ce3752eade97059045864"


def resolve_bundle(name_or_path: str | Path | None) -> Path:
    """Folder of a bundle given its name (package data) or a path.

    Raises
    ------
    ModelBundleError
        When no ``bundle.json`` is found.
    """
    from ...utils.data import data_path

    candidate = Path(name_or_path or DEFAULT_MODEL)
    for folder in (candidate, data_path("models") / str(name_or_path or DEFAULT_MODEL)):
        if (folder / "bundle.json").is_file():
            return folder.resolve()
    raise ModelBundleError(
        f"model '{name_or_path}': no bundle.json found (looked in {candidate} and the package's "
        "data/models); pass --model with a bundle folder made by bids-infantage-train."
    )


def is_default_bundle(bundle_sha256: str) -> bool:
    """Whether a ``bundle.json`` sha256 is the packaged default's (:data:`DEFAULT_BUNDLE_SHA256`)."""
    return bundle_sha256 == DEFAULT_BUNDLE_SHA256


def verify_bundle(folder: Path, meta: dict, meta_path: Path, bundle_sha256: str) -> None:
    """Check a bundle's integrity (see :mod:`bids_infantage.models.bundle`).

    Parameters
    ----------
    folder : Path
        Bundle folder.
    meta : dict
        Its ``bundle.json``, read from ``meta_path``.
    bundle_sha256 : str
        sha256 of ``bundle.json``.

    Raises
    ------
    ModelBundleError
        The packaged default differs from :data:`DEFAULT_BUNDLE_SHA256`; ``files_sha256``
        is missing or does not list a file the bundle loads; a file is missing or its
        sha256 differs.
    """
    from ...utils.data import data_path

    packaged = (data_path("models") / DEFAULT_MODEL).resolve()
    if folder.resolve() == packaged and not is_default_bundle(bundle_sha256):
        raise ModelBundleError(
            f"{meta_path}: the packaged default model was modified (bundle.json sha256 "
            f"{bundle_sha256[:12]}, expected {DEFAULT_BUNDLE_SHA256[:12]}); reinstall "
            "bids-infantage, or train into another folder (--out) and pass it with --model.")
    listed = meta.get("files_sha256")
    if not isinstance(listed, dict) or not listed:
        raise ModelBundleError(
            f"{meta_path}: no files_sha256 (the sha256 of every file the bundle loads); "
            "use a bundle written by bids-infantage-train.")
    needed = [meta.get("geometry", {}).get("reference")]
    needed += [c.get("file") for c in meta.get("configurations", {}).values()]
    unlisted = sorted(n for n in needed if n and n not in listed)
    if unlisted:
        raise ModelBundleError(
            f"{meta_path}: files_sha256 does not list {', '.join(unlisted)}; use a bundle "
            "written by bids-infantage-train.")
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise ModelBundleError(f"{path}: missing from the model bundle; reinstall it.")
        if sha256(path) != digest:
            raise ModelBundleError(
                f"{path}: sha256 does not match bundle.json (corrupted or replaced); "
                "reinstall the package or retrain with bids-infantage-train."
            )


@lru_cache(maxsize=4)
def load_bundle(name_or_path: str | None = None, verify: bool = True) -> ModelBundle:
    """Load (once per process) the bundle named or at the given path."""
    from .model_bundle import ModelBundle

    return ModelBundle(resolve_bundle(name_or_path), verify=verify)
