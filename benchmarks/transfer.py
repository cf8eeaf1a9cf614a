"""Transfer benchmark of a model bundle (issue #14): the measure every default-model change is
judged by. Synthetic validation (``validate_model.py``) stays, but second.

Images: the five ``tpl-UNCBCP4DInfant`` templates (0, 3, 6, 12, 24 months; another template
family, never trained on) and the five ``demo_bids`` subjects (the BMEXInfant templates the
model was built from). True age = the template's age.

(a) **Full pipeline on UNC.** A BIDS dataset of symlinks to the UNC templates is made under
    ``--out``; ``bids-infantage BIDS OUT participant --skip-bids-validation --nprocs 1
    --omp-nthreads 1 --modality CONFIG --model BUNDLE`` runs once per configuration (one run
    writes only one configuration's age; the runs share a Nipype work dir, so only the first
    preprocesses). Columns: ``age`` predicted (months), ``90% interval`` [lower, upper],
    ``covers`` whether it contains the true age, ``out of range`` the table's
    ``qc_out_of_range``, ``flags`` its ``qc_flags``. Summary: MAE (months), coverage (n/5),
    flagged (n/5) per configuration.
(b) **Robustness probes** on all ten images, in-process: ``models.preprocess.preprocess_session``
    + ``ModelBundle.predict``, after the pipeline's own input step (``load_validated``: float32,
    RAS). Its agreement with the CLI is checked on every UNC template and configuration. Each
    cell is predicted(probed) - predicted(unprobed), months. Probes:
    ``erode/dilate k``: brain mask (the pipeline's ``mask_from_skull_stripped``, patched)
    eroded / dilated by a ball of k voxels (0.8 mm); dilated voxels hold intensity 0.
    ``no extra-axial CSF``: voxels of the mask within 3 mm of its edge whose T2w exceeds the
    75th percentile of T2w inside the mask are removed (CSF is the brightest tissue on T2w;
    removes 5-7% of the mask), then largest component, holes filled.
    ``intensity x3.7``, ``gamma g``: both images times 3.7, or ``max * (I / max) ** g``.
    ``1 mm``, ``2 mm``: both images resampled (Gaussian anti-aliasing, linear) to isotropic
    voxels; ``5 mm slices``: to 0.8 x 0.8 x 5 mm (axial). The brain mask is resampled with them
    (> 0.5) and the images are zeroed outside it (a scan skull-stripped at that resolution).
    ``blur f mm``: Gaussian of FWHM f inside the same mask. ``noise SNR s``: Rician noise of
    SD median(brain) / s on the image's own grid, inside the mask (fixed seeds).
    An image whose T1w and T2w fail the pipeline's same-brain check (edge correlation after
    the rigid registration below ``SAME_BRAIN_MIN``: the BMEXInfant 24-month pair, 0.22) is
    left out of the summary for the configurations that read both images, and named.
    Summary: per probe and configuration ``max |change|`` / ``mean |change|``; ``volume``:
    mean change of the measured brain volume (%). The mask probes again with the volume input
    held at the unprobed volume separate the image route (standardization, shape) from the size
    route. Then the change per image, one table per configuration.
(c) **Image versus size.** Each unprobed prediction again with the volume input set to the BCP
    mean brain volume at the true age (``synthesis.volume_norm`` of ``read_bcp_volumes``):
    ``measured -> BCP`` ages per configuration, MAE per family with each volume.
(d) **Leave-one-template-out** is not rerun (it retrains); the command and the model card's
    figures are printed.

Checks printed: in-process vs CLI age difference; the ``space-infantageRef`` derivatives read
back as ``bids-infantage-cv`` reads them (``models.cv.load_derivatives_cohort``) and predicted,
vs the pipeline's age (UNC, both images; one demo subject with T1w only).

Usage::

    OMP_NUM_THREADS=1 TEMPLATEFLOW_HOME=../shared/templateflow \\
        .venv/bin/python benchmarks/transfer.py [--bundle NAME_OR_PATH] [--shared ../shared] \\
        [--out /tmp/bids-infantage-transfer] [--quick] [--images unc-06 ...] [--probes ...]

``--out`` keeps the CLI outputs and ``results.json`` (per bundle sha256), and the preprocessed
probe inputs (``inputs/<reference mask sha256>/``, shared by every bundle with that reference):
a rerun only computes what is missing, and a second bundle only predicts; delete ``--out``
after changing preprocessing code. ``--cli-only`` stops after part (a); ``--images`` and
``--probes`` restrict part (b) (the CLI table always covers the five UNC templates; ``--probes``
with no name: no probes, so (b) and (c) give the unprobed ages and the MAE per family). ``--quick``: 2 configurations,
5 probes, one image per family (a smoke run, 10 min on one core). Full run from scratch: 100 min on
one core (the CLI part 10 min, 120 in-process preprocessings 30-60 s each).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["t1w", "t2w", "t1w+t2w", "ratio", "t1w+t2w+ratio"]
UNC_COHORTS = [0, 3, 6, 12, 24]  # cohort label = age in months
PROBES = {  # name -> (kind, parameter)
    "erode 1": ("mask", -1), "erode 2": ("mask", -2), "dilate 1": ("mask", 1),
    "dilate 2": ("mask", 2), "no extra-axial CSF": ("csf", (3.0, 75)),
    "intensity x3.7": ("scale", 3.7), "gamma 0.8": ("gamma", 0.8), "gamma 1.25": ("gamma", 1.25),
    "1 mm": ("grid", (1.0, 1.0, 1.0)), "2 mm": ("grid", (2.0, 2.0, 2.0)),
    "5 mm slices": ("grid", (None, None, 5.0)),
    "blur 1 mm": ("blur", 1.0), "blur 2 mm": ("blur", 2.0),
    "noise SNR 20": ("noise", 20.0), "noise SNR 8": ("noise", 8.0),
}
QUICK = {"configs": ["t1w", "t1w+t2w"], "probes": ["erode 1", "dilate 1", "no extra-axial CSF",
                                                   "gamma 0.8", "5 mm slices"],
         "images": ["unc-12", "demo-m12"]}


# --------------------------------------------------------------------------- inputs
def images(shared: Path) -> dict:
    """name -> {"T1w", "T2w", "age", "family"} for the UNC templates and the demo subjects."""
    import csv

    out = {}
    unc = shared / "templateflow" / "tpl-UNCBCP4DInfant"
    for c in UNC_COHORTS:
        stem = unc / f"cohort-{c}" / f"tpl-UNCBCP4DInfant_cohort-{c}_desc-brain"
        out[f"unc-{c:02d}"] = {"T1w": Path(f"{stem}_T1w.nii.gz"), "T2w": Path(f"{stem}_T2w.nii.gz"),
                               "age": float(c), "family": "UNC"}
    demo = shared / "demo_bids"
    with open(demo / "participants.tsv") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            sub = row["participant_id"]
            anat = demo / sub / "anat"
            out[f"demo-{sub[4:]}"] = {"T1w": anat / f"{sub}_T1w.nii.gz", "T2w": anat / f"{sub}_T2w.nii.gz",
                                      "age": float(row["age"]), "family": "demo"}
    return out


def load(path: Path):
    """The pipeline's input step (``load_validated``: link followed, float32, RAS) as SimpleITK."""
    import SimpleITK as sitk

    from bids_infantage.image.validation import load_validated

    with tempfile.TemporaryDirectory() as tmp:
        load_validated(path)[0].to_filename(f"{tmp}/img.nii")
        return sitk.ReadImage(f"{tmp}/img.nii", sitk.sitkFloat32)


