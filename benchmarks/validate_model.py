"""Validation table of the default model recipe (issue: Default model).

1. Leave-one-template-out (LOTO) for the interior ages 6, 9 and 12 months: the synthesis
   atlas is rebuilt without that template, a small cohort is generated and one member per
   configuration is trained; the held-out template (T1w + T2w, real) then goes through the
   same preprocessing path and is predicted. Next to it, a brain-volume baseline: the age at
   which the BCP mean brain volume equals the measured volume.
2. The shipped bundle on ../shared/demo_bids (every configuration, same preprocessing path).

Usage::

    .venv/bin/python benchmarks/validate_model.py --shared ../shared --cache-dir training-cache \
        [--loto-n 160 --loto-epochs 10 --configs t1w ratio] [--skip-loto] [--loto-json FILE]

Prints markdown tables; figures in months.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger("validate_model")
INTERIOR = {2: 6.0, 3: 9.0, 4: 12.0}


def volume_baseline(volume_ml: float, volumes) -> float:
    """Age (months) at which the BCP mean volume equals ``volume_ml`` (clipped to 0-24)."""
    ages = np.asarray(list(volumes))
    means = np.maximum.accumulate(np.asarray([v.mean() for v in volumes.values()]))
    return float(np.interp(volume_ml, means, ages))


def preprocess_template(tf_home: Path, cohort: int, reference_mask) -> dict:
    import SimpleITK as sitk

    from bids_infantage.models.preprocess import preprocess_session
    from bids_infantage.models.synthesis.templates import template_path

    t1 = sitk.ReadImage(str(template_path(tf_home, cohort, "T1w")), sitk.sitkFloat32)
    t2 = sitk.ReadImage(str(template_path(tf_home, cohort, "T2w")), sitk.sitkFloat32)
    return preprocess_session(t1, t2, reference_mask=reference_mask)


def predict(nets, calib, sample, config) -> float:
    from bids_infantage.models.training import predict_members

    data = {"image": sample["image"][None], "volume_ml": np.asarray([sample["volume_ml"]])}
    means, _, _ = predict_members(nets, data, config)
    return float(calib["intercept"] + calib["slope"] * means.mean())


def run_loto(shared: Path, cache: Path, configs, n: int, epochs: int, nprocs: int) -> list[dict]:
    import SimpleITK as sitk

    from bids_infantage.models.dataset import generate_cohort, load_cohort
    from bids_infantage.models.synthesis.atlas import build_atlas
    from bids_infantage.models.synthesis.volumes import read_bcp_volumes
    from bids_infantage.models.training import DEFAULTS, calibrate, predict_members, train_member

    tf_home = shared / "templateflow"
    ref_path = cache / "ref.nii.gz"
    ref = sitk.ReadImage(str(ref_path))
    volumes = read_bcp_volumes(shared / "bcp-brainmasks" / "masks.tsv")
    rows = []
    for held, age in INTERIOR.items():
        t0 = time.time()
        folder = cache / f"loto-{held}"
        folder.mkdir(parents=True, exist_ok=True)
        atlas_path = folder / "atlas.npz"
        if not atlas_path.exists():
            build_atlas(tf_home, ref, cohorts=[c for c in (1, 2, 3, 4, 5) if c != held]).save(atlas_path)
        kw = dict(atlas_path=atlas_path, reference_path=ref_path,
                  masks_tsv=shared / "bcp-brainmasks" / "masks.tsv", nprocs=nprocs)
        train = load_cohort(generate_cohort(folder / "train", n=n, seed=11, **kw))
        val = load_cohort(generate_cohort(folder / "val", n=max(32, n // 4), seed=12, **kw))
        sample = preprocess_template(tf_home, held, ref)
        row = {"held_out": f"{age:g} mo", "volume_ml": sample["volume_ml"],
               "volume_baseline": volume_baseline(sample["volume_ml"], volumes)}
        row["val_rmse"] = {}
        for config in configs:
            net = train_member(train, config, seed=7, epochs=epochs, batch_size=8, lr=DEFAULTS["lr"],
                               channels=DEFAULTS["channels"], loss_weights=DEFAULTS["loss_weights"])
            m, v, f = predict_members([net], val, config)
            calib = calibrate(m, v, f, val["age"])
            row[config] = predict([net], calib, sample, config)
            # the same member's same-family error, to separate it from the held-out template's
            fitted = calib["intercept"] + calib["slope"] * m.mean(0)
            row["val_rmse"][config] = float(np.sqrt(np.mean((fitted - val["age"]) ** 2)))
        row["seconds"] = time.time() - t0
        rows.append(row)
        LOGGER.info("LOTO %s: %s", age, row)
    return rows


def run_demo(shared: Path, cache: Path) -> list[dict]:
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.synthesis.volumes import read_bcp_volumes

    bundle = load_bundle()
    volumes = read_bcp_volumes(shared / "bcp-brainmasks" / "masks.tsv")
    rows = []
    for cohort, age in {1: 0.0, 2: 6.0, 3: 9.0, 4: 12.0, 5: 24.0}.items():
        sample = preprocess_template(shared / "templateflow", cohort, bundle.reference_mask())
        row = {"template": f"{age:g} mo", "volume_ml": sample["volume_ml"],
               "volume_baseline": volume_baseline(sample["volume_ml"], volumes)}
        for config in bundle.meta["configurations"]:
            row[config] = bundle.predict(sample["image"], sample["volume_ml"], config, saliency=False)["age"]
        rows.append(row)
    return rows


def table(rows, key, truth) -> str:
    cols = [c for c in rows[0] if c not in (key, "volume_ml", "seconds", "val_rmse")]
    lines = ["| " + " | ".join([key, "volume (ml)"] + cols) + " |",
             "|" + "---|" * (len(cols) + 2)]
    for r in rows:
        lines.append("| " + " | ".join([r[key], f"{r['volume_ml']:.0f}"] + [f"{r[c]:.2f}" for c in cols]) + " |")
    maes = [np.mean([abs(r[c] - truth[r[key]]) for r in rows]) for c in cols]
    lines.append("| **MAE** | | " + " | ".join(f"**{m:.2f}**" for m in maes) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", type=Path, default=Path("../shared"))
    p.add_argument("--cache-dir", type=Path, default=Path("training-cache"))
    p.add_argument("--configs", nargs="+", default=["t1w", "t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio"])
    p.add_argument("--loto-n", type=int, default=160)
    p.add_argument("--loto-epochs", type=int, default=10)
    p.add_argument("--nprocs", type=int, default=2)
    p.add_argument("--skip-loto", action="store_true")
    p.add_argument("--loto-json", type=Path, default=None,
                   help="also write the leave-one-template-out rows here (the input of "
                        "bids-infantage-train --add-template-term)")
    p.add_argument("--skip-demo", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.nprocs)
    t0 = time.time()
    if not args.skip_demo:
        rows = run_demo(args.shared, args.cache_dir)
        print("\nShipped bundle on the five real templates (= ../shared/demo_bids), predicted age (months):\n")
        print(table(rows, "template", {r["template"]: float(r["template"].split()[0]) for r in rows}))
    if not args.skip_loto:
        rows = run_loto(args.shared, args.cache_dir, args.configs, args.loto_n, args.loto_epochs, args.nprocs)
        print(f"\nLeave-one-template-out (n={args.loto_n} synthetic samples, {args.loto_epochs} epochs, "
              "1 member), predicted age of the held-out real template (months):\n")
        print(table(rows, "held_out", {r["held_out"]: float(r["held_out"].split()[0]) for r in rows}))
        if args.loto_json is not None:
            import json

            args.loto_json.write_text(json.dumps(
                {"loto_n": args.loto_n, "loto_epochs": args.loto_epochs, "rows": rows}, indent=1))
    print(f"\n{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
