"""Training settings: the defaults of ``bids-infantage-train`` and the transfer and label recipes
(issue #14), and the model-input normalization they imply.
"""
from __future__ import annotations

DEFAULTS = {
    "n_train": 512,
    "n_val": 96,
    "seed_train": 1,
    "seed_val": 2,
    "epochs": 24,
    "batch_size": 8,
    "lr": 2e-3,
    "members": 4,
    "tta_shift_voxels": 1,
    "channels": [12, 24, 48, 64],
    "loss_weights": {"l1": 1.0, "nll": 0.2, "seg": 0.3, "recon": 0.3},
    # ages are drawn for 512 / 96 strata and a cohort is their prefix, so a smaller
    # --n-train / --n-val reuses the samples of the full one (generate_cohort)
    "age_strata": {"train": 512, "val": 96},
}


#: Model input and augmentation of the transfer recipe (issue #14): rank standardization, no
#: brain-size input, contrast augmentation
TRANSFER_RECIPE = {
    "input": {"intensity": "rank", "rank_erode_voxels": 1, "volume_feature": "none",
              "augment": "contrast"},
}

#: Label-driven synthesis (issue #14; :mod:`bids_infantage.models.label_synthesis`): anatomy
#: of the 12 real infants, contrast of the templates, 99th-percentile intensities, no brain-size
#: input, contrast augmentation
LABEL_RECIPE = {
    "synthesis": "labels",
    "input": {"volume_feature": "none", "augment": "contrast"},
}

#: Milestone-driven label synthesis (issue #14;
#: :mod:`bids_infantage.models.label_synthesis.milestones`): anatomy of the 12 real infants,
#: contrast from the published myelination milestones (no template intensities), inputs as
#: :data:`LABEL_RECIPE`; networks that pool the maximum of their features besides the average
#: and a lower learning rate: with the defaults (average pooling, 2e-3) the ``t1w`` and
#: ``t2w`` members stayed on the predict-the-mean plateau (model card, "Milestone-driven
#: synthesis")
MILESTONE_RECIPE = {
    "synthesis": "milestones",
    "input": dict(LABEL_RECIPE["input"]),
    "pooling": "mean+max",
    "lr": 5e-4,
}


#: The shipped default's recipe (issue #14; model card, "Validation and transfer"): the networks
#: and inputs of :data:`MILESTONE_RECIPE`, trained on 512 milestone samples stacked with 64
#: template-blend samples (validation: 96 + 96). A larger template share (128) made ``t1w``
#: read the other template family 3-6 months too old; without template samples ``t1w`` read
#: the BMEXInfant templates 6.3 months off (MAE). Two members per configuration.
MIXED_RECIPE = dict(
    MILESTONE_RECIPE,
    synthesis="milestones+templates",
    n_train=576,
    n_val=192,
    mixed_samples={"milestones": [512, 96], "templates": [64, 96]},
    members=2,
)

#: ``bids-infantage-train --recipe``: the settings each recipe puts over :data:`DEFAULTS`
RECIPES = {"mixed": MIXED_RECIPE, "basic": {}, "transfer": TRANSFER_RECIPE,
           "labels": LABEL_RECIPE, "milestones": MILESTONE_RECIPE}

#: the recipe of the shipped default bundle, ``bids-infantage-train``'s default
DEFAULT_RECIPE = "mixed"


def recipe_settings(name: str) -> dict:
    """Training settings of recipe ``name``: :data:`DEFAULTS` with ``RECIPES[name]`` over them
    (a new dict whose nested values are the recipe's own: copy them before changing them).

    Raises
    ------
    KeyError
        ``name`` is not in :data:`RECIPES`.
    """
    return dict(DEFAULTS, **RECIPES[name])


def input_normalization(settings: dict) -> dict:
    """The ``normalization`` record of a bundle trained with ``settings``.

    ``settings["input"]`` (optional): ``intensity`` ``"p99"`` (default) or ``"rank"``
    (:class:`~bids_infantage.models.transforms.RankStandardize` on top of the 99th-percentile
    stack), ``rank_erode_voxels``, ``volume_feature`` ``"log"`` (default) or ``"none"`` (the
    network's size input held at 0), ``augment`` ``"basic"`` or ``"contrast"``
    (see :func:`_augment`), ``csf`` (bool: :func:`paint_csf` with the ventricles of the real
    ``infant-asegs``), ``gamma_sd`` (SD of the log of the per-channel gamma drawn by the
    training augmentation; default 0.08, i.e. gamma about 0.85-1.17).
    """
    spec = settings.get("input") or {}
    norm = {"intensity": "p99 in brain mask, clip [0, 1.5]",
            "ratio": "T1w / max(T2w, 0.05), clip [0, 4]",
            "volume_feature": "log(volume_ml / 900)"}
    if spec.get("intensity") == "rank":
        norm["intensity"] = ("rank: quantile among the voxels of the brain mask eroded by "
                             f"{int(spec.get('rank_erode_voxels', 1))} voxel(s), after p99")
        norm["rank_erode_voxels"] = int(spec.get("rank_erode_voxels", 1))
    if spec.get("volume_feature") == "none":
        norm["volume_feature"] = "none"
    return norm