def make_bids(root: Path, subjects: dict, suffixes=("T1w", "T2w")) -> Path:
    """BIDS dataset of symlinks (label -> {"T1w", "T2w", "age"}), ages in months."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "transfer benchmark",
                                                               "BIDSVersion": "1.9.0"}))
    (root / "participants.json").write_text(json.dumps({"age": {"Units": "months"}}))
    (root / "participants.tsv").write_text("participant_id\tage\n" + "".join(
        f"sub-{s}\t{v['age']:g}\n" for s, v in subjects.items()))
    for suffix in suffixes:
        (root / f"{suffix}.json").write_text(json.dumps({"SkullStripped": True}))
    for sub, v in subjects.items():
        anat = root / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        for suffix in suffixes:
            link = anat / f"sub-{sub}_{suffix}.nii.gz"
            if not link.is_symlink():
                from bids_infantage.utils.bids import resolve_link_file

                link.symlink_to(resolve_link_file(v[suffix]).resolve())
    return root


# --------------------------------------------------------------------------- CLI
def run_cli(bundle, bids: Path, root: Path, configs, log) -> dict:
    """{config: {subject: brain-age table row}}; runs only what ``root`` lacks."""
    from bids_infantage.reports.tables import read_brainage_tsv

    subs = sorted(p.name[4:] for p in bids.glob("sub-*"))
    exe = Path(sys.executable).parent / "bids-infantage"
    rows = {}
    for config in configs:
        tsv = lambda s: root / config / f"sub-{s}" / "anat" / f"sub-{s}_brainage.tsv"  # noqa: E731
        missing = [s for s in subs if not tsv(s).exists()]
        if missing:
            cmd = [str(exe), str(bids), str(root / config), "participant", "-w", str(root / "work"),
                   "--skip-bids-validation", "--nprocs", "1", "--omp-nthreads", "1",
                   "--modality", config, "--model", str(bundle.folder), "--participant-label", *missing]
            print("  $ " + " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
        rows[config] = {s: read_brainage_tsv(tsv(s)) for s in subs}
    return rows


def derivative_check(bundle, deriv: Path, rows: dict, configs, work: Path) -> list[dict]:
    """Predict from the space-infantageRef derivatives as bids-infantage-cv reads them."""
    import nibabel as nb

    from bids_infantage.models.cv import load_derivatives_cohort

    coh = load_derivatives_cohort(deriv)
    out = []
    for i, sid in enumerate(coh["id"]):
        sub = sid.split("_")[0][4:]
        img, vol = coh["image"][i].astype(np.float32), float(coh["volume_ml"][i])
        npz = next(work.glob(f"**/*{sub}*/**/model_input.npz"), None)
        real = np.load(npz)["image"] if npz else None
        anat = "T2w" if coh["has"][i][1] else "T1w"
        nib_arr = nb.load(deriv / f"sub-{sub}" / "anat" /
                          f"{sid}_space-infantageRef_desc-preproc_{anat}.nii.gz").get_fdata()
        for config in configs:
            if config not in rows or not bundle._can_serve(config, *coh["has"][i][:2]):
                continue
            cli = float(rows[config][sub]["predicted_age_months"])
            r = {"subject": sub, "config": config, "cli": cli,
                 "derivative": bundle.predict(img, vol, config, saliency=False)["age"],
                 "max_abs_input_diff": float(np.abs(img - real).max()) if real is not None else None}
            if real is not None:
                r["model_input_npz"] = bundle.predict(real, vol, config, saliency=False)["age"]
            if config in ("t1w", "t2w"):  # the anatomical channel read in nibabel (x, y, z) order
                ch = np.zeros_like(img)
                ch[0 if anat == "T1w" else 1] = nib_arr
                r["nibabel_order"] = bundle.predict(ch, vol, config, saliency=False)["age"]
            out.append(r)
    return out


# --------------------------------------------------------------------------- probes
def _csf_removed(mask, t2w, rim_mm: float, pct: float):
    import SimpleITK as sitk

    m = sitk.GetArrayFromImage(mask) > 0
    a = sitk.GetArrayFromImage(t2w)
    depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        mask, insideIsPositive=True, squaredDistance=False, useImageSpacing=True))
    keep = m & ~((depth <= rim_mm) & (a > np.percentile(a[m], pct)))
    out = sitk.GetImageFromArray(keep.astype(np.uint8))
    out.CopyInformation(mask)
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(out), sortByObjectSize=True) == 1
    return sitk.BinaryFillhole(sitk.Cast(largest, sitk.sitkUInt8))


def _regrid(img, mask, spacing):
    import SimpleITK as sitk

    from bids_infantage.image.resampling import resample_like

    sp = [float(s or o) for s, o in zip(spacing, img.GetSpacing())]
    size = [max(1, int(round(n * o / s))) for n, o, s in zip(img.GetSize(), img.GetSpacing(), sp)]
    shift = np.asarray(img.GetDirection()).reshape(3, 3) @ ((np.asarray(sp) - img.GetSpacing()) / 2)
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing(sp)
    grid.SetDirection(img.GetDirection())
    grid.SetOrigin(tuple(np.asarray(img.GetOrigin()) + shift))
    keep = resample_like(sitk.Cast(mask, sitk.sitkFloat32), grid) > 0.5
    return sitk.Mask(resample_like(img, grid), sitk.Cast(keep, sitk.sitkUInt8))


def _blurred(img, mask, fwhm_mm: float):
    """Gaussian blur of FWHM ``fwhm_mm`` (mm) within the same brain mask (normalized by the
    blurred mask, so that the edge does not darken): a smoother image of the same brain, as a
    population average or a lower-resolution scan looks."""
    import SimpleITK as sitk

    sigma = fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    m = sitk.Cast(mask > 0, sitk.sitkFloat32)
    num = sitk.SmoothingRecursiveGaussian(sitk.Cast(img, sitk.sitkFloat32) * m, sigma)
    den = sitk.SmoothingRecursiveGaussian(m, sigma)
    a = sitk.GetArrayFromImage(num) / np.maximum(sitk.GetArrayFromImage(den), 1e-3)
    a *= sitk.GetArrayFromImage(m)
    out = sitk.GetImageFromArray(a.astype(np.float32))
    out.CopyInformation(img)
    return out


def _noisy(img, mask, snr: float, seed: int):
    """Rician noise (the magnitude of a complex Gaussian; Gudbjartsson & Patz 1995) of SD
    ``median(brain) / snr`` on the image's own grid, inside the brain mask only: a single
    scan's noise on a population average, which has almost none. A fixed ``seed``."""
    import SimpleITK as sitk

    a = sitk.GetArrayFromImage(img).astype(np.float64)
    m = sitk.GetArrayFromImage(mask) > 0
    sd = float(np.median(a[m])) / snr
    rng = np.random.default_rng(seed)
    noisy = np.sqrt((a + rng.normal(0, sd, a.shape)) ** 2 + rng.normal(0, sd, a.shape) ** 2)
    out = sitk.GetImageFromArray((noisy * m).astype(np.float32))
    out.CopyInformation(img)
    return out


