"""Cohorts of label-synthesis samples (``sample-XXXXX.npz``), drawn in parallel worker
processes.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..dataset import MODEL_AGE_RANGE_MONTHS
from .fields import LABEL_SYNTHESIS_VERSION, LabelFields
from .generator import LabelInfantGenerator

LOGGER = logging.getLogger("bids_infantage.synthesis")

_WORKER: dict = {}


def _init_worker(fields_path: str, reference_path: str, masks_tsv: str,
                 anatomy_path: str | None = None) -> None:
    import SimpleITK as sitk

    from ..synthesis.volumes import read_bcp_volumes

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    _WORKER["fields"] = LabelFields.load(fields_path)
    _WORKER["ref"] = sitk.ReadImage(reference_path)
    _WORKER["volumes"] = read_bcp_volumes(masks_tsv)
    _WORKER["anatomy"] = dict(np.load(anatomy_path)) if anatomy_path else None


def _make_one(job) -> str:
    index, age, seed, out_dir = job
    out = Path(out_dir) / f"sample-{index:05d}.npz"
    if out.exists():
        return str(out)
    from ..synthesis.volumes import volume_norm

    if _WORKER["anatomy"] is not None:
        from .milestones import MilestoneInfantGenerator

        gen = MilestoneInfantGenerator(_WORKER["fields"], _WORKER["anatomy"], _WORKER["ref"],
                                       seed=seed)
    else:
        gen = LabelInfantGenerator(_WORKER["fields"], _WORKER["ref"], seed=seed)
    s = gen.sample(age)
    mean, sd = volume_norm(_WORKER["volumes"], float(np.clip(age, 0, 24)))
    volume = mean + sd * float(np.clip(gen.rng.normal(), -2.5, 2.5))
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, image=s["image"].astype(np.float16), wm=s["wm"], mask=s["mask"],
                        age=np.float32(age), volume_ml=np.float32(volume),
                        anatomy=np.int16(s["anatomy"]))
    os.replace(tmp, out)
    return str(out)


def generate_label_cohort(out_dir, *, fields_path, reference_path, masks_tsv, n: int, seed: int,
                          age_range=MODEL_AGE_RANGE_MONTHS, nprocs: int = 2, strata: int | None = None,
                          anatomy_path=None):
    """``n`` samples of
    :class:`~bids_infantage.models.label_synthesis.generator.LabelInfantGenerator` as
    ``sample-XXXXX.npz`` (the cohort format of :func:`~bids_infantage.models.dataset.load_cohort`;
    ``volume_ml`` drawn from the BCP norm at the age, since the label maps are size-normalized),
    ages stratified as :func:`~bids_infantage.models.dataset.generate_cohort` over
    ``age_range`` (months; recorded in ``generator.json`` unless 0-24). With
    ``anatomy_path`` (an ``.npz`` of :func:`~bids_infantage.models.label_synthesis.milestones.milestone_anatomy`)
    the samples come from
    :class:`~bids_infantage.models.label_synthesis.milestones.MilestoneInfantGenerator`.
    Resumable; records ``generator.json`` and ``preprocessing.json``. Returns the sample paths.

    Raises
    ------
    bids_infantage.utils.errors.InputError
        ``out_dir`` holds samples of another generator or synthesis version."""
    import multiprocessing as mp

    from ...utils.io import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"generator": "labels", "label_synthesis_version": LABEL_SYNTHESIS_VERSION}
    if tuple(float(a) for a in age_range) != MODEL_AGE_RANGE_MONTHS:  # 0-24 cohorts keep their old record
        record["age_range_months"] = [float(a) for a in age_range]
    if anatomy_path:
        from .milestones import MILESTONE_SYNTHESIS_VERSION

        record.update(generator="milestones",
                      milestone_synthesis_version=MILESTONE_SYNTHESIS_VERSION)
    if any(out_dir.glob("sample-*.npz")):  # resuming: the samples must be this synthesis'
        stored = out_dir / "generator.json"
        old = json.loads(stored.read_text()) if stored.exists() else {}
        keys = set(record) | {"age_range_months"}
        if {k: old.get(k) for k in keys} != {k: record.get(k) for k in keys}:
            from ...utils.errors import InputError

            raise InputError(f"{out_dir}: its samples were made by {old or 'an unknown generator'}, "
                             f"not {record}; delete the folder or use another --cache-dir")
    else:
        atomic_write_text(out_dir / "generator.json", json.dumps(record) + "\n")
        atomic_write_text(out_dir / "preprocessing.json", json.dumps(
            {"path": "label synthesis in reference space (N4, T1w-T2w rigid and mask "
                     "normalization replaced by their residuals)",
             "standardization": "ModelInputd"}) + "\n")
    rng = np.random.default_rng(seed)
    lo, hi = age_range
    k = max(n, strata or n)
    ages = lo + (np.arange(k) + rng.random(k)) * (hi - lo) / k
    rng.shuffle(ages)
    jobs = [(i, float(a), seed * 100003 + i, str(out_dir)) for i, a in enumerate(ages[:n])]
    init = (str(fields_path), str(reference_path), str(masks_tsv),
            str(anatomy_path) if anatomy_path else None)
    if nprocs <= 1:
        _init_worker(*init)
        return [Path(_make_one(j)) for j in jobs]
    with mp.get_context("fork").Pool(nprocs, initializer=_init_worker, initargs=init) as pool:
        paths = []
        for i, p in enumerate(pool.imap(_make_one, jobs, chunksize=4)):
            paths.append(Path(p))
            if (i + 1) % 50 == 0:
                LOGGER.info("generated %d/%d samples in %s", i + 1, n, out_dir)
    return paths
