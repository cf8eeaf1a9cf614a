"""Speed, memory and accuracy guard of the participant pipeline on ../shared/demo_bids.

Three parts, each printed as markdown tables:

1. **Pipeline runs.** ``bids-infantage`` in a child process with a fresh work dir: one subject
   (sub-m24, the largest grid: 208x300x320 voxels at 0.8 mm) and all five subjects, each with
   ``--nprocs 1`` and ``--nprocs 2``. Wall time; CPU time and peak RSS of the whole process
   tree (the MultiProc workers are forkserver grandchildren, so ``getrusage`` would miss
   them: a psutil sampler polls the tree every 0.1 s); seconds per stage from each Nipype
   node's result file.
2. **Inference alone.** Bundle load, then the whole ensemble (all members, the test-time
   augmentation recorded in the bundle) of each configuration on one preprocessed input, with
   and without Grad-CAM; median of repeats, on CPU (1 thread, as in the pipeline) and on CUDA when torch sees a GPU.
3. **Fast vs careful.** Every demo template, its T1w misaligned by a known rigid transform
   (3 degrees about each axis, 4 mm), preprocessed with the shipped (fast) settings and with
   careful ones (rigid registration and N4 at full resolution, finer normalization), then
   predicted by every configuration: per-stage seconds of both and the largest age change.

Usage::

    .venv/bin/python benchmarks/bench_participant.py            # all parts (about 15 min, 2 cores)
    .venv/bin/python benchmarks/bench_participant.py --parts pipeline --subjects m06
    .venv/bin/python benchmarks/bench_participant.py --json bench.json

Targets (issue #6): participant pipeline <= 60 s wall and <= 4 GB peak RSS per subject on
2 cores; inference (whole ensemble) <= 5 s on CPU; 5 subjects with ``--nprocs 2`` in at most
0.6x the time of ``--nprocs 1``; ages change by < 0.1 months between fast and careful settings.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEMO = SHARED / "demo_bids"
SUBJECTS = ["m00", "m06", "m09", "m12", "m24"]
TEMPLATE_COHORT = {"m00": 1, "m06": 2, "m09": 3, "m12": 4, "m24": 5}

STAGES = {
    "validate": ("validate_t1w", "validate_t2w"),
    "brain mask": ("brain_mask_t1w", "brain_mask_t2w"),
    "N4": ("n4_t1w", "n4_t2w"),
    "rigid T1w->T2w": ("rigid_t1w_to_t2w",),
    "T1w/T2w ratio": ("t1w_t2w_ratio",),
    "normalization": ("normalize_to_reference",),
    "inference + Grad-CAM": ("brain_age",),
    "saliency to anat": ("saliency_to_anat",),
    "reportlets": ("rpt_brainmask", "rpt_t1w2t2w", "rpt_normalization", "rpt_ratio",
                   "rpt_saliency", "rpt_agechart"),
}

#: Settings of the careful (slow) preprocessing, against which the shipped ones are checked.
CAREFUL = {
    "n4": {"shrink_mm": 2.0, "iterations": (50, 40, 30)},
    "rigid": {"transform": "Euler3D", "metric": "MattesMutualInformation", "histogram_bins": 32,
              "sampling_percentage": 0.25, "work_spacing_mm": 0.0, "shrink_mm": [4.0, 2.0, 0.0],
              "smoothing_mm": [2.0, 1.0, 0.0], "learning_rate": 1.0, "min_step": 0.0005,
              "iterations": 300, "relaxation": 0.5},
    "normalization": {"transform": "Affine", "metric": "MeanSquares", "mask_smoothing_mm": 4.0,
                      "work_spacing_mm": 1.5, "shrink_mm": [6.0, 3.0, 1.5],
                      "smoothing_mm": [3.0, 1.5, 0.0], "learning_rate": 1.0, "min_step": 0.0005,
                      "iterations": 200, "relaxation": 0.5},
}


# --------------------------------------------------------------------------- 1. pipeline
class TreeSampler(threading.Thread):
    """Poll a process and its descendants: summed CPU time, peak summed and single RSS."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.cpu = {}  # pid -> last seen user+system seconds
        self.peak_total = 0
        self.peak_single = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for proc in procs:
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        times = proc.cpu_times()
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
                self.cpu[(proc.pid, proc.create_time())] = times.user + times.system
            self.peak_total = max(self.peak_total, total)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def node_durations(work: Path) -> dict[str, float]:
    """Seconds per node name, summed over subjects (``runtime.duration`` of each result)."""
    out = defaultdict(float)
    for res in work.rglob("result_*.pklz"):
        try:
            with gzip.open(res) as fh:
                result = pickle.load(fh)
        except Exception:  # noqa: BLE001 - a benchmark skips unreadable results
            continue
        out[res.parent.name] += float(getattr(result.runtime, "duration", 0.0) or 0.0)
    return out


