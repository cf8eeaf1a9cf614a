"""``bids-infantage-cv``: the command line of the cross-validation."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from ...utils.errors import InputError
from ..transforms import CONFIGURATIONS
from .cohort import load_derivatives_cohort, load_sample_files, synthetic_cohort, usable_configurations
from .final import predict_external, train_final_bundle
from .folds import DEFAULTS, TINY, cross_validate, model_label
from .outputs import _print_table, write_outputs

#: Keys of ``--settings`` a cross-validation uses: those of the network, the optimizer, the
#: model input and its augmentation. The cohort keys of ``bids-infantage-train`` (``synthesis``,
#: ``n_train`` ...) do not apply: the cohort is DERIVATIVES, --synthetic or --synthetic-dir.
SETTINGS_KEYS = ("folds", "repeats", "seed", "members", "final_members", "epochs", "batch_size",
                 "lr", "channels", "loss_weights", "pooling", "input", "configurations")


def cv_settings(args) -> dict:
    """Settings of a run: :data:`~bids_infantage.models.cv.folds.DEFAULTS`, then ``--tiny``,
    then the ``--settings`` file (merged as :func:`~bids_infantage.models.training.cli.
    merge_settings` does), then the integer flags (``--folds`` ...).

    Raises
    ------
    InputError
        The ``--settings`` file cannot be read, has a key outside :data:`SETTINGS_KEYS`, or
        gives a configuration a setting it cannot have for itself
        (:func:`~bids_infantage.models.training.recipes.check_configuration_settings`).
    """
    from ..training.cli import merge_settings
    from ..training.recipes import check_configuration_settings

    settings = json.loads(json.dumps(DEFAULTS))
    if args.tiny:
        settings.update(TINY)
    if args.settings is not None:
        merged = merge_settings(settings, args.settings)
        other = sorted(set(merged) - set(settings) - set(SETTINGS_KEYS))
        if other:
            raise InputError(f"{args.settings}: {', '.join(other)} cannot be set in a "
                             "cross-validation (its cohort is DERIVATIVES, --synthetic or "
                             f"--synthetic-dir); remove them, keep only {', '.join(SETTINGS_KEYS)}")
        settings = merged
    for key in ("folds", "repeats", "seed", "epochs", "members", "final_members"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    try:  # the settings of single configurations ("configurations"), before any training
        check_configuration_settings(settings)
    except ValueError as err:
        raise InputError(f"{args.settings}: {err}") from None
    return settings


def main(argv=None) -> int:
    """Console script ``bids-infantage-cv``."""
    p = argparse.ArgumentParser(
        prog="bids-infantage-cv",
        description="Cross-validate and retrain the brain-age model on a labelled cohort "
                    "(participant outputs of bids-infantage, or a synthetic cohort).")
    p.add_argument("derivatives", nargs="?", type=Path,
                   help="output folder of `bids-infantage ... participant` on a dataset with ages")
    p.add_argument("output_dir", type=Path, help="where the statistics and the bundle go")
    p.add_argument("--synthetic", type=int, metavar="N",
                   help="use N synthetic infants from the default model's generator instead")
    p.add_argument("--synthetic-dir", type=Path,
                   help="use the sample-*.npz files in this folder (from bids-infantage-train)")
    p.add_argument("--shared", type=Path, default=Path("../shared"),
                   help="templates and BCP masks for --synthetic (default ../shared)")
    p.add_argument("--cache-dir", type=Path, default=Path("training-cache"))
    p.add_argument("--external", type=Path,
                   help="participant outputs of a labelled external set (Wilcoxon tests)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS),
                   help="configurations of the multi-task 3D model (Park et al. 2026)")
    p.add_argument("--wada", nargs="*", default=[], choices=list(CONFIGURATIONS), metavar="CONFIG",
                   help="also cross-validate the Wada et al. (2019) five-level 2D age-range "
                        "ensemble on these configurations, e.g. --wada t1w+t2w (CV table only; "
                        "the bundle holds the 3D models)")
    for key in ("folds", "repeats", "seed", "epochs", "members", "final_members"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                       help=f"default {DEFAULTS[key]}")
    p.add_argument("--settings", type=Path, metavar="JSON",
                   help="a JSON object merged over the training settings, as in "
                        "bids-infantage-train --settings: network, optimizer, input and "
                        "augmentation keys (" + ", ".join(SETTINGS_KEYS) + "); the defaults "
                        "are the shipped model's (pooling mean+max, lr 5e-4, no brain-size "
                        "input, contrast augmentation); e.g. '{\"pooling\": \"mean\", "
                        "\"lr\": 2e-3, \"input\": {\"volume_feature\": \"log\", "
                        "\"augment\": \"basic\"}}' for the previous default's network")
    p.add_argument("--tiny", action="store_true", help="tiny network and 2 epochs (tests, CI)")
    p.add_argument("--no-bundle", action="store_true", help="statistics only, no final model")
    p.add_argument("--name", default="infantage-cohort", help="name of the bundle")
    p.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bids-infantage-cv: %(message)s")
    sources = [x for x in (args.derivatives, args.synthetic, args.synthetic_dir) if x is not None]
    if len(sources) != 1:
        p.error("give exactly one cohort: DERIVATIVES, --synthetic N or --synthetic-dir")
    try:
        settings = cv_settings(args)
        if args.derivatives is not None:
            data = load_derivatives_cohort(args.derivatives)
            source = f"participant outputs in {args.derivatives}"
        elif args.synthetic is not None:
            data = synthetic_cohort(args.synthetic, seed=settings["seed"] + 11,
                                    cache_dir=args.cache_dir, shared=args.shared, nprocs=args.nprocs)
            source = f"{args.synthetic} synthetic infants (generator seed {settings['seed'] + 11})"
        else:
            data = load_sample_files(sorted(args.synthetic_dir.glob("sample-*.npz")))
            source = f"synthetic samples in {args.synthetic_dir}"
        if not data["wm"].any():
            settings["loss_weights"]["seg"] = 0.0  # no T2w: no white-matter target
        configs = usable_configurations(data, args.configs)
        wada_configs = usable_configurations(data, args.wada)
        if not configs:
            raise InputError("no requested configuration has its images for every subject; "
                             "choose --configs among those the cohort's modalities allow")
        external = load_derivatives_cohort(args.external) if args.external else None
        t0 = time.time()
        folds, predictions = cross_validate(data, configs, settings, args.nprocs, wada_configs)
        seconds = time.time() - t0
        external_preds = None
        if not args.no_bundle:
            bundle_dir = args.output_dir / "model"
            if bundle_dir.exists():
                shutil.rmtree(bundle_dir)
            train_final_bundle(data, configs, settings, predictions, bundle_dir, name=args.name,
                               provenance=source, nprocs=args.nprocs)
            if external is not None:
                external_preds = predict_external(bundle_dir, external,
                                                  usable_configurations(external, configs))
        tables = write_outputs(args.output_dir, folds, predictions, settings,
                               configs + [model_label("wada", c) for c in wada_configs],
                               n_subjects=len(data["age"]), seconds=seconds,
                               external=external_preds, source=source)
    except InputError as exc:
        print(f"bids-infantage-cv: error: {exc}", file=sys.stderr)
        return 2
    _print_table(tables)
    print(f"\ncross-validation took {seconds / 60:.1f} min; report: "
          f"{args.output_dir / 'cv_report.html'}"
          + ("" if args.no_bundle else f"; model: {args.output_dir / 'model'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