@contextmanager
def patched_mask(op):
    """Apply ``op`` to every brain mask ``preprocess_session`` derives from its images."""
    from bids_infantage.models import preprocess as prep

    original = prep.mask_from_skull_stripped
    if op is not None:
        prep.mask_from_skull_stripped = lambda *a, **k: op(original(*a, **k))
    try:
        yield
    finally:
        prep.mask_from_skull_stripped = original


def probed(t1, t2, probe: str | None):
    """(T1w, T2w, mask op) of a probe applied to skull-stripped images on one grid."""
    import SimpleITK as sitk

    from bids_infantage.image.masks import mask_from_skull_stripped

    if probe is None:
        return t1, t2, None
    kind, p = PROBES[probe]
    if kind == "mask":
        morph = sitk.BinaryDilate if p > 0 else sitk.BinaryErode
        return t1, t2, lambda m: morph(m, [abs(p)] * 3, sitk.sitkBall)
    if kind == "csf":
        return t1, t2, lambda m: _csf_removed(m, t2, *p)
    if kind == "grid":
        mask = mask_from_skull_stripped(t2)
        return _regrid(t1, mask, p), _regrid(t2, mask, p), None
    if kind == "blur":
        mask = mask_from_skull_stripped(t2)
        return _blurred(t1, mask, p), _blurred(t2, mask, p), None
    if kind == "noise":
        mask = mask_from_skull_stripped(t2)
        return _noisy(t1, mask, p, seed=1), _noisy(t2, mask, p, seed=2), None
    fn = (lambda a: a * p) if kind == "scale" else (lambda a: a.max() * (a / a.max()) ** p)

    def apply(img):
        out = sitk.GetImageFromArray(fn(sitk.GetArrayFromImage(img)).astype(np.float32))
        out.CopyInformation(img)
        return out

    return apply(t1), apply(t2), None


