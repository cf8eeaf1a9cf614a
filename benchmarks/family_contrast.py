"""Regional contrast of the two template families on the model grid (issue #14): which
myelination signal is the same in tpl-BMEXInfant (the training templates) and
tpl-UNCBCP4DInfant (the transfer check) at the same age, and which is not.

For each of the ten templates (five per family), through the pipeline's own preprocessing
(``preprocess_session``; the stacks are cached with ``benchmarks/transfer.py``'s probe
inputs, so either script reuses the other's), the T1w and T2w channels are rank-standardized
(``RankStandardize``: quantile among the voxels of the eroded brain mask) and summarized by
region: ``deep`` (>= 6 voxels of 3 mm from the mask's edge), ``mid`` (4-6), ``outer`` (2-4),
``anterior`` / ``posterior`` halves of the deep white matter (>= 4 voxels), and ``inferior``
(the lowest 20% of the brain: brainstem and cerebellum). Each cell is the median rank (0-1).

Then, with ``--cache-dir`` (a training cache with synthetic cohorts in ``train/`` and
``val/``), a ridge regression (alpha 1 on standardized features) of age on those features per
channel, fitted on the synthetic samples and applied to both families: MAE (months) per family.
A feature set that transfers scores alike on both.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/family_contrast.py [--shared ../shared] \\
        [--out /tmp/bids-infantage-transfer] [--cache-dir training-cache]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("deep", "mid", "outer", "anterior", "posterior", "inferior")


def features(image: np.ndarray) -> np.ndarray:
    """(2 * 6,) median ranks of T1w then T2w per region of an image stack (3, 64, 64, 64);
    nan for a missing channel."""
    from scipy.ndimage import distance_transform_edt

    from bids_infantage.models.transforms import RankStandardize

    mask = image[:2].max(0) > 0
    depth = distance_transform_edt(mask)
    yy = np.broadcast_to(np.arange(mask.shape[1])[None, :, None], mask.shape)
    zz = np.broadcast_to(np.arange(mask.shape[0])[:, None, None], mask.shape)
    deep = depth >= 4
    mid_y = np.median(np.nonzero(deep)[1])
    low = zz < np.percentile(np.nonzero(mask)[0], 20)
    regions = [depth >= 6, (depth >= 4) & (depth < 6), (depth >= 2) & (depth < 4),
               deep & (yy < mid_y), deep & (yy >= mid_y), mask & low]
    out = []
    for c in (0, 1):
        if not np.any(image[c] > 0):
            out += [np.nan] * len(regions)
            continue
        r = RankStandardize(1)(image[c].astype(np.float32), mask)
        out += [float(np.median(r[sel])) for sel in regions]
    return np.asarray(out)


def ridge(X: np.ndarray, y: np.ndarray, alpha: float = 1.0):
    """Ridge regression on standardized features (alpha on the standardized scale); returns
    a predict function."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    w = np.linalg.solve(Z.T @ Z + alpha * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
    return lambda Xn: (Xn - mu) / sd @ w + y.mean()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--out", type=Path, default=Path("/tmp/bids-infantage-transfer"))
    p.add_argument("--cache-dir", type=Path, help="training cache with train/ and val/ cohorts")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from transfer import cached_input, images, inputs_dir, load, md

    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.preprocess import preprocess_session

    bundle = load_bundle()
    inputs = inputs_dir(args.out, bundle)
    imgs = images(args.shared.resolve())
    feats, ages, fams, names = [], [], [], []
    for name, spec in imgs.items():
        image = cached_input(inputs, name, None, lambda spec=spec: preprocess_session(
            load(spec["T1w"]), load(spec["T2w"]), reference_mask=bundle.reference_mask()))["image"]
        feats.append(features(image))
        ages.append(spec["age"])
        fams.append(spec["family"])
        names.append(name)
    feats, ages = np.stack(feats), np.asarray(ages)
    header = ["image", "age"] + [f"{ch} {r}" for ch in ("T1w", "T2w") for r in REGIONS]
    print("## Median rank per region (0-1)\n")
    print(md(header, [[n, f"{a:g}"] + [f"{v:.2f}" for v in f] for n, a, f in zip(names, ages, feats)]))
    if args.cache_dir:
        from bids_infantage.models.dataset import load_cohort

        paths = sorted((args.cache_dir / "train").glob("sample-*.npz")) + \
            sorted((args.cache_dir / "val").glob("sample-*.npz"))
        coh = load_cohort(paths)
        X = np.stack([features(i.astype(np.float32)) for i in coh["image"]])
        rows = []
        for label, cols in (("T1w", range(6)), ("T2w", range(6, 12)), ("T1w + T2w", range(12))):
            cols = list(cols)
            predict = ridge(X[:, cols], coh["age"])
            row = [label, f"{np.mean(np.abs(predict(X[:, cols]) - coh['age'])):.2f}"]
            for fam in ("demo", "UNC"):
                sel = np.asarray(fams) == fam
                pred = predict(feats[sel][:, cols])
                row.append(f"{np.mean(np.abs(pred - ages[sel])):.2f} ("
                           + ", ".join(f"{v:.1f}" for v in pred) + ")")
            rows.append(row)
        print(f"\n## Ridge regression of age on the regional ranks ({len(paths)} synthetic samples)\n")
        print(md(["features", "synthetic MAE (fit)", "BMEXInfant MAE (ages)", "UNC MAE (ages)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
