"""Training a bundle end to end (:func:`train_bundle`) and writing it: safetensors weights,
``bundle.json`` with settings, calibration, provenance and the sha256 of every file.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ...utils.checksums import sha256
from ..dataset import MODEL_AGE_RANGE_MONTHS
from ..transforms import CONFIGURATIONS
from .augmentation import _JOB_DATA
from .calibration import calibrate, validation_predictions
from .cohorts import _data_provenance, build_data, cohort_dirs, cohort_preprocessing_record, cohort_record
from .members import _train_job, load_member, member_fingerprint, members_from_states, save_config_weights, save_member
from .recipes import configuration_settings, input_normalization

LOGGER = logging.getLogger("bids_infantage.training")


def train_bundle(out_dir: Path, cache: Path, shared: Path, *, configs, settings: dict,
                 nprocs: int = 2, name: str = "infantage-default") -> dict:
    """Train every configuration and write the bundle to ``out_dir``. Returns bundle.json."""
    import torch

    t0 = time.time()
    train, val = build_data(cache, shared, settings, nprocs)
    train_dir = cohort_dirs(cache, settings)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "training.log", "a")
    jobs = [(config, i) for config in configs for i in range(settings["members"])]
    _JOB_DATA.update(train=train, settings=settings)
    if (settings.get("input") or {}).get("csf"):  # CSF painting (paint_csf): real ventricles
        import SimpleITK as sitk

        from ..synthesis.asegs import build_ventricle_atlas

        vent_path = cache / "ventricles.npz"
        if not vent_path.exists():
            np.savez_compressed(vent_path, **build_ventricle_atlas(
                shared / "infant-asegs", sitk.ReadImage(str(cache / "ref.nii.gz"))))
        _JOB_DATA["ventricles"] = np.load(vent_path)["ventricles"]
    tc = time.time()
    architecture = settings.get("architecture", "multitask")
    member_dir = cache / ("members" if architecture == "multitask" else f"members-{architecture}")
    preprocessing = cohort_preprocessing_record(cache, settings)
    # per configuration: its own settings (configuration_settings) decide its members
    generator = cohort_record(cache, settings)
    fingerprints = {config: member_fingerprint(configuration_settings(settings, config),
                                               preprocessing, generator) for config in configs}
    done = {job: load_member(member_dir, *job, fingerprints[job[0]]) for job in jobs}
    todo = [job for job in jobs if done[job] is None]
    LOGGER.info("%d members to train, %d from %s", len(todo), len(jobs) - len(todo), member_dir)
    from ...utils.progress import map_with_progress

    # one member per process, 1 thread each; one line with the ETA as each member ends
    trained = map_with_progress(_train_job, todo, nprocs, logger=LOGGER, what="members",
                                describe=lambda job: f"{job[0]} member {job[1]}")
    for job, result in zip(todo, trained):
        save_member(member_dir, *job, fingerprints[job[0]], *result)
        done[job] = result
    for job in jobs:
        log.write("\n".join(done[job][2]) + "\n")
    states = [done[job][:2] for job in jobs]
    from ..synthesis.volumes import read_bcp_volumes

    torch.set_num_threads(max(1, nprocs))  # after the fork: OpenMP pools do not survive fork
    nets_by_config, calibrations, seconds = {}, {}, {}
    for config in configs:
        own = configuration_settings(settings, config)
        nets = members_from_states(
            config, [st for (cfg, _), (st, _) in zip(jobs, states) if cfg == config],
            settings["channels"], architecture, settings.get("pooling", "mean"))
        means, vars_, feats, perturbed = validation_predictions(
            nets, val, config, own,
            perturbed=(own.get("input") or {}).get("augment") == "contrast")
        cal = calibrate(means, vars_, feats, val["age"], perturbed_means=perturbed)
        nets_by_config[config], calibrations[config] = nets, cal
        seconds[config] = [round(sec, 1) for (cfg, _), (_, sec) in zip(jobs, states) if cfg == config]
        msg = (f"{config}: validation MAE {cal['val_mae_months']:.2f} months "
               f"(uncalibrated {cal['val_mae_uncalibrated_months']:.2f}), "
               f"slope {cal['slope']:.3f}")
        LOGGER.info(msg)
        log.write(msg + "\n")
        log.flush()
    log.write(f"all members trained in {time.time() - tc:.0f} s wall\n")
    log.close()
    vols = read_bcp_volumes(shared / "bcp-brainmasks" / "masks.tsv")
    return write_bundle(
        out_dir, nets_by_config, calibrations, settings=settings, name=name,
        reference_mask=cache / "ref.nii.gz",
        volume_norms={str(k): [float(v.mean()), float(v.std(ddof=1))] for k, v in vols.items()},
        data_provenance=_data_provenance(settings, train_dir),
        seconds_per_member=seconds, seconds=time.time() - t0,
        preprocessing=preprocessing)


#: ``bundle.json`` ``architecture`` of each training architecture (ModelBundle.networks)
BUNDLE_ARCHITECTURES = {"multitask": "MultiTaskAgeNet", "wada2019": "WadaAgeRangeEnsemble"}


def _architecture_record(settings: dict) -> dict:
    """``architecture`` and ``architecture_kwargs`` of a bundle trained with ``settings``."""
    architecture = settings.get("architecture", "multitask")
    if architecture == "multitask":
        kwargs = {"channels": settings["channels"]}
        if settings.get("pooling", "mean") != "mean":  # older bundles: mean pooling, no key
            kwargs["pooling"] = settings["pooling"]
        return {"architecture": "MultiTaskAgeNet", "architecture_kwargs": kwargs}
    from ..nets.wada2d import load_levels

    return {"architecture": BUNDLE_ARCHITECTURES[architecture],
            "architecture_kwargs": {"levels": load_levels()}}


def write_bundle(out_dir: Path, nets_by_config: dict, calibrations: dict, *, settings: dict,
                 name: str, reference_mask: Path, volume_norms: dict, data_provenance: dict,
                 seconds_per_member: dict | None = None, seconds: float | None = None,
                 preprocessing: dict | None = None) -> dict:
    """Write a model bundle: one safetensors file per configuration, the reference mask and
    ``bundle.json`` (geometry, normalization, calibration, sha256 of every file).

    Parameters
    ----------
    out_dir : Path
        Bundle folder (created).
    nets_by_config : dict of str -> list of MultiTaskAgeNet
        Ensemble members per input configuration.
    calibrations : dict of str -> dict
        From :func:`calibrate`.
    reference_mask : Path
        Reference brain mask (64^3 at 3 mm) that defines the model grid.
    volume_norms : dict of str -> [mean, sd]
        Brain-volume norms (ml) per age (months), for the out-of-range checks.
    data_provenance : dict
        What the members were trained on.
    preprocessing : dict, optional
        Preprocessing parameters of the training inputs (recorded as
        ``training.preprocessing``); default: the current pipeline defaults
        (:func:`~bids_infantage.models.preprocess.preprocessing_settings`).

    Returns
    -------
    dict
        The content of ``bundle.json``.
    """
    import shutil

    import torch

    from ... import __version__
    from ..preprocess import preprocessing_settings

    out_dir.mkdir(parents=True, exist_ok=True)
    members = {}
    for config, nets in nets_by_config.items():
        save_config_weights(nets, out_dir / f"{config}.safetensors")
        members[config] = {
            "file": f"{config}.safetensors",
            "members": len(nets),
            "channels": list(CONFIGURATIONS[config]),
            "calibration": calibrations[config],
        }
        if seconds_per_member:
            members[config]["training_seconds_per_member"] = seconds_per_member[config]
    shutil.copy(reference_mask, out_dir / "reference_mask.nii.gz")
    files = {p.name: sha256(p) for p in sorted(out_dir.iterdir())
             if p.suffix in (".safetensors", ".gz")}
    bundle = {
        "name": name,
        "version": __version__,
        **_architecture_record(settings),
        "geometry": {"shape": [64, 64, 64], "spacing_mm": 3.0, "reference": "reference_mask.nii.gz"},
        "normalization": input_normalization(settings),
        "age_range_months": list(MODEL_AGE_RANGE_MONTHS),
        "test_time_augmentation": {"flip_left_right": True,
                                   "shift_voxels": int(settings.get("tta_shift_voxels", 0))},
        "volume_norms_ml": volume_norms,
        "configurations": members,
        "files_sha256": files,
        "training": {
            "settings": settings,
            "data": data_provenance,
            "preprocessing": preprocessing if preprocessing is not None else preprocessing_settings(),
            "seconds": None if seconds is None else round(seconds, 1),
            "torch": torch.__version__,
        },
    }
    (out_dir / "bundle.json").write_text(json.dumps(bundle, indent=1))
    return bundle