def run_pipeline(subjects, nprocs: int) -> dict:
    """One fresh participant run in a child process; returns wall, CPU, RSS and stages."""
    with tempfile.TemporaryDirectory() as tmp:
        out, work = Path(tmp) / "out", Path(tmp) / "work"
        cmd = [sys.executable, "-m", "bids_infantage.cli.run", str(DEMO), str(out), "participant",
               "-w", str(work), "--nprocs", str(nprocs), "--skip-bids-validation",
               "--participant-label", *subjects]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, err = proc.communicate()
        wall = time.perf_counter() - t0
        sampler.stop()
        if proc.returncode != 0:
            print(err[-2000:])
            raise SystemExit(f"run failed with exit code {proc.returncode}: {' '.join(cmd)}")
        durations = node_durations(work)
        ages = {}
        for sub in subjects:
            table = out / f"sub-{sub}" / "anat" / f"sub-{sub}_brainage.tsv"
            header, row = table.read_text().splitlines()[:2]
            ages[sub] = float(dict(zip(header.split("\t"), row.split("\t")))["predicted_age_months"])
    stages = {stage: sum(durations.get(n, 0.0) for n in names) for stage, names in STAGES.items()}
    return {"subjects": list(subjects), "nprocs": nprocs, "wall_s": wall,
            "cpu_s": sum(sampler.cpu.values()), "peak_rss_single_gb": sampler.peak_single / 2**30,
            "peak_rss_total_gb": sampler.peak_total / 2**30, "stages": stages, "ages": ages}


