"""Training of the default model bundle from ``../shared`` (one command: ``bids-infantage-train``).

Steps (all cached in ``--cache-dir``, so an interrupted run resumes):

1. reference mask and synthesis atlas from the BMEXInfant templates
   (:mod:`bids_infantage.models.synthesis`);
2. synthetic training and validation cohorts passed through the shared preprocessing
   (:mod:`bids_infantage.models.dataset`); with ``--recipe labels`` instead, label fields
   and cohorts drawn in reference space from the anatomy of the 12 real ``infant-asegs``
   painted with the templates' contrast (:mod:`bids_infantage.models.label_synthesis`;
   ``labels-train``, ``labels-val``);
3. for each input configuration, an ensemble of :class:`MultiTaskAgeNet` members (each
   cached in ``--cache-dir/members`` with a fingerprint of its settings, so a larger
   ``--members`` trains only the new ones);
4. calibration on the validation cohort: a linear correction of the ensemble mean (counters
   regression toward the middle of the age range), a scale for the prediction interval, and
   feature statistics for the out-of-distribution check;
5. the bundle: safetensors weights + ``bundle.json`` (with sha256 of every file) +
   ``reference_mask.nii.gz``.

Modules: :mod:`.recipes` (settings), :mod:`.cohorts` (training data in the cache),
:mod:`.augmentation` (batches), :mod:`.members` (networks, training, member cache),
:mod:`.calibration` (age correction, intervals, out-of-distribution statistics),
:mod:`.bundle_writer` (a whole training run and the bundle it writes), :mod:`.cli`
(``bids-infantage-train``). The names below are the package's public API.
"""
from .augmentation import paint_csf
from .bundle_writer import BUNDLE_ARCHITECTURES, train_bundle, write_bundle
from .calibration import (
    SHIFT_BANDS,
    add_template_term,
    calibrate,
    recalibrate_interval,
    template_term,
    validation_predictions,
)
from .cli import main
from .cohorts import build_data, cohort_dirs, ensure_generator, ensure_label_fields, ensure_reference
from .members import (
    build_network,
    load_member,
    member_fingerprint,
    members_from_states,
    predict_members,
    save_config_weights,
    save_member,
    train_member,
)
from .recipes import (
    DEFAULT_RECIPE,
    DEFAULTS,
    LABEL_RECIPE,
    MILESTONE_RECIPE,
    MIXED_GAMMA_RECIPE,
    MIXED_RECIPE,
    TRANSFER_RECIPE,
    check_configuration_settings,
    configuration_settings,
    input_normalization,
    recipe_settings,
)

__all__ = [
    "BUNDLE_ARCHITECTURES", "DEFAULT_RECIPE", "DEFAULTS", "LABEL_RECIPE", "MILESTONE_RECIPE",
    "MIXED_GAMMA_RECIPE", "MIXED_RECIPE", "SHIFT_BANDS",
    "TRANSFER_RECIPE",
    "add_template_term", "build_data", "build_network", "calibrate", "cohort_dirs",
    "check_configuration_settings", "configuration_settings",
    "ensure_generator", "ensure_label_fields", "ensure_reference", "input_normalization",
    "load_member", "main", "member_fingerprint", "members_from_states", "paint_csf",
    "predict_members", "recalibrate_interval", "recipe_settings", "save_config_weights", "save_member",
    "template_term", "train_bundle", "train_member", "validation_predictions", "write_bundle",
]
