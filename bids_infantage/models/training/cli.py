"""``bids-infantage-train``: the command line of the training."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ...utils.errors import InputError
from ..transforms import CONFIGURATIONS
from .bundle_writer import train_bundle
from .calibration import add_template_term, recalibrate_interval
from .recipes import DEFAULT_RECIPE, DEFAULTS, RECIPES, check_configuration_settings, overlay_settings, recipe_settings


def main(argv=None) -> int:
    """Console script ``bids-infantage-train``."""
    from ...utils.data import data_path

    parser = argparse.ArgumentParser(
        prog="bids-infantage-train",
        description="Reproduce the default model bundle from the shared templates and masks.",
    )
    parser.add_argument("--shared", type=Path, default=Path("../shared"),
                        help="folder with templateflow/ and bcp-brainmasks/ (default ../shared)")
    parser.add_argument("--cache-dir", type=Path, default=Path("training-cache"))
    parser.add_argument("--out", type=Path, default=None,
                        help="bundle folder (default: the package's data/models/infantage-default, "
                             "or data/models/wada2019 with --architecture wada2019)")
    parser.add_argument("--architecture", choices=["multitask", "wada2019"], default="multitask",
                        help="multitask: the default 3D multi-task CNN (after Park et al. 2026); "
                             "wada2019: five axial levels, a 2D CNN per level and contrast, "
                             "0-16 / 8-24 month ensemble (Wada et al. 2019), selectable with "
                             "--model wada2019")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS),
                        choices=list(CONFIGURATIONS))
    parser.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    for key in ("n_train", "n_val", "epochs", "members"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                            help=f"default {DEFAULTS[key]}")
    parser.add_argument("--recipe", choices=list(RECIPES), default=None,
                        help="training data, model input and augmentation: mixed-gamma "
                             "(default, the shipped model's since 0.4.0: mixed with a training "
                             "gamma SD of 0.5 for the configurations with a T2w), mixed (the "
                             "0.3.0 default's: 512 milestone samples and 64 template-blend "
                             "samples, no volume input, 2 members), basic (template blend, "
                             "99th-percentile intensities, brain-volume input; the default "
                             "before 0.3), transfer (rank intensities, no volume input, "
                             "contrast augmentation; issue #14), labels (label-driven "
                             "synthesis from the infant-asegs anatomy, no volume input, "
                             "contrast augmentation) or milestones (the same anatomy, contrast "
                             "from the published myelination milestones); --architecture "
                             "wada2019 defaults to basic")
    parser.add_argument("--settings", type=Path, default=None, metavar="JSON",
                        help="a JSON object merged over the recipe's training settings (its "
                             "\"input\" record key by key), e.g. {\"input\": {\"gamma_sd\": 0.2}} "
                             "or {\"lr\": 1e-3}; \"configurations\" gives one configuration "
                             "its own epochs, lr, loss_weights or input augmentation, e.g. "
                             "{\"configurations\": {\"t1w\": {\"input\": {\"gamma_sd\": 0.08}}}}; "
                             "the members' cache fingerprint follows them")
    parser.add_argument("--recalibrate-interval", action="store_true",
                        help="do not train: add the domain-shift term to the intervals of the "
                             "bundle in --out (recalibrate_interval; --n-val samples)")
    parser.add_argument("--add-template-term", type=Path, default=None, metavar="LOTO_JSON",
                        help="do not train: add the between-template term measured by "
                             "leave-one-template-out (benchmarks/validate_model.py --loto-json) to "
                             "the intervals of the bundle in --out (add_template_term)")
    args = parser.parse_args(argv)
    name = "infantage-default" if args.architecture == "multitask" else "wada2019"
    if args.out is None:
        args.out = data_path("models") / name
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.add_template_term is not None:
        print(json.dumps(add_template_term(args.out, args.add_template_term), indent=1))
        return 0
    if args.recalibrate_interval:
        report = recalibrate_interval(args.out, args.cache_dir, args.shared,
                                      n_val=args.n_val or DEFAULTS["n_val"], nprocs=args.nprocs)
        print(json.dumps(report, indent=1))
        return 0
    if args.recipe is None:  # the Wada et al. baseline keeps the recipe it was shipped with
        args.recipe = DEFAULT_RECIPE if args.architecture == "multitask" else "basic"
    settings = recipe_settings(args.recipe)
    if args.architecture != "multitask":
        settings["architecture"] = args.architecture
    settings.update({k: getattr(args, k) for k in ("n_train", "n_val", "epochs", "members")
                     if getattr(args, k) is not None})
    if args.settings is not None:
        try:
            settings = merge_settings(settings, args.settings)
        except InputError as err:
            print(f"bids-infantage-train: error: {err}", file=sys.stderr)
            return 2
    try:  # a configuration's own settings ("configurations") are checked before any training
        check_configuration_settings(settings)
    except ValueError as err:
        print(f"bids-infantage-train: error: {args.settings or args.recipe}: {err}", file=sys.stderr)
        return 2
    try:
        bundle = train_bundle(args.out, args.cache_dir, args.shared, configs=args.configs,
                              settings=settings, nprocs=args.nprocs, name=name)
    except InputError as err:  # e.g. a cache of another synthesis version
        print(f"bids-infantage-train: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({c: v["calibration"]["val_mae_months"]
                      for c, v in bundle["configurations"].items()}, indent=1))
    return 0


def merge_settings(settings: dict, path: Path) -> dict:
    """``settings`` with the JSON object in ``path`` merged over it (:func:`overlay_settings`:
    top-level keys replace the recipe's, except ``"input"``, which is merged key by key, so that
    ``{"input": {"gamma_sd": 0.2}}`` keeps the recipe's intensity and size inputs).

    Raises
    ------
    InputError
        The file cannot be read, is not JSON, or is not a JSON object.
    """
    try:
        extra = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read the training settings ({err}); "
                         "give a JSON object, e.g. {\"lr\": 1e-3}") from None
    if not isinstance(extra, dict):
        raise InputError(f"{path}: the training settings must be a JSON object, "
                         "e.g. {\"lr\": 1e-3}")
    return overlay_settings(settings, extra)


if __name__ == "__main__":
    raise SystemExit(main())