def inputs_dir(out: Path, bundle) -> Path:
    """Folder of the preprocessed probe inputs under ``--out``: one per reference mask, since
    the stacks depend on the preprocessing and the reference, not on the networks."""
    from bids_infantage.utils.checksums import sha256

    return out / "inputs" / sha256(bundle.reference_mask_path)[:12]


def cached_input(inputs: Path, name: str, probe: str | None, compute) -> dict:
    """``{"image", "volume_ml"}`` of an image under a probe (None: unprobed) from
    ``inputs/<name>__<probe>.npz``, or from ``compute()`` (a ``preprocess_session`` result),
    then stored (written to a temporary file and renamed, so an interrupted run leaves none
    half-written)."""
    stored = inputs / f"{name}__{(probe or 'none').replace(' ', '_')}.npz"
    if stored.exists():
        z = np.load(stored)
        return {"image": z["image"], "volume_ml": float(z["volume_ml"])}
    s = compute()
    inputs.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, image=s["image"], volume_ml=s["volume_ml"])
    tmp.replace(stored)
    return {"image": s["image"], "volume_ml": float(s["volume_ml"])}


def pair_correlations(imgs: dict, names, inputs: Path) -> dict:
    """name -> the pipeline's same-brain check of the image's T1w and T2w: the edge correlation
    (``image.registration.edge_correlation``) of the N4-corrected T1w registered to the T2w
    (``register_rigid_t1w_to_t2w``), as ``RigidT1wToT2w`` computes it; kept in
    ``inputs/pairs.json``."""
    from bids_infantage.image.masks import mask_from_skull_stripped
    from bids_infantage.image.n4 import n4_correct
    from bids_infantage.image.registration import edge_correlation, register_rigid_t1w_to_t2w
    from bids_infantage.image.resampling import resample_like

    stored = inputs / "pairs.json"
    out = json.loads(stored.read_text()) if stored.exists() else {}
    for name in names:
        if name in out:
            continue
        t1, t2 = load(imgs[name]["T1w"]), load(imgs[name]["T2w"])
        m2, m1 = mask_from_skull_stripped(t2), mask_from_skull_stripped(t1)
        t2c, _ = n4_correct(t2, m2)
        t1c, _ = n4_correct(t1, m1)
        xfm, _ = register_rigid_t1w_to_t2w(t2c, t1c, m2)
        out[name] = edge_correlation(resample_like(t1c, t2c, xfm, antialias=False), t2c, m2)
        inputs.mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps(out, indent=1))
    return {n: out[n] for n in names}


