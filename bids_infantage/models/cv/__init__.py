"""Cross-validation and retraining on a labelled cohort (console script ``bids-infantage-cv``).

Protocol after Park, Choi & Gho (JMRI 2026): K-fold cross-validation repeated over random
splits (default 5 folds x 2 repeats, stratified by age), one model per input configuration
(t1w, t2w, t1w+t2w, ratio, t1w+t2w+ratio) trained on the same splits, accuracy per fold and
mean ± SD with 95% CIs, and the configurations compared by one-way ANOVA, pairwise t-tests,
Mann–Whitney U, Cohen's d (:mod:`bids_infantage.group.compare`). Optionally, a labelled
external set is predicted by the final models and the configurations compared there by the
Wilcoxon signed-rank test on absolute errors.

The cohort is either

* a folder of ``bids-infantage`` participant outputs (derivatives): the model inputs are read
  back from ``*_space-infantageRef_desc-preproc_{T1w,T2w}.nii.gz`` and
  ``*_space-infantageRef_desc-ratio_T1wT2w.nii.gz``, the brain volume and chronological age
  from ``*_brainage.tsv`` (sessions without an age are skipped, with a warning); or
* a synthetic cohort from the default model's generator (``--synthetic N`` or
  ``--synthetic-dir`` with ``sample-*.npz`` files from ``bids-infantage-train``).

The result is a model bundle (``OUT/model``) that ``bids-infantage --model OUT/model``
accepts: the final members are trained on the whole cohort; the linear calibration and the
interval are fitted on the out-of-fold predictions of the first repeat; the feature
statistics of the out-of-range check come from the final models on the cohort. Next to it:
``cv_folds.tsv``, ``cv_predictions.tsv``, ``cv_summary.tsv``, ``cv_anova.tsv``,
``cv_pairwise.tsv`` (``cv_external*.tsv``) and ``cv_report.html``.

Modules: :mod:`.cohort` (reading the cohort), :mod:`.folds` (the splits and out-of-fold
predictions), :mod:`.final` (the final bundle and the external set), :mod:`.outputs` (tables
and report), :mod:`.cli` (``bids-infantage-cv``). The names below are the package's public API.
"""
from .cli import main
from .cohort import load_derivatives_cohort, load_sample_files, synthetic_cohort, usable_configurations
from .final import external_statistics, predict_external, train_final_bundle
from .folds import DEFAULTS, TINY, cross_validate, cv_splits, model_label
from .outputs import write_outputs

__all__ = [
    "DEFAULTS", "TINY", "cross_validate", "cv_splits", "external_statistics", "load_derivatives_cohort",
    "load_sample_files", "main", "model_label", "predict_external", "synthetic_cohort",
    "train_final_bundle", "usable_configurations", "write_outputs",
]
