"""Out of range from the images alone (issue #14 item 4): are brains older than 24 months
flagged when no chronological age is given, and are brains inside 0-24 months left alone?

Synthetic milestone samples (``MilestoneInfantGenerator``: the anatomy of the 12 real
``infant-asegs``, 0-38 months, with the contrast of the published myelination milestones, the
training synthesis of the default recipe's milestone part) at ``--older`` months (default
26-38) and at 0-24 months, with a seed the training cohorts do not use. Each is predicted by the
bundle in process (``ModelBundle.predict``, brain volume = the sample's, drawn from the BCP
norm at its age, extrapolated beyond 24 months) and the table gives, per configuration, the
predicted ages and how many samples get ``out_of_range``, with the reasons counted.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/older_brains.py [--shared ../shared]
        [--cache-dir /tmp/bids-infantage-older] [--bundle infantage-default] [--n 48]

About 5 minutes on one core with the label fields cached in ``--cache-dir`` (building them
the first time: a few minutes more).
"""
from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("t1w", "t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio")


def reason(flag: str) -> str:
    """A flag's kind, without its numbers."""
    for key, name in (("brain volume", "brain volume"), ("unlike the training", "features unlike the training data"),
                      ("outside the model range", "predicted age outside the range")):
        if key in flag:
            return name
    return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "bids-infantage-older")
    p.add_argument("--bundle", default="infantage-default")
    p.add_argument("--n", type=int, default=48, help="samples per age range")
    p.add_argument("--older", type=float, nargs=2, default=(26.0, 38.0), metavar=("LOW", "HIGH"),
                   help="months of the older samples (the asegs reach 38)")
    p.add_argument("--seed", type=int, default=7, help="cohort seed (training uses 1 and 2)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.dataset import load_cohort
    from bids_infantage.models.label_synthesis.cohort import generate_label_cohort
    from bids_infantage.models.training.cohorts import ensure_label_fields, ensure_milestone_anatomy

    t0 = time.time()
    kw = dict(ensure_label_fields(args.cache_dir, args.shared.resolve()), nprocs=1)
    kw["anatomy_path"] = ensure_milestone_anatomy(args.cache_dir, kw["fields_path"])
    bundle = load_bundle(args.bundle)
    configs = [c for c in CONFIGS if c in bundle.meta["configurations"]]
    print(f"# Out of range from the images alone: bundle {bundle.name} ({bundle.sha256[:8]}), "
          f"{args.n} milestone samples per age range, seed {args.seed}\n")
    print("| samples | configuration | predicted age: mean [min, max] | flagged out of range | reasons |")
    print("|---|---|---|---|---|")
    for label, ages in ((f"{args.older[0]:g}-{args.older[1]:g} months", tuple(args.older)),
                        ("0-24 months", (0.0, 24.0))):
        folder = args.cache_dir / f"milestones-{ages[0]:g}-{ages[1]:g}-seed{args.seed}"
        data = load_cohort(generate_label_cohort(folder, n=args.n, seed=args.seed, age_range=ages, **kw))
        for c in configs:
            pred = [bundle.predict(data["image"][i].astype(np.float32), float(data["volume_ml"][i]), c,
                                   saliency=False) for i in range(len(data["age"]))]
            age = np.array([q["age"] for q in pred])
            flagged = sum(bool(q["out_of_range"]) for q in pred)
            why = collections.Counter(reason(f) for q in pred if q["out_of_range"] for f in q["flags"])
            why.pop("", None)
            print(f"| {label} (volumes {data['volume_ml'].min():.0f}-{data['volume_ml'].max():.0f} ml) | {c} | "
                  f"{age.mean():.1f} [{age.min():.1f}, {age.max():.1f}] | {flagged}/{len(pred)} | "
                  + (", ".join(f"{k} {v}" for k, v in why.items()) or "-") + " |", flush=True)
    print(f"\nWall time: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
