"""Wall time, CPU time and peak RSS of the participant pipeline, per subject and per stage.

Runs ``bids-infantage`` in a child process on demo subjects with a fresh work dir and reads
each Nipype node's run time from its result file.

Usage::

    .venv/bin/python benchmarks/bench_participant.py [--subjects m06 m24] [--nprocs 1]

Prints a markdown table per subject (stage, seconds) and the totals.
"""
from __future__ import annotations

import argparse
import gzip
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT.parent / "shared" / "demo_bids"


def node_durations(work: Path) -> dict[str, float]:
    """Seconds per node (``runtime.duration`` of each ``result_*.pklz``)."""
    out = {}
    for res in work.rglob("result_*.pklz"):
        try:
            with gzip.open(res) as fh:
                result = pickle.load(fh)
            out[res.parent.name] = float(getattr(result.runtime, "duration", 0.0) or 0.0)
        except Exception:  # noqa: BLE001 - a benchmark skips unreadable results
            continue
    return out


STAGES = {
    "validate": ("validate_t1w", "validate_t2w"),
    "brain mask": ("brain_mask_t1w", "brain_mask_t2w"),
    "N4": ("n4_t1w", "n4_t2w"),
    "rigid T1w->T2w": ("rigid_t1w_to_t2w",),
    "T1w/T2w ratio": ("t1w_t2w_ratio",),
    "normalization": ("normalize_to_reference",),
    "inference + Grad-CAM": ("brain_age",),
    "saliency to anat": ("saliency_to_anat",),
    "reportlets": ("rpt_brainmask", "rpt_t1w2t2w", "rpt_normalization", "rpt_ratio", "rpt_saliency",
                   "rpt_agechart"),
}


def run(subjects, nprocs: int, extra=()) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out, work = Path(tmp) / "out", Path(tmp) / "work"
        cmd = [sys.executable, "-m", "bids_infantage.cli.run", str(DEMO), str(out), "participant",
               "-w", str(work), "--nprocs", str(nprocs), "--skip-bids-validation",
               "--participant-label", *subjects, *extra]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            raise SystemExit(f"run failed with exit code {proc.returncode}")
        durations = node_durations(work)
    stages = defaultdict(float)
    for node, sec in durations.items():
        for stage, names in STAGES.items():
            if node in names:
                stages[stage] += sec
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "peak_rss_gb": after.ru_maxrss / 1024 / 1024, "stages": dict(stages)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", nargs="+", default=["m06"])
    p.add_argument("--nprocs", type=int, default=1)
    args = p.parse_args(argv)
    res = run(args.subjects, args.nprocs)
    print(f"\nsubjects {' '.join(args.subjects)}, --nprocs {args.nprocs}\n")
    print("| stage | seconds (sum over subjects) |\n|---|---|")
    for stage in STAGES:
        if stage in res["stages"]:
            print(f"| {stage} | {res['stages'][stage]:.1f} |")
    print(f"| **wall** | **{res['wall_s']:.1f}** |")
    print(f"\nCPU time {res['cpu_s']:.1f} s; peak RSS of the largest child process {res['peak_rss_gb']:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
