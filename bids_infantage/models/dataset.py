"""Generation and storage of the synthetic training cohort (one .npz per sample)."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger("bids_infantage.training")

_WORKER: dict = {}


#: Ages (months) the models cover, and of the synthetic samples unless a cohort says otherwise
MODEL_AGE_RANGE_MONTHS = (0.0, 24.0)


def _init_worker(atlas_path: str, reference_path: str, masks_tsv: str) -> None:
    import SimpleITK as sitk

    from .synthesis.atlas import Atlas
    from .synthesis.volumes import read_bcp_volumes

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    _WORKER["atlas"] = Atlas.load(Path(atlas_path))
    _WORKER["ref"] = sitk.ReadImage(reference_path)
    _WORKER["volumes"] = read_bcp_volumes(masks_tsv)


def _make_one(args) -> str:
    index, age, seed, out_dir = args
    out = Path(out_dir) / f"sample-{index:05d}.npz"
    if out.exists():
        return str(out)
    from .preprocess import preprocess_session
    from .synthesis.generator import SyntheticInfantGenerator

    gen = SyntheticInfantGenerator(_WORKER["atlas"], _WORKER["volumes"], seed=seed)
    s = gen.sample(age)
    p = preprocess_session(s["T1w"], s["T2w"], reference_mask=_WORKER["ref"], extra={"WM": s["WM"]})
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, image=p["image"].astype(np.float16), wm=(p["WM"] > 0.5).astype(np.uint8),
        mask=p["mask"], age=np.float32(age), volume_ml=np.float32(p["volume_ml"]),
        mask_dice=np.float32(p["mask_dice"]),
    )
    os.replace(tmp, out)
    return str(out)


def generate_cohort(out_dir, *, atlas_path, reference_path, masks_tsv, n: int, seed: int,
                    age_range=MODEL_AGE_RANGE_MONTHS, nprocs: int = 2, strata: int | None = None) -> list[Path]:
    """Generate ``n`` synthetic samples with ages uniform in ``age_range`` (months).

    Ages are stratified (one per equal-width bin, jittered) so the label distribution is flat,
    which counters shrinkage toward the middle of the range. ``strata`` (default ``n``) is the
    number of bins the ages are drawn for; the cohort is the first ``n`` of them, so a cohort
    of ``n < strata`` is the prefix of the larger one (same ages and seeds). Existing samples are kept
    (resumable). The preprocessing parameters the samples go through are recorded in
    ``out_dir/preprocessing.json`` (see :func:`cohort_preprocessing`) and the synthesis atlas
    version in ``out_dir/generator.json`` (:func:`cohort_generator`); resuming with other
    defaults logs a warning. Returns the sample paths.
    """
    import multiprocessing as mp

    from ..utils.io import atomic_write_text
    from .preprocess import preprocessing_settings

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from .synthesis.atlas import ATLAS_VERSION

    generator = {"atlas_version": ATLAS_VERSION}
    if not any(out_dir.glob("sample-*.npz")):
        atomic_write_text(out_dir / "generator.json", json.dumps(generator) + "\n")
    elif cohort_generator(out_dir) != generator:
        LOGGER.warning("%s: existing samples were drawn from another synthesis atlas (%s, now %s); "
                       "delete the folder to regenerate them", out_dir,
                       cohort_generator(out_dir) or "version 1", generator)
    current = preprocessing_settings()
    recorded = cohort_preprocessing(out_dir)
    if recorded is None and not any(out_dir.glob("sample-*.npz")):
        atomic_write_text(out_dir / "preprocessing.json", json.dumps(current, indent=1) + "\n")
    elif recorded != current:
        LOGGER.warning("%s: existing samples were preprocessed with %s settings than the current "
                       "defaults; delete the folder to regenerate them", out_dir,
                       "unrecorded" if recorded is None else "other")
    rng = np.random.default_rng(seed)
    lo, hi = age_range
    k = max(n, strata or n)
    ages = lo + (np.arange(k) + rng.random(k)) * (hi - lo) / k
    rng.shuffle(ages)
    ages = ages[:n]
    jobs = [(i, float(a), seed * 100003 + i, str(out_dir)) for i, a in enumerate(ages)]
    init = (str(atlas_path), str(reference_path), str(masks_tsv))
    if nprocs <= 1:
        _init_worker(*init)
        return [Path(_make_one(j)) for j in jobs]
    with mp.get_context("fork").Pool(nprocs, initializer=_init_worker, initargs=init) as pool:
        paths = []
        for k, p in enumerate(pool.imap(_make_one, jobs, chunksize=4)):
            paths.append(Path(p))
            if (k + 1) % 50 == 0:
                LOGGER.info("generated %d/%d samples in %s", k + 1, n, out_dir)
    return paths


def cohort_generator(out_dir) -> dict | None:
    """The synthesis atlas a cohort was drawn from (``generator.json``: ``atlas_version``,
    :data:`~bids_infantage.models.synthesis.atlas.ATLAS_VERSION`), or None for a cohort drawn
    before it was recorded (atlas version 1)."""
    path = Path(out_dir) / "generator.json"
    return json.loads(path.read_text()) if path.exists() else None


def cohort_preprocessing(out_dir) -> dict | None:
    """The preprocessing parameters recorded with a synthetic cohort
    (``preprocessing.json``, as :func:`~bids_infantage.models.preprocess.preprocessing_settings`),
    or None for a cohort generated before they were recorded."""
    path = Path(out_dir) / "preprocessing.json"
    return json.loads(path.read_text()) if path.exists() else None


def load_cohort(paths) -> dict:
    """Stack samples: image (N, 3, 64, 64, 64) float16, wm (N, 64, 64, 64) uint8, age (N,),
    volume_ml (N,)."""
    keys = ("image", "wm", "age", "volume_ml")
    out = {k: [] for k in keys}
    for p in sorted(paths):
        z = np.load(p)
        for k in keys:
            out[k].append(z[k])
    return {k: np.stack(v) for k, v in out.items()}