def part_pipeline(subjects) -> dict:
    runs = {}
    one = ["m24"] if "m24" in subjects else subjects[:1]
    for label, subs in (("1", one), (str(len(subjects)), subjects)):
        for nprocs in (1, 2):
            key = f"{label} subject(s), --nprocs {nprocs}"
            print(f"  running {key} ...", file=sys.stderr, flush=True)
            runs[key] = run_pipeline(subs, nprocs)
    print("\n## 1. Participant pipeline (fresh work dir, --skip-bids-validation)\n")
    print("| run | subjects | wall s | wall s / subject | CPU s | peak RSS, largest process (GB) "
          "| peak RSS, all processes (GB) |\n|---|---|---|---|---|---|---|")
    for key, r in runs.items():
        n = len(r["subjects"])
        print(f"| {key} | {' '.join(r['subjects'])} | {r['wall_s']:.1f} | {r['wall_s'] / n:.1f} "
              f"| {r['cpu_s']:.1f} | {r['peak_rss_single_gb']:.2f} | {r['peak_rss_total_gb']:.2f} |")
    keys = list(runs)
    print("\n| stage | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for stage in STAGES:
        cells = []
        for key in keys:
            n = len(runs[key]["subjects"])
            cells.append(f"{runs[key]['stages'][stage] / n:.1f}")
        print(f"| {stage} (s per subject, node time) | " + " | ".join(cells) + " |")
    many = [runs[k] for k in keys if len(runs[k]["subjects"]) == len(subjects)]
    if len(subjects) > 1 and len(many) == 2:
        ratio = many[1]["wall_s"] / many[0]["wall_s"]
        print(f"\n{len(subjects)} subjects: --nprocs 2 / --nprocs 1 wall time = {ratio:.2f} "
              f"(target <= 0.6)")
    worst = max(r["wall_s"] / len(r["subjects"]) for r in runs.values() if r["nprocs"] == 1)
    rss = max(r["peak_rss_total_gb"] for r in runs.values() if len(r["subjects"]) == 1)
    print(f"slowest subject at --nprocs 1: {worst:.1f} s (target <= 60); peak RSS of a one-subject "
          f"run: {rss:.2f} GB (target <= 4)")
    spread = {}
    for r in runs.values():
        for sub, age in r["ages"].items():
            spread.setdefault(sub, []).append(age)
    diff = max(max(v) - min(v) for v in spread.values())
    print(f"largest age difference between runs of the same subject: {diff:.4f} months")
    return runs


# --------------------------------------------------------------------------- 2. inference
def _load_template(cohort: int, misalign: bool = False):
    import SimpleITK as sitk

    from bids_infantage.models.synthesis.templates import template_path

    tf_home = SHARED / "templateflow"
    t1 = sitk.ReadImage(str(template_path(tf_home, cohort, "T1w")), sitk.sitkFloat32)
    t2 = sitk.ReadImage(str(template_path(tf_home, cohort, "T2w")), sitk.sitkFloat32)
    if misalign:
        center = t1.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in t1.GetSize()])
        xfm = sitk.Euler3DTransform(center, *np.deg2rad([3.0, 3.0, 3.0]), (4.0, 0.0, 0.0))
        t1 = sitk.Resample(t1, t1, xfm, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return t1, t2


def part_inference(repeats: int) -> dict:
    import torch

    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.preprocess import preprocess_session

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    bundle = load_bundle()
    load_s = time.perf_counter() - t0
    t1, t2 = _load_template(2)
    sample = preprocess_session(t1, t2, reference_mask=bundle.reference_mask())
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for config in bundle.meta["configurations"]:
            t0 = time.perf_counter()
            bundle.networks(config)
            first_load = time.perf_counter() - t0
            timings = {}
            for saliency in (False, True):
                bundle.predict(sample["image"], sample["volume_ml"], config, saliency=saliency,
                               device=device)  # warm-up
                runs = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    bundle.predict(sample["image"], sample["volume_ml"], config,
                                   saliency=saliency, device=device)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    runs.append(time.perf_counter() - t0)
                timings[saliency] = statistics.median(runs)
            n_members = len(bundle.networks(config))
            rows.append({"device": device, "config": config, "members": n_members,
                         "weights_load_s": first_load, "ensemble_s": timings[False],
                         "ensemble_gradcam_s": timings[True]})
    print("\n## 2. Inference alone (one preprocessed input, 64^3 at the model's grid)\n")
    print(f"bundle load (sha256 check + metadata): {load_s:.2f} s; torch threads: "
          f"{torch.get_num_threads()}; median of {repeats} runs\n")
    print("| device | configuration | members | weights load s | ensemble + TTA s "
          "| + Grad-CAM s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['device']} | {r['config']} | {r['members']} | {r['weights_load_s']:.2f} "
              f"| {r['ensemble_s']:.3f} | {r['ensemble_gradcam_s']:.3f} |")
    if "cuda" not in devices:
        print("\nno CUDA device visible to torch here: GPU inference not measured")
    return {"bundle_load_s": load_s, "rows": rows}


# --------------------------------------------------------------------------- 3. fast vs careful
def _timed_preprocess(t1, t2, reference_mask, settings):
    """``preprocess_session`` with the time spent in each stage (wrapped module functions)."""
    from bids_infantage.models import preprocess as prep

    spent = defaultdict(float)
    originals = {}
    names = {"n4_correct": "N4", "register_rigid_t1w_to_t2w": "rigid T1w->T2w",
             "register_mask_to_reference": "normalization"}
    for name, stage in names.items():
        fn = getattr(prep, name)
        originals[name] = fn

        def wrapped(*args, _fn=fn, _stage=stage, **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                spent[_stage] += time.perf_counter() - t0

        setattr(prep, name, wrapped)
    try:
        t0 = time.perf_counter()
        out = prep.preprocess_session(t1, t2, reference_mask=reference_mask, settings=settings)
        spent["total preprocessing"] = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(prep, name, fn)
    return out, dict(spent)


def part_accuracy(subjects) -> dict:
    import torch

    from bids_infantage.models.bundle.resolve import load_bundle

    torch.set_num_threads(1)
    bundle = load_bundle()
    ref = bundle.reference_mask()
    configs = list(bundle.meta["configurations"])
    rows, stage_sum = [], {"fast": defaultdict(float), "careful": defaultdict(float)}
    for sub in subjects:
        print(f"  fast vs careful: sub-{sub} ...", file=sys.stderr, flush=True)
        t1, t2 = _load_template(TEMPLATE_COHORT[sub], misalign=True)
        ages = {}
        for name, settings in (("fast", None), ("careful", CAREFUL)):
            sample, spent = _timed_preprocess(t1, t2, ref, settings)
            for stage, sec in spent.items():
                stage_sum[name][stage] += sec
            ages[name] = {c: bundle.predict(sample["image"], sample["volume_ml"], c,
                                            saliency=False)["age"] for c in configs}
        diffs = {c: ages["fast"][c] - ages["careful"][c] for c in configs}
        rows.append({"subject": sub, "ages": ages, "diff": diffs})
    print("\n## 3. Fast (shipped) vs careful preprocessing: templates with T1w misaligned by "
          "3 degrees about each axis and 4 mm\n")
    print("| stage | careful s per subject (before) | fast s per subject (after) |\n|---|---|---|")
    n = len(subjects)
    for stage in ("N4", "rigid T1w->T2w", "normalization", "total preprocessing"):
        print(f"| {stage} | {stage_sum['careful'][stage] / n:.1f} | {stage_sum['fast'][stage] / n:.1f} |")
    print("\n| subject | " + " | ".join(f"{c}: fast - careful (months)" for c in configs)
          + " |\n|---|" + "---|" * len(configs))
    for r in rows:
        print(f"| sub-{r['subject']} | " + " | ".join(f"{r['diff'][c]:+.3f}" for c in configs) + " |")
    worst = max(abs(d) for r in rows for d in r["diff"].values())
    print(f"\nlargest |age change|: {worst:.3f} months (target < 0.1)")
    return {"rows": rows, "stages": {k: dict(v) for k, v in stage_sum.items()}, "max_abs_diff": worst}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", choices=["pipeline", "inference", "accuracy"],
                   default=["pipeline", "inference", "accuracy"])
    p.add_argument("--subjects", nargs="+", default=SUBJECTS, choices=SUBJECTS)
    p.add_argument("--repeats", type=int, default=5, help="inference repeats (median)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if not DEMO.is_dir():
        raise SystemExit(f"{DEMO} not found: this benchmark reads ../shared/demo_bids in place")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"bids-infantage benchmark on {os.cpu_count()} CPU core(s), "
          f"{psutil.virtual_memory().total / 2**30:.0f} GB RAM")
    results = {}
    if "pipeline" in args.parts:
        results["pipeline"] = part_pipeline(args.subjects)
    if "inference" in args.parts:
        results["inference"] = part_inference(args.repeats)
    if "accuracy" in args.parts:
        results["accuracy"] = part_accuracy(args.subjects)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
