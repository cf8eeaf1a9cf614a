"""Does a global intensity mapping explain the transfer error? (issue #14)

Each ``tpl-UNCBCP4DInfant`` template's T1w and T2w are histogram-matched (SimpleITK
``HistogramMatching``, 1024 levels, 50 match points; Nyul & Udupa 1999) inside its brain to
the BMEXInfant demo template of the same age (3 months: the 6-month one), then go through the
pipeline's preprocessing (``preprocess_session``) and the bundle. If the two families differed
only by a monotone intensity mapping, this would bring every UNC age close to the truth; if
the age moves away from it, the difference lies in where the bright and dark tissue is (the
regional contrast), which no global intensity standardization can undo.

Prints one table: the unmatched and the matched age of every UNC template per configuration
(months), and the MAE of both over the four age-matched templates (0, 6, 12, 24 months).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/histogram_match.py [--shared ../shared] \\
        [--bundle infantage-default]

About 40 s per template and 40 s per unmatched template on one core.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
#: UNC template -> BMEXInfant demo subject of the same age (no 3-month BMEXInfant template)
PAIRS = {"unc-00": "demo-m00", "unc-03": "demo-m06", "unc-06": "demo-m06",
         "unc-12": "demo-m12", "unc-24": "demo-m24"}


def matched(image, reference):
    """``image`` histogram-matched to ``reference`` (both skull-stripped SimpleITK images),
    zero outside ``image``'s brain."""
    import SimpleITK as sitk

    out = sitk.HistogramMatching(image, reference, numberOfHistogramLevels=1024,
                                 numberOfMatchPoints=50, thresholdAtMeanIntensity=False)
    return sitk.Mask(out, sitk.Cast(image > 0, sitk.sitkUInt8))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--bundle", default="infantage-default")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TEMPLATEFLOW_HOME", str(args.shared.resolve() / "templateflow"))
    import torch
    import transfer as T

    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.preprocess import preprocess_session

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    bundle = load_bundle(args.bundle)
    imgs = T.images(args.shared.resolve())
    ref = bundle.reference_mask()
    configs = [c for c in T.CONFIGS if c in bundle.meta["configurations"]]
    ages = {}
    for unc, demo in PAIRS.items():
        t1, t2 = T.load(imgs[unc]["T1w"]), T.load(imgs[unc]["T2w"])
        r1, r2 = T.load(imgs[demo]["T1w"]), T.load(imgs[demo]["T2w"])
        for key, (a, b) in (("unmatched", (t1, t2)), ("matched", (matched(t1, r1), matched(t2, r2)))):
            s = preprocess_session(a, b, reference_mask=ref)
            ages[unc, key] = {c: bundle.predict(s["image"], s["volume_ml"], c, saliency=False)["age"]
                              for c in configs}
        print(f"  {unc}: done", file=sys.stderr, flush=True)
    print(f"# UNC templates histogram-matched to the BMEXInfant template of the same age "
          f"(bundle {bundle.name}, {bundle.sha256[:8]})\n")
    rows = [[f"{imgs[u]['age']:g} mo ({PAIRS[u]})"]
            + [f"{ages[u, 'unmatched'][c]:.2f} -> {ages[u, 'matched'][c]:.2f}" for c in configs]
            for u in PAIRS]
    same_age = [u for u in PAIRS if u != "unc-03"]
    rows.append(["MAE (0, 6, 12, 24 mo)"] + [
        " -> ".join(f"{np.mean([abs(ages[u, k][c] - imgs[u]['age']) for u in same_age]):.2f}"
                    for k in ("unmatched", "matched")) for c in configs])
    print(T.md(["UNC template (matched to)", *configs], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