def predict_all(bundle, image, volume, configs) -> dict:
    keys = ("age", "lower", "upper", "out_of_range", "flags")
    return {c: {k: v for k, v in bundle.predict(image, volume, c, saliency=False).items() if k in keys}
            for c in configs}


def run_inprocess(bundle, imgs: dict, names, probes, configs, bcp_volume, cache: Path,
                  inputs: Path) -> dict:
    """results[name][probe or "none"] = {"volume_ml", "pred": {config: ...}, ["bcp": ...]}.

    The preprocessed stacks are kept in ``inputs`` (one .npz per image and probe), which
    depends on the preprocessing and the reference mask, not on the bundle's networks: a
    second bundle with the same reference only predicts."""
    from bids_infantage.models.preprocess import preprocess_session

    res = json.loads(cache.read_text()) if cache.exists() else {}
    ref = bundle.reference_mask()
    for name in names:
        loaded = {}  # the image pair, read once per image and only when a probe needs it

        def compute(probe=None, name=name, loaded=loaded):
            if not loaded:
                loaded["t1"], loaded["t2"] = load(imgs[name]["T1w"]), load(imgs[name]["T2w"])
                assert loaded["t1"].GetSize() == loaded["t2"].GetSize(), f"{name}: T1w and T2w grids differ"
            p1, p2, op = probed(loaded["t1"], loaded["t2"], probe)
            with patched_mask(op):
                return preprocess_session(p1, p2, reference_mask=ref)

        for probe in [None, *probes]:
            key = probe or "none"
            have = res.get(name, {}).get(key)
            mask_probe = probe is not None and PROBES[probe][0] in ("mask", "csf")
            if have and all(c in have["pred"] for c in configs) and (not mask_probe or "same_volume" in have):
                continue
            t0 = time.time()
            s = cached_input(inputs, name, probe, lambda: compute(probe))
            rec = {"volume_ml": s["volume_ml"], "pred": predict_all(bundle, s["image"], s["volume_ml"], configs)}
            if mask_probe:  # the image route alone: volume input held at the unprobed volume
                rec["same_volume"] = predict_all(bundle, s["image"], res[name]["none"]["volume_ml"], configs)
            if probe is None:
                rec["bcp_volume_ml"] = bcp_volume(imgs[name]["age"])
                rec["bcp"] = predict_all(bundle, s["image"], rec["bcp_volume_ml"], configs)
            res.setdefault(name, {})[key] = rec
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps(res, indent=1))
            tmp.replace(cache)
            shown = "t1w+t2w" if "t1w+t2w" in rec["pred"] else configs[0]
            print(f"  {name} {key}: {time.time() - t0:.0f} s, {shown} "
                  f"{rec['pred'][shown]['age']:.2f}",
                  file=sys.stderr, flush=True)
    return res


