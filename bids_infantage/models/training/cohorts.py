"""Training data in the cache: the reference mask, the synthesis atlas or label fields, and the
synthetic training and validation cohorts (generated once, then loaded).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...utils.errors import InputError

LOGGER = logging.getLogger("bids_infantage.training")


def ensure_reference(cache: Path, shared: Path) -> Path:
    """``cache/ref.nii.gz``, the model reference mask
    (:func:`~bids_infantage.models.synthesis.templates.build_reference_mask`), built when missing."""
    import SimpleITK as sitk

    from ..synthesis.templates import build_reference_mask

    ref_path = Path(cache) / "ref.nii.gz"
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    if not ref_path.exists():
        sitk.WriteImage(build_reference_mask(Path(shared) / "templateflow"), str(ref_path))
    return ref_path


def ensure_generator(cache: Path, shared: Path) -> dict:
    """Reference mask and synthesis atlas in ``cache`` (built from ``shared`` when missing).

    Returns
    -------
    dict
        Keyword arguments of :func:`~bids_infantage.models.dataset.generate_cohort`:
        ``atlas_path``, ``reference_path``, ``masks_tsv``.
    """
    import SimpleITK as sitk

    from ..synthesis.atlas import ATLAS_VERSION, Atlas, build_atlas

    cache, shared = Path(cache), Path(shared)
    tf_home = shared / "templateflow"
    ref_path = ensure_reference(cache, shared)
    atlas_path = cache / "atlas.npz"
    if atlas_path.exists() and Atlas.saved_version(atlas_path) != ATLAS_VERSION:
        LOGGER.warning("%s: made by an older build_atlas (version %d, now %d); rebuilding it",
                       atlas_path, Atlas.saved_version(atlas_path), ATLAS_VERSION)
        atlas_path.unlink()
    if not atlas_path.exists():
        build_atlas(tf_home, sitk.ReadImage(str(ref_path))).save(atlas_path)
    return dict(atlas_path=atlas_path, reference_path=ref_path,
                masks_tsv=shared / "bcp-brainmasks" / "masks.tsv")


def cohort_dirs(cache: Path, settings: dict) -> tuple[Path, Path]:
    """Folders of the training and validation cohorts in ``cache``: ``train``, ``val`` for the
    template-blend synthesis, ``labels-train``, ``labels-val`` for ``settings["synthesis"]
    == "labels"``, ``milestones-train``, ``milestones-val`` for ``"milestones"``."""
    synthesis = settings.get("synthesis")
    prefix = f"{synthesis}-" if synthesis in ("labels", "milestones") else ""
    lo, hi = training_age_range(settings)
    if (lo, hi) != DEFAULT_TRAINING_AGES:  # e.g. milestones-ages0-30-train
        prefix += f"ages{lo:g}-{hi:g}-"
    return Path(cache) / f"{prefix}train", Path(cache) / f"{prefix}val"


#: Ages (months) of the synthetic training and validation samples unless the settings'
#: ``training_age_range_months`` says otherwise: the model's range
DEFAULT_TRAINING_AGES = (0.0, 24.0)


def training_age_range(settings: dict) -> tuple[float, float]:
    """(low, high) months of the synthetic samples: ``settings["training_age_range_months"]``,
    default :data:`DEFAULT_TRAINING_AGES`. A range beyond the model's 0-24 months (the
    ``infant-asegs`` reach 38 months) was meant to lift the pull towards the middle that an
    age range ending at 24 gives its top; measured on tpl-UNCBCP4DInfant it shifted every age
    up instead (model card, issue #14). Older predictions are flagged out of range by the
    bundle, whose ``age_range_months`` stays 0-24.

    Raises
    ------
    InputError
        The range is not two increasing numbers within -3 to 38 months.
    """
    value = settings.get("training_age_range_months")
    if value is None:
        return DEFAULT_TRAINING_AGES
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not (-3.0 <= lo < hi <= 38.0):
        raise InputError(f"training_age_range_months {value!r}: give [low, high] months with "
                         "-3 <= low < high <= 38, e.g. [0, 30]")
    return lo, hi


def ensure_label_fields(cache: Path, shared: Path) -> dict:
    """Reference mask and label fields
    (:func:`~bids_infantage.models.label_synthesis.fields.build_label_fields`) in ``cache``,
    built from ``shared`` when missing or of another version. Returns the keyword arguments
    of ``generate_label_cohort``."""
    import SimpleITK as sitk

    from ..label_synthesis.fields import LABEL_SYNTHESIS_VERSION, build_label_fields

    ref_path = ensure_reference(cache, shared)
    fields_path = Path(cache) / "fields.npz"
    if fields_path.exists() and int(np.load(fields_path)["version"]) != LABEL_SYNTHESIS_VERSION:
        LOGGER.warning("%s: made by label synthesis version %d, now %d; rebuilding it",
                       fields_path, int(np.load(fields_path)["version"]), LABEL_SYNTHESIS_VERSION)
        fields_path.unlink()
    if not fields_path.exists():
        build_label_fields(shared / "templateflow", shared / "infant-asegs",
                           sitk.ReadImage(str(ref_path))).save(fields_path)
    return dict(fields_path=fields_path, reference_path=ref_path,
                masks_tsv=Path(shared) / "bcp-brainmasks" / "masks.tsv")


def ensure_milestone_anatomy(cache: Path, fields_path: Path) -> Path:
    """``milestone-anatomy.npz`` in ``cache``
    (:func:`~bids_infantage.models.label_synthesis.milestones.milestone_anatomy` of the label
    fields), built when missing or older than the fields. Returns its path."""
    from ..label_synthesis.fields import LabelFields
    from ..label_synthesis.milestones import milestone_anatomy

    path = Path(cache) / "milestone-anatomy.npz"
    if not path.exists() or path.stat().st_mtime < Path(fields_path).stat().st_mtime:
        np.savez_compressed(path, **milestone_anatomy(LabelFields.load(fields_path)))
    return path


def build_data(cache: Path, shared: Path, settings: dict, nprocs: int) -> tuple[dict, dict]:
    """Reference, atlas (or label fields) and the synthetic cohorts (cached)."""
    from ..dataset import generate_cohort, load_cohort

    strata = settings.get("age_strata") or {}
    train_dir, val_dir = cohort_dirs(cache, settings)
    if settings.get("synthesis") in ("labels", "milestones"):
        from ..label_synthesis.cohort import generate_label_cohort

        kw = dict(ensure_label_fields(cache, shared), nprocs=nprocs)
        if settings.get("synthesis") == "milestones":
            kw["anatomy_path"] = ensure_milestone_anatomy(cache, kw["fields_path"])
        kw["age_range"] = training_age_range(settings)
        val = generate_label_cohort(val_dir, n=settings["n_val"], seed=settings["seed_val"],
                                    strata=strata.get("val"), **kw)
        train = generate_label_cohort(train_dir, n=settings["n_train"],
                                      seed=settings["seed_train"], strata=strata.get("train"), **kw)
        return load_cohort(train), load_cohort(val)
    if training_age_range(settings) != DEFAULT_TRAINING_AGES:
        raise InputError(f"training_age_range_months {settings['training_age_range_months']!r}: "
                         "the template-blend synthesis has templates for 0-24 months only; "
                         "use --recipe labels or milestones for another range")
    kw = dict(ensure_generator(cache, shared), nprocs=nprocs)
    val = generate_cohort(val_dir, n=settings["n_val"], seed=settings["seed_val"],
                          strata=strata.get("val"), **kw)
    train = generate_cohort(train_dir, n=settings["n_train"], seed=settings["seed_train"],
                            strata=strata.get("train"), **kw)
    return load_cohort(train), load_cohort(val)


def _data_provenance(settings: dict, train_dir: Path) -> dict:
    """``bundle.json`` ``data_provenance``: what the synthetic cohorts were made from."""
    from ..dataset import cohort_generator

    generator = cohort_generator(train_dir) or {}
    out = {"templates": "tpl-BMEXInfant cohorts 1-5 (0, 6, 9, 12, 24 months), MIT, "
                        "DBC-Lab/Brain_MRI_Enhancement b47e31f",
           "brain_volumes": "206 BCP brain masks (masks.tsv), MIT"}
    if training_age_range(settings) != DEFAULT_TRAINING_AGES:
        out["training_ages_months"] = list(training_age_range(settings))
    if settings.get("synthesis") in ("labels", "milestones"):
        out.update({"label_maps": "infant-asegs: aseg label maps of 12 single infants "
                                  "(0-38 months), Apache-2.0",
                    "synthesis": "bids_infantage.models.label_synthesis",
                    "label_synthesis_version": generator.get("label_synthesis_version")})
        if settings.get("synthesis") == "milestones":
            out.update({"templates": "tpl-BMEXInfant: the reference brain mask only",
                        "contrast": "published myelination milestones (Barkovich et al. 1988)",
                        "synthesis": "bids_infantage.models.label_synthesis.milestones",
                        "milestone_synthesis_version":
                            generator.get("milestone_synthesis_version")})
    else:
        out.update({"synthesis": "bids_infantage.models.synthesis",
                    "synthesis_atlas_version": generator.get("atlas_version", 1)})
    return out
