"""Training data in the cache: the reference mask, the synthesis atlas or label fields, and the
synthetic training and validation cohorts (generated once, then loaded).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...utils.errors import InputError
from ..dataset import MODEL_AGE_RANGE_MONTHS

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
    == "labels"``, ``milestones-train``, ``milestones-val`` for ``"milestones"``; for
    :data:`MIXED_SYNTHESIS` those of its first part (all parts: :func:`cohort_parts`)."""
    return cohort_parts(cache, settings)[0][1:]


#: ``settings["synthesis"]`` of a cohort drawn from the milestone synthesis and the template
#: blend, half each unless ``settings["mixed_samples"]`` gives the counts (issue #14): the
#: milestones carry the age in the order in which regions myelinate, on real anatomy; the
#: template-blend samples keep the BMEXInfant images (the demo) in family
MIXED_SYNTHESIS = "milestones+templates"


#: Values of ``settings["synthesis"]`` (absent: ``"templates"``, the template blend)
SYNTHESES = ("templates", "labels", "milestones", MIXED_SYNTHESIS)


def cohort_parts(cache: Path, settings: dict) -> list[tuple[str, Path, Path]]:
    """(synthesis, training folder, validation folder) of each part of the cohorts in ``cache``:
    one part, or the two halves of :data:`MIXED_SYNTHESIS` (milestones first). Folders as
    :func:`cohort_dirs`: a part's folders are those it has on its own, so a mixed run reuses
    the cohorts of the milestone and the default recipes.

    Raises
    ------
    InputError
        ``settings["synthesis"]`` is none of :data:`SYNTHESES`.
    """
    synthesis = settings.get("synthesis") or "templates"
    if synthesis not in SYNTHESES:
        raise InputError(f"synthesis {synthesis!r}: give one of {', '.join(SYNTHESES)}")
    parts = synthesis.split("+") if synthesis == MIXED_SYNTHESIS else [synthesis]
    lo, hi = training_age_range(settings)
    out = []
    for part in parts:
        prefix = f"{part}-" if part in ("labels", "milestones") else ""
        if (lo, hi) != DEFAULT_TRAINING_AGES:  # e.g. milestones-ages0-30-train
            prefix += f"ages{lo:g}-{hi:g}-"
        out.append((part, Path(cache) / f"{prefix}train", Path(cache) / f"{prefix}val"))
    return out


#: Ages (months) of the synthetic training and validation samples unless the settings'
#: ``training_age_range_months`` says otherwise: the model's range
DEFAULT_TRAINING_AGES = MODEL_AGE_RANGE_MONTHS


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
    """Reference, atlas (or label fields) and the synthetic cohorts (cached). With
    :data:`MIXED_SYNTHESIS`, ``n_train // 2`` and ``n_val // 2`` samples of each part (the
    first samples of each part's own cohort), stacked; ``settings["mixed_samples"]``
    (``{part: [n_train, n_val]}``) sets a part's numbers instead (a template-blend sample
    goes through the full preprocessing, about 10 s on one core, a milestone one about 1 s).

    Raises
    ------
    InputError
        ``training_age_range_months`` other than 0-24 with the template blend,
        or ``mixed_samples`` not two counts within a part's age strata.
    """
    from ..dataset import generate_cohort, load_cohort

    strata = settings.get("age_strata") or {}
    parts = cohort_parts(cache, settings)
    share = len(parts)
    if any(p == "templates" for p, _, _ in parts) and \
            training_age_range(settings) != DEFAULT_TRAINING_AGES:
        raise InputError(f"training_age_range_months {settings['training_age_range_months']!r}: "
                         "the template-blend synthesis has templates for 0-24 months only; "
                         "use --recipe labels or milestones for another range")
    counts = {part: _part_counts(settings, part, share, strata) for part, _, _ in parts}
    train_paths, val_paths = [], []
    for part, train_dir, val_dir in parts:
        n_train, n_val = counts[part]
        if part in ("labels", "milestones"):
            from ..label_synthesis.cohort import generate_label_cohort

            kw = dict(ensure_label_fields(cache, shared), nprocs=nprocs)
            if part == "milestones":
                kw["anatomy_path"] = ensure_milestone_anatomy(cache, kw["fields_path"])
            kw["age_range"] = training_age_range(settings)
            gen = generate_label_cohort
        else:
            kw, gen = dict(ensure_generator(cache, shared), nprocs=nprocs), generate_cohort
        val_paths += gen(val_dir, n=n_val, seed=settings["seed_val"], strata=strata.get("val"), **kw)
        train_paths += gen(train_dir, n=n_train, seed=settings["seed_train"],
                           strata=strata.get("train"), **kw)
    return load_cohort(train_paths), load_cohort(val_paths)


