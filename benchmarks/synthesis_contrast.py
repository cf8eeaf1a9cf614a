"""Regional white-matter contrast of a synthetic cohort against the two template families on
the model grid (issue #14): does the synthesis paint the contrast the real images show at
the same age?

Each cell is a region's median intensity over the cortical reference region's
(``maturity.regional.regional_contrasts`` on the model input: 3 mm reference grid, after the
pipeline's preprocessing and standardization), ``T1w / T2w``. Rows: the ten templates (five
BMEXInfant via ``demo_bids``, the training family; five ``tpl-UNCBCP4DInfant``, the transfer
check; preprocessed as ``benchmarks/transfer.py`` does, whose cached inputs under ``--out``
either script reuses), then the synthetic samples of ``--cohort`` (a folder of
``sample-*.npz``, e.g. ``CACHE/milestones-val``) averaged in age bins around the template
ages. This is how milestone synthesis version 1 was found to paint neonates with far more
contrast than either family (model card, "Milestone-driven synthesis").

Usage::

    OMP_NUM_THREADS=1 TEMPLATEFLOW_HOME=../shared/templateflow .venv/bin/python \\
        benchmarks/synthesis_contrast.py --cohort CACHE/milestones-val \\
        [--shared ../shared] [--out /tmp/bids-infantage-transfer] [--per-bin 8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("brainstem", "internal_capsule", "cc_splenium", "centrum_semiovale", "occipital_wm",
         "frontal_wm")
BINS = ((0.0, 1.5), (2.0, 4.0), (5.0, 7.0), (8.0, 10.0), (11.0, 13.0), (21.0, 24.0))


def contrasts(image: np.ndarray, mask: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(len(SHOWN), 2) WM-over-cortex contrast, T1w and T2w, of a model input (3, Z, Y, X)."""
    from bids_infantage.maturity.regional import regional_contrasts

    r = regional_contrasts(image.astype(np.float32), mask, regions, ["t1w", "t2w"])
    return np.array([[r[n]["t1w"], r[n]["t2w"]] for n in SHOWN])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cohort", type=Path, required=True, help="folder of synthetic sample-*.npz")
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--out", type=Path, default=Path("/tmp/bids-infantage-transfer"))
    p.add_argument("--per-bin", type=int, default=8, help="synthetic samples per age bin")
    args = p.parse_args(argv)
    files = sorted(args.cohort.glob("sample-*.npz"))
    if not files:
        print(f"synthesis_contrast.py: error: no sample-*.npz in {args.cohort}; give a cohort "
              "folder of a training cache (e.g. CACHE/milestones-val)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import SimpleITK as sitk
    from transfer import cached_input, images, inputs_dir, load, md

    from bids_infantage.maturity.regional import load_regions
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.preprocess import preprocess_session

    bundle = load_bundle()
    ref = bundle.reference_mask()
    regions = load_regions(ref)
    ref_mask = sitk.GetArrayFromImage(ref) > 0
    inputs = inputs_dir(args.out, bundle)
    rows = []
    for name, spec in images(args.shared.resolve()).items():
        image = cached_input(inputs, name, None, lambda spec=spec: preprocess_session(
            load(spec["T1w"]), load(spec["T2w"]), reference_mask=ref))["image"]
        c = contrasts(image, (image[0] > 0) & ref_mask, regions)
        rows.append([f"{spec['family']} {spec['age']:g} mo"] + [f"{a:.2f} / {b:.2f}" for a, b in c])
    ages = np.array([float(np.load(f)["age"]) for f in files])
    for lo, hi in BINS:
        chosen = [f for f, a in zip(files, ages) if lo <= a < hi][:args.per_bin]
        if not chosen:
            continue
        acc = []
        for f in chosen:
            z = np.load(f)
            acc.append(contrasts(z["image"], z["mask"] > 0, regions))
        m = np.nanmean(np.stack(acc), 0)
        rows.append([f"synthetic {lo:g}-{hi:g} mo (n={len(chosen)})"]
                    + [f"{a:.2f} / {b:.2f}" for a, b in m])
    print(f"## Region over cortex, T1w / T2w, on the model input ({args.cohort})\n")
    print(md(["image"] + list(SHOWN), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