# --------------------------------------------------------------------------- tables
def md(header, rows) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def loto_paragraph() -> str:
    text = (ROOT / "docs" / "model_card.md").read_text()
    return next((p for p in text.split("\n\n") if p.startswith("Leave-one-template-out")),
                "(no leave-one-template-out paragraph found in docs/model_card.md)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="infantage-default", help="bundle name or folder")
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bids-infantage-transfer")
    p.add_argument("--quick", action="store_true", help="smoke run: fewer configurations, probes, images")
    p.add_argument("--cli-only", action="store_true", help="part (a) only: the UNC table")
    p.add_argument("--images", nargs="+", help="in-process images (default all: unc-00 ... demo-m24)")
    p.add_argument("--probes", nargs="*", choices=list(PROBES),
                   help="probes (default all; none given: unprobed predictions only)")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TEMPLATEFLOW_HOME", str(args.shared.resolve() / "templateflow"))
    import torch

    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.synthesis.volumes import read_bcp_volumes, volume_norm

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    t_start = time.time()
    shared = args.shared.resolve()
    bundle = load_bundle(args.bundle)
    configs = [c for c in (QUICK["configs"] if args.quick else CONFIGS) if c in bundle.meta["configurations"]]
    probes = QUICK["probes"] if args.quick else list(PROBES)
    imgs = images(shared)
    names = args.images or (QUICK["images"] if args.quick else list(imgs))
    if args.probes is not None:
        probes = args.probes
    unc = [n for n in (QUICK["images"] if args.quick else imgs) if imgs[n]["family"] == "UNC"]  # CLI
    out = args.out / bundle.sha256[:12]
    out.mkdir(parents=True, exist_ok=True)
    volumes = read_bcp_volumes(shared / "bcp-brainmasks" / "masks.tsv")
    nominal = bundle.meta["configurations"][configs[0]]["calibration"]["interval_coverage"]
    log = open(out / "cli.log", "a")

    # (a) full pipeline on UNC
    bids = make_bids(out / "bids-unc", {f"unc{n[4:]}": imgs[n] for n in unc})
    rows = run_cli(bundle, bids, out / "cli-unc", configs, log)
    print(f"# Transfer benchmark: bundle {bundle.name} ({bundle.sha256[:8]}), {len(configs)} "
          f"configurations{' (--quick)' if args.quick else ''}\n")
    print(f"## (a) Full participant pipeline on tpl-UNCBCP4DInfant (never trained on)\n\n"
          f"`bids-infantage {bids} {out}/cli-unc/CONFIG participant --skip-bids-validation --nprocs 1 "
          f"--omp-nthreads 1 --modality CONFIG --model {bundle.folder}`; interval nominal coverage "
          f"{nominal:.0%}.\n")
    table, summary = [], []
    for config in configs:
        errs, cov, flagged = [], 0, 0
        for n in unc:
            r = rows[config][f"unc{n[4:]}"]
            age, lo, hi = (float(r[f"predicted_age{k}_months"]) for k in ("", "_lower", "_upper"))
            true = imgs[n]["age"]
            errs.append(abs(age - true))
            cov += lo <= true <= hi
            flagged += r["qc_out_of_range"] == "true"
            table.append([f"{true:g} mo", config, f"{age:.2f}", f"[{lo:.2f}, {hi:.2f}]",
                          "yes" if lo <= true <= hi else "**no**", r["qc_out_of_range"],
                          r["qc_flags"], f"{float(r['brain_volume_ml']):.0f}"])
        summary.append([config, f"**{np.mean(errs):.2f}**", f"{cov}/{len(unc)}", f"{flagged}/{len(unc)}"])
    print(md(["template", "configuration", "age", "90% interval", "covers", "out of range", "flags",
              "volume (ml)"], table))
    print("\n" + md(["configuration", "MAE (months)", "interval covers truth", "flagged out of range"],
                    summary))

    if args.cli_only:
        print(f"\n(--cli-only: parts (b)-(d) skipped) Wall time: {time.time() - t_start:.0f} s")
        return 0

    # (b) probes, in-process
    inputs = inputs_dir(args.out, bundle)
    res = run_inprocess(bundle, imgs, names, probes, configs,
                        lambda age: volume_norm(volumes, age)[0], out / "results.json", inputs)
    cli_diff = [abs(res[n]["none"]["pred"][c]["age"] - float(rows[c][f"unc{n[4:]}"]["predicted_age_months"]))
                for n in unc if n in names for c in configs]
    print(f"\n## (b) Robustness probes ({len(names)} images, in-process "
          "`preprocess_session` + `ModelBundle.predict`)\n")
    if cli_diff:
        print(f"In-process vs CLI on the UNC templates ({len(cli_diff)} ages): max |difference| "
              f"{max(cli_diff):.4f} months, mean {np.mean(cli_diff):.4f}.\n")
    from bids_infantage.image.registration import SAME_BRAIN_MIN, same_brain
    from bids_infantage.models.transforms import reads_both_images

    pairs = pair_correlations(imgs, names, inputs)
    unpaired = [n for n in names if not same_brain(pairs[n])]
    both = [c for c in configs if reads_both_images(c)]
    print("T1w-T2w edge correlation after the rigid registration (the pipeline's same-brain check, "
          f"QC message below {SAME_BRAIN_MIN:.2f}): "
          + ", ".join(f"{n} {pairs[n]:.2f}" for n in names) + ".\n")
    if unpaired and both:
        print(f"**{', '.join(unpaired)}: the T1w and T2w are not one brain in register.** For the "
              f"configurations that read both images ({', '.join(both)}) a probe there measures how the "
              "registration of two mismatched images moves, not the model; those images are left out of "
              "the maxima and means below (their changes are in the per-image tables), and under "
              "`--modality auto` the pipeline reads their better single image.\n")
    kept = {c: [n for n in names if not (c in both and n in unpaired)] for c in configs}
    delta = {pr: {c: [res[n][pr]["pred"][c]["age"] - res[n]["none"]["pred"][c]["age"] for n in kept[c]]
                  for c in configs} for pr in probes}
    vol = {pr: np.mean([res[n][pr]["volume_ml"] / res[n]["none"]["volume_ml"] - 1 for n in names]) * 100
           for pr in probes}
    print("max |change| / mean |change| of the predicted age (months):\n")
    print(md(["probe", "volume", *configs],
             [[pr, f"{vol[pr]:+.1f}%"] + [f"{np.max(np.abs(delta[pr][c])):.2f} / {np.mean(np.abs(delta[pr][c])):.2f}"
                                          for c in configs] for pr in probes]))
    mask_probes = [pr for pr in probes if PROBES[pr][0] in ("mask", "csf")]
    if mask_probes:
        print("\nMask probes through the image alone (volume input held at the unprobed volume; the rest "
              "of the change above comes through the volume input), max |change| / mean |change|:\n")
        img_only = {pr: {c: np.abs([res[n][pr]["same_volume"][c]["age"] - res[n]["none"]["pred"][c]["age"]
                                    for n in kept[c]]) for c in configs} for pr in mask_probes}
        print(md(["probe", *configs], [[pr] + [f"{img_only[pr][c].max():.2f} / {img_only[pr][c].mean():.2f}"
                                               for c in configs] for pr in mask_probes]))
    for c in configs:
        print(f"\nChange per image, `{c}` (unprobed age in the second column):\n")
        print(md(["image", "age", *probes],
                 [[n, f"{res[n]['none']['pred'][c]['age']:.2f}"]
                  + [f"{res[n][pr]['pred'][c]['age'] - res[n]['none']['pred'][c]['age']:+.2f}" for pr in probes]
                  for n in names]))

    # (c) image versus size
    print("\n## (c) Image versus size: volume input set to the BCP mean at the true age\n")
    print("Cells: age with the measured volume -> age with the BCP mean volume (months).\n")
    print(md(["image", "true age", "volume (ml)", "BCP mean (ml)", *configs],
             [[n, f"{imgs[n]['age']:g}", f"{res[n]['none']['volume_ml']:.0f}", f"{res[n]['none']['bcp_volume_ml']:.0f}"]
              + [f"{res[n]['none']['pred'][c]['age']:.2f} -> {res[n]['none']['bcp'][c]['age']:.2f}" for c in configs]
              for n in names]))
    mae = []
    for fam in ("UNC", "demo"):
        fn = [n for n in names if imgs[n]["family"] == fam]
        if not fn:
            continue
        for key, label in (("pred", "measured"), ("bcp", "BCP mean")):
            mae.append([f"{fam}, {label} volume"] + [
                f"{np.mean([abs(res[n]['none'][key][c]['age'] - imgs[n]['age']) for n in fn]):.2f}" for c in configs])
    print("\nMAE (months, in-process):\n\n" + md(["images, volume input", *configs], mae))

    # checks on the space-infantageRef derivatives
    print("\n## Check: `space-infantageRef` derivatives read back (as `bids-infantage-cv` does) "
          "vs the pipeline's age\n")
    checks = derivative_check(bundle, out / "cli-unc" / configs[0], rows, configs, out / "cli-unc" / "work")
    demo_sub = "m09"
    if not args.quick and "t1w" in configs:  # one demo subject with T1w only (as the hidden T1w infants)
        bids1 = make_bids(out / "bids-demo-t1w", {demo_sub: imgs[f"demo-{demo_sub}"]}, suffixes=("T1w",))
        rows1 = run_cli(bundle, bids1, out / "cli-demo-t1w", ["t1w"], log)
        checks += derivative_check(bundle, out / "cli-demo-t1w" / "t1w", rows1, ["t1w"],
                                   out / "cli-demo-t1w" / "work")
        cached = out / "t1w-only.json"
        if not cached.exists():
            from bids_infantage.models.preprocess import preprocess_session

            s = preprocess_session(load(imgs[f"demo-{demo_sub}"]["T1w"]), None,
                                   reference_mask=bundle.reference_mask())
            cached.write_text(json.dumps(bundle.predict(s["image"], s["volume_ml"], "t1w", saliency=False)["age"]))
        inproc = json.loads(cached.read_text())
        print(f"sub-{demo_sub}, T1w only: CLI {float(rows1['t1w'][demo_sub]['predicted_age_months']):.4f}, "
              f"in-process {inproc:.4f} months.\n")
    f = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(md(["subject", "configuration", "CLI age", "from derivatives", "from work-dir model_input.npz",
              "max abs(derivative - model input)", "derivative read in nibabel order"],
             [[r["subject"], r["config"], f(r["cli"]), f(r["derivative"]), f(r.get("model_input_npz")),
               f(r["max_abs_input_diff"]), f(r.get("nibabel_order"))] for r in checks]))

    # (d) leave-one-template-out
    print("\n## (d) Leave-one-template-out (not rerun here: it retrains)\n")
    print("Command: `.venv/bin/python benchmarks/validate_model.py --shared ../shared --cache-dir "
          "training-cache --skip-demo` (add `--configs t1w ratio --loto-n 80 --loto-epochs 12` for the "
          "reduced run). Last recorded figures, quoted from docs/model_card.md (older bundle and "
          "preprocessing; not measured by this run):\n")
    print("> " + loto_paragraph().replace("\n", "\n> "))
    print(f"\nWall time: {time.time() - t_start:.0f} s (CLI outputs and results.json in {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