def _part_counts(settings: dict, part: str, share: int, strata: dict) -> tuple[int, int]:
    """(training, validation) samples of one part of the cohorts (:func:`build_data`). A count
    beyond its age strata is refused: the samples already in the folder were drawn for the
    strata, so more would not continue their ages (:func:`~bids_infantage.models.dataset.
    generate_cohort`)."""
    value = (settings.get("mixed_samples") or {}).get(part)
    limits = (strata.get("train") or settings["n_train"], strata.get("val") or settings["n_val"])
    if value is None:
        n_train, n_val = settings["n_train"] // share, settings["n_val"] // share
        if n_train > limits[0] or n_val > limits[1]:
            raise InputError(f"{n_train} training and {n_val} validation samples per cohort: the "
                             f"ages are drawn for {limits[0]} and {limits[1]}; give --n-train "
                             f"and --n-val up to {limits[0] * share} and {limits[1] * share}, or "
                             "set age_strata in --settings and use a new --cache-dir")
        return n_train, n_val
    try:
        n_train, n_val = (int(v) for v in value)
    except (TypeError, ValueError):
        n_train = n_val = -1
    if not (0 < n_train <= limits[0] and 0 < n_val <= limits[1]):
        raise InputError(f"mixed_samples {part}: {value!r}: give [training, validation] sample "
                         f"counts from 1 to the age strata ({limits[0]}, {limits[1]})")
    return n_train, n_val


def _per_part(cache: Path, settings: dict, read):
    """``read(training folder)`` of the one part of the cohorts, or ``{part: read(folder)}``
    of each part of :data:`MIXED_SYNTHESIS`."""
    parts = cohort_parts(cache, settings)
    if len(parts) == 1:
        return read(parts[0][1])
    return {part: read(train_dir) for part, train_dir, _ in parts}


def cohort_record(cache: Path, settings: dict) -> dict | None:
    """What the training cohort was drawn from, for the member fingerprint: the training
    folder's ``generator.json`` (:func:`~bids_infantage.models.dataset.cohort_generator`), or
    for :data:`MIXED_SYNTHESIS` ``{"generator": "milestones+templates", "parts": {part:
    generator.json}}``."""
    from ..dataset import cohort_generator

    record = _per_part(cache, settings, cohort_generator)
    if settings.get("synthesis") != MIXED_SYNTHESIS:
        return record
    return {"generator": MIXED_SYNTHESIS, "parts": record}


def cohort_preprocessing_record(cache: Path, settings: dict) -> dict | None:
    """The preprocessing the training samples went through, for the member fingerprint and
    ``bundle.json``: the training folder's ``preprocessing.json``
    (:func:`~bids_infantage.models.dataset.cohort_preprocessing`), or for
    :data:`MIXED_SYNTHESIS` ``{part: preprocessing.json}`` (a label or milestone sample records
    the residuals that stand in for N4, registration and normalization, a template-blend
    sample the parameters of the full preprocessing)."""
    from ..dataset import cohort_preprocessing

    return _per_part(cache, settings, cohort_preprocessing)


def _data_provenance(settings: dict, train_dir: Path) -> dict:
    """``bundle.json`` ``data_provenance``: what the synthetic cohorts were made from
    (``train_dir``: the training folder of :func:`cohort_dirs`)."""
    from ..dataset import cohort_generator

    generator = cohort_generator(train_dir) or {}
    templates = ("tpl-BMEXInfant cohorts 1-5 (0, 6, 9, 12, 24 months), MIT, "
                 "DBC-Lab/Brain_MRI_Enhancement b47e31f")
    out = {"templates": templates, "brain_volumes": "206 BCP brain masks (masks.tsv), MIT"}
    if training_age_range(settings) != DEFAULT_TRAINING_AGES:
        out["training_ages_months"] = list(training_age_range(settings))
    parts = {part: d for part, d, _ in cohort_parts(Path(train_dir).parent, settings)}
    if "labels" in parts or "milestones" in parts:
        out.update({"label_maps": "infant-asegs: aseg label maps of 12 single infants "
                                  "(0-38 months), Apache-2.0",
                    "synthesis": "bids_infantage.models.label_synthesis",
                    "label_synthesis_version": generator.get("label_synthesis_version")})
        if "milestones" in parts:
            out.update({"templates": "tpl-BMEXInfant: the reference brain mask only",
                        "contrast": "published myelination milestones (Barkovich et al. 1988)",
                        "synthesis": "bids_infantage.models.label_synthesis.milestones",
                        "milestone_synthesis_version":
                            generator.get("milestone_synthesis_version")})
    if "templates" in parts:
        out.update({"synthesis": "bids_infantage.models.synthesis",
                    "synthesis_atlas_version":
                        (cohort_generator(parts["templates"]) or {}).get("atlas_version", 1)})
        if len(parts) > 1:  # MIXED_SYNTHESIS
            counts = {part: (settings.get("mixed_samples") or {}).get(part)
                      or [settings["n_train"] // 2, settings["n_val"] // 2] for part in parts}
            n = {part: f"{counts[part][0]} training, {counts[part][1]} validation samples"
                 for part in parts}
            out.update({"templates": f"{templates}: the template-blend samples "
                                     f"({n['templates']}), and the reference brain mask",
                        "synthesis": "bids_infantage.models.label_synthesis.milestones "
                                     f"({n['milestones']}) and bids_infantage.models.synthesis "
                                     f"({n['templates']})"})
    return out
