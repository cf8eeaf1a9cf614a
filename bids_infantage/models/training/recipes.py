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


#: The 0.3.0 default's recipe (issue #14; model card, "The 0.3.0 default"): the networks
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

#: The input configurations with a T2w channel (all but ``t1w``)
T2W_CONFIGURATIONS = ("t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio")

#: The shipped default's recipe since 0.4.0: :data:`MIXED_RECIPE` with a wider training gamma
#: (SD of its log 0.5, not 0.08) for the configurations with a T2w (issue #14; model card,
#: "Validation and transfer"): a gamma of 0.8 or 1.25 moves their age 1.6-7.6 times less, and
#: on ``tpl-UNCBCP4DInfant`` they read 2.97 months off on average (``mixed``: 2.91); ``t1w``
#: with that gamma read both template families a month worse, so it keeps 0.08 (and the
#: ``mixed`` members)
MIXED_GAMMA_RECIPE = dict(
    MIXED_RECIPE,
    configurations={config: {"input": {"gamma_sd": 0.5}} for config in T2W_CONFIGURATIONS},
)

#: ``bids-infantage-train --recipe``: the settings each recipe puts over :data:`DEFAULTS`
RECIPES = {"mixed": MIXED_RECIPE, "mixed-gamma": MIXED_GAMMA_RECIPE, "basic": {},
           "transfer": TRANSFER_RECIPE, "labels": LABEL_RECIPE, "milestones": MILESTONE_RECIPE}

#: the recipe of the shipped default bundle, ``bids-infantage-train``'s default
DEFAULT_RECIPE = "mixed-gamma"


def recipe_settings(name: str) -> dict:
    """Training settings of recipe ``name``: :data:`DEFAULTS` with ``RECIPES[name]`` over them
    (a new dict whose nested values are the recipe's own: copy them before changing them).

    Raises
    ------
    KeyError
        ``name`` is not in :data:`RECIPES`.
    """
    return dict(DEFAULTS, **RECIPES[name])


#: Settings a configuration may set for itself in ``settings["configurations"][config]``: they
#: change how its members are trained and calibrated, not the network or the model input
CONFIGURATION_KEYS = ("epochs", "lr", "loss_weights", "input")

#: ``input`` keys that define the model input of the whole bundle (its ``normalization``
#: record), so no configuration may set them for itself
SHARED_INPUT_KEYS = ("intensity", "rank_erode_voxels", "volume_feature")


def overlay_settings(settings: dict, extra: dict) -> dict:
    """``settings`` with ``extra`` over them: a key of ``extra`` replaces the setting, except
    ``"input"``, which is merged key by key (so that ``{"input": {"gamma_sd": 0.2}}`` keeps
    the intensity and size inputs). The rule of ``bids-infantage-train --settings`` and of a
    configuration's own settings (:func:`configuration_settings`). Returns a new dict."""
    merged = dict(settings)
    for key, value in extra.items():
        if key == "input" and isinstance(value, dict):
            merged["input"] = {**(settings.get("input") or {}), **value}
        else:
            merged[key] = value
    return merged


def check_configuration_settings(settings: dict) -> None:
    """Check ``settings["configurations"]`` (see :func:`configuration_settings`) before any
    training.

    Raises
    ------
    ValueError
        It is not a mapping, names an unknown configuration, a key outside
        :data:`CONFIGURATION_KEYS`, or an ``input`` key of :data:`SHARED_INPUT_KEYS`.
    """
    from ..transforms import CONFIGURATIONS

    per_config = settings.get("configurations") or {}
    if not isinstance(per_config, dict):
        raise ValueError("training settings: \"configurations\" must map a configuration to "
                         "its settings, e.g. {\"t2w\": {\"input\": {\"gamma_sd\": 0.5}}}")
    for name, own in per_config.items():
        if name not in CONFIGURATIONS:
            raise ValueError(f"training settings: unknown configuration {name!r} in "
                             f"\"configurations\"; use {', '.join(CONFIGURATIONS)}")
        bad = [k for k in own if k not in CONFIGURATION_KEYS]
        bad += [f"input.{k}" for k in (own.get("input") or {}) if k in SHARED_INPUT_KEYS]
        if bad:
            raise ValueError(f"training settings: configuration {name!r} cannot set "
                             f"{', '.join(bad)} for itself (only {', '.join(CONFIGURATION_KEYS)}, "
                             "and no input key that sets the bundle's model input)")


def configuration_settings(settings: dict, config: str) -> dict:
    """The training settings of one input configuration: ``settings`` without its
    ``"configurations"`` entry, with ``settings["configurations"][config]`` over them
    (:func:`overlay_settings`: its ``input`` record merged key by key). A configuration
    without an entry gets ``settings`` as they are, so its members keep the cache fingerprint
    they had before the entry existed.

    Parameters
    ----------
    settings : dict
        Training settings (e.g. :func:`recipe_settings`); optional
        ``"configurations": {config: {key: value}}`` with keys from :data:`CONFIGURATION_KEYS`.
    config : str
        An input configuration (``t1w``, ``t2w``, ``t1w+t2w``, ``ratio``, ``t1w+t2w+ratio``).

    Returns
    -------
    dict
        New settings (nested values shared with ``settings``: copy them before changing them).

    Raises
    ------
    ValueError
        As :func:`check_configuration_settings`.
    """
    check_configuration_settings(settings)
    shared = {k: v for k, v in settings.items() if k != "configurations"}
    return overlay_settings(shared, (settings.get("configurations") or {}).get(config) or {})


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
